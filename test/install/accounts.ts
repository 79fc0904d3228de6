/**
 * Users and groups for the install tests (as root, names starting "mst").
 * Like install.sh, every change retries while another process holds the
 * account files' lock: useradd and friends give up at once ("cannot lock
 * /etc/passwd; try again later"), and test files running in parallel create
 * and delete their own accounts all the time.
 */
import { execFileSync } from 'node:child_process';

export interface Account {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

const LOCK_RETRIES = 100;
const LOCK_RETRY_MS = 100;

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

/** A system user with a group of its own name, made afresh. */
export function createUser(name: string): Account {
  deleteAccount(name);
  changeAccounts('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', name]);
  return { name, uid: idOf('passwd', name), gid: idOf('group', name) };
}

/** A system group, made afresh; returns its gid. */
export function createGroup(name: string): number {
  deleteAccount(name);
  changeAccounts('groupadd', ['--system', name]);
  return idOf('group', name);
}

/** Removes the user and the group of this name, where they exist. */
export function deleteAccount(name: string): void {
  if (accountExists('passwd', name)) changeAccounts('userdel', [name]);
  if (accountExists('group', name)) changeAccounts('groupdel', [name]);
}
