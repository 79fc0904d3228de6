/**
 * Checks that a file, and every directory above it, can be written only by
 * root (and optionally one more uid). Anything else could let a non-root user
 * change who may submit mail, so the daemon refuses to start or reload.
 */
import { lstatSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

export class UnsafePathError extends Error {
  readonly code = 'ERR_UNSAFE_PATH';
  constructor(path: string, problem: string, fix: string) {
    super(`${path}: ${problem}; ${fix}`);
    this.name = 'UnsafePathError';
  }
}

export function assertRootOnlyWritable(path: string, alsoTrustedUid: number | null = null): void {
  let current = path;
  for (;;) {
    let stats;
    try {
      stats = current === path ? statSync(current) : lstatSync(current);
    } catch (err) {
      throw new UnsafePathError(current, `cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, 'create it, owned by root');
    }
    const trustedOwner = stats.uid === 0 || (alsoTrustedUid !== null && stats.uid === alsoTrustedUid);
    if (!trustedOwner) throw new UnsafePathError(current, `is owned by uid ${stats.uid}`, `run: chown root ${current}`);
    // A sticky world-writable directory (/tmp) still lets nobody replace root's files in it.
    const sticky = (stats.mode & 0o1000) !== 0 && stats.isDirectory();
    if ((stats.mode & 0o022) !== 0 && !sticky) {
      throw new UnsafePathError(current, `can be written by group or others (mode ${(stats.mode & 0o7777).toString(8)})`, `run: chmod go-w ${current}`);
    }
    const parent = dirname(current);
    if (parent === current) return;
    current = parent;
  }
}
