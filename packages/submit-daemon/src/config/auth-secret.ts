/**
 * The SMTP AUTH password of a downstream, read from auth_secret_file: the
 * first line of a file that belongs to the daemon's own user and that group
 * and others cannot read, in directories only root or that user can write
 * (so nobody can swap the file). Never from the command line or the
 * environment, which other local users can read (ps, /proc).
 */
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname } from 'node:path';
import { assertRootOnlyWritable } from '../util/safe-path.ts';

export class AuthSecretError extends Error {
  readonly code = 'ERR_AUTH_SECRET';
  constructor(path: string, problem: string, fix: string) {
    super(`auth_secret_file ${path}: ${problem}; ${fix}`);
    this.name = 'AuthSecretError';
  }
}

/** `owner`: the account the daemon runs as (by default this process's), named in the fix. */
export function readAuthSecret(path: string, owner: { uid: number; name: string } = { uid: process.geteuid?.() ?? 0, name: userInfo().username }): string {
  assertRootOnlyWritable(dirname(path), owner.uid);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    throw new AuthSecretError(path, `cannot be opened (${(err as NodeJS.ErrnoException).code ?? String(err)})`, `create it, owned by ${owner.name}, mode 0600`);
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) throw new AuthSecretError(path, 'is not a regular file', 'name the file that holds the password');
    if (stats.uid !== owner.uid) throw new AuthSecretError(path, `belongs to uid ${stats.uid}`, `run: chown ${owner.name} ${path}`);
    if ((stats.mode & 0o077) !== 0) throw new AuthSecretError(path, `group or others may read it (mode ${(stats.mode & 0o7777).toString(8)})`, `run: chmod 600 ${path}`);
    const secret = readFileSync(fd, 'utf8').split(/\r?\n/)[0] ?? '';
    if (secret === '') throw new AuthSecretError(path, 'its first line is empty', 'write the password on the first line');
    if (secret.includes('\0')) throw new AuthSecretError(path, 'holds a NUL octet', 'write the password on the first line');
    return secret;
  } finally {
    closeSync(fd);
  }
}
