/**
 * Real users and groups for end-to-end tests (as root): the set-gid helper
 * and the daemon's SO_PEERCRED check are only tested for real with real
 * uids. Names start with "mst" and are removed again by `removeAll`.
 */
import { execFileSync } from 'node:child_process';

export interface TestUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

const created: { users: string[]; groups: string[] } = { users: [], groups: [] };

function exists(database: 'passwd' | 'group', name: string): boolean {
  try {
    execFileSync('getent', [database, name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function ensureGroup(name: string): number {
  if (!exists('group', name)) {
    execFileSync('groupadd', ['--system', name]);
    created.groups.push(name);
  }
  return Number(execFileSync('getent', ['group', name], { encoding: 'utf8' }).split(':')[2]);
}

/** A user with its own primary group and, optionally, supplementary groups. */
export function ensureUser(name: string, supplementaryGroups: readonly string[] = []): TestUser {
  if (exists('passwd', name)) execFileSync('userdel', [name], { stdio: 'ignore' });
  if (exists('group', name)) execFileSync('groupdel', [name], { stdio: 'ignore' });
  const args = ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin'];
  if (supplementaryGroups.length > 0) args.push('--groups', supplementaryGroups.join(','));
  execFileSync('useradd', [...args, name]);
  created.users.push(name);
  const [, , uid, gid] = execFileSync('getent', ['passwd', name], { encoding: 'utf8' }).split(':');
  return { name, uid: Number(uid), gid: Number(gid) };
}

export function removeAll(): void {
  for (const user of created.users.splice(0)) execFileSync('userdel', [user], { stdio: 'ignore' });
  for (const group of created.groups.splice(0)) {
    try {
      execFileSync('groupdel', [group], { stdio: 'ignore' });
    } catch {
      // Still some user's primary group, or already gone.
    }
  }
}
