/**
 * The spool directory must be the daemon's own: a qmail-queue message held
 * there is the caller's mail, and whoever else could write the directory
 * could fill it in the daemon's name, or (in a world-writable /var/tmp)
 * share its quota with the daemon. So the daemon refuses to start (78)
 * unless the directory is owned by the uid it runs as and nobody else has
 * any access to it (mode 0700 or stricter). The directories above it are
 * only required not to let others replace it: root's or the daemon's, and
 * not writable by group or others (util/safe-path.ts, sticky excepted).
 */
import { lstatSync } from 'node:fs';
import { dirname } from 'node:path';
import { assertRootOnlyWritable, UnsafePathError } from '../util/safe-path.ts';

/** Throws UnsafePathError naming the path, the problem and the fix. */
export function assertPrivateSpoolDirectory(path: string, uid: number = process.geteuid?.() ?? 0, userName = 'the daemon user'): void {
  let stats;
  try {
    stats = lstatSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new UnsafePathError(path, `the spool directory cannot be used (${code})`, `create it: install -d -o ${userName} -m 0700 ${path}`);
  }
  if (!stats.isDirectory()) throw new UnsafePathError(path, 'the spool directory is not a directory', `make it one: install -d -o ${userName} -m 0700 ${path}`);
  if (stats.uid !== uid) {
    throw new UnsafePathError(path, `the spool directory is owned by uid ${stats.uid}, not by uid ${uid} the daemon runs as`, `run: chown ${userName} ${path}`);
  }
  if ((stats.mode & 0o077) !== 0) {
    throw new UnsafePathError(path, `the spool directory is open to group or others (mode ${(stats.mode & 0o7777).toString(8)})`, `run: chmod 0700 ${path}`);
  }
  assertRootOnlyWritable(dirname(path), uid);
}
