/**
 * Real users and groups for end-to-end tests (as root): the set-gid helper
 * and the daemon's SO_PEERCRED check are only tested for real with real
 * uids. Names start with "mst". `ensureUser` and `ensureGroup` remember what
 * they made for `removeAll`; the install tests make and delete their
 * accounts themselves (`deleteAccount`), around install.sh's own.
 *
 * Like install.sh, every change retries while another process holds the
 * account files' lock: useradd and friends give up at once ("cannot lock
 * /etc/passwd; try again later"), and test files running in parallel create
 * and delete their own accounts all the time.
 */
import { execFileSync } from 'node:child_process';

export interface TestUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

const LOCK_RETRIES = 100;
const LOCK_RETRY_MS = 100;

const created: { users: string[]; groups: string[] } = { users: [], groups: [] };

function changeAccounts(command: string, args: readonly string[]): void {
  for (let attempt = 1; ; attempt++) {
    try {
      execFileSync(command, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
      return;
    } catch (err) {
      const stderr = String((err as { stderr?: unknown }).stderr ?? '');
      if (!/cannot lock|try again later/.test(stderr) || attempt >= LOCK_RETRIES) {
        throw new Error(`${command} ${args.join(' ')}: ${stderr.trim() || String(err)}`);
      }
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, LOCK_RETRY_MS);
    }
  }
}

export function accountExists(database: 'passwd' | 'group', name: string): boolean {
  try {
    execFileSync('getent', [database, name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function idOf(database: 'passwd' | 'group', name: string): number {
  return Number(execFileSync('getent', [database, name], { encoding: 'utf8' }).split(':')[2]);
}

/** The group, made if missing (and then removed by `removeAll`); returns its gid. */
export function ensureGroup(name: string): number {
  if (!accountExists('group', name)) {
    changeAccounts('groupadd', ['--system', name]);
    created.groups.push(name);
  }
  return idOf('group', name);
}

/** A system group, made afresh (not removed by `removeAll`); returns its gid. */
export function createGroup(name: string): number {
  deleteAccount(name);
  changeAccounts('groupadd', ['--system', name]);
  return idOf('group', name);
}

/** A system user made afresh, with its own primary group and, optionally, supplementary groups. */
export function ensureUser(name: string, supplementaryGroups: readonly string[] = []): TestUser {
  const user = createUser(name, supplementaryGroups);
  created.users.push(name);
  return user;
}

/** As `ensureUser`, but left for the test to delete (`deleteAccount`), not `removeAll`. */
export function createUser(name: string, supplementaryGroups: readonly string[] = []): TestUser {
  deleteAccount(name);
  const args = ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin'];
  if (supplementaryGroups.length > 0) args.push('--groups', supplementaryGroups.join(','));
  changeAccounts('useradd', [...args, name]);
  return { name, uid: idOf('passwd', name), gid: idOf('group', name) };
}

/** Removes the user and the group of this name, where they exist. */
export function deleteAccount(name: string): void {
  if (accountExists('passwd', name)) changeAccounts('userdel', [name]);
  if (accountExists('group', name)) changeAccounts('groupdel', [name]);
}

/** Removes every user and group `ensureUser` and `ensureGroup` made in this process. */
export function removeAll(): void {
  // A user already gone (removed by the test itself, or by another run of the same file) is no failure.
  for (const user of created.users.splice(0)) if (accountExists('passwd', user)) changeAccounts('userdel', [user]);
  for (const group of created.groups.splice(0)) {
    try {
      changeAccounts('groupdel', [group]);
    } catch {
      // Still some user's primary group, or already gone.
    }
  }
}
