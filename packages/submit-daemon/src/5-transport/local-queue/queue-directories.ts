/**
 * The local queue's directories, all under one root on one file system:
 *
 *   incoming/  files being written: message files before their commit and
 *              state sidecars before they replace the old one. Nothing here
 *              is ever a commitment, so recovery removes all of it.
 *   ready/     committed message files, named by queue id, never modified.
 *   state/     one small sidecar per message whose state changed (attempts,
 *              next attempt, last error, hold), named by the same id.
 *
 * That is the minimum: committing is a rename from incoming/ into ready/, so
 * "complete" needs no mode bit and no scan of every file's contents; the
 * scheduler's states (due, deferred, held) live in the sidecar instead of in
 * more directories, so a state change never moves the message file.
 *
 * Renames are only atomic within one file system (rule 2 of the queue-file
 * rules), so every subdirectory must be on the root's device. The queue is
 * the callers' mail: the root and every subdirectory belong to the daemon's
 * uid and are closed to group and others (0700), or nothing is used.
 */
import { lstat, mkdir, open } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { UnsafePathError } from '../../util/safe-path.ts';

export const QUEUE_SUBDIRECTORIES = ['incoming', 'ready', 'state'] as const;

export interface QueueDirectories {
  readonly root: string;
  readonly incoming: string;
  readonly ready: string;
  readonly state: string;
}

export function queueDirectories(root: string): QueueDirectories {
  return { root, incoming: join(root, 'incoming'), ready: join(root, 'ready'), state: join(root, 'state') };
}

/**
 * Creates what is missing (0700) and checks all four directories; throws
 * UnsafePathError naming the directory, the problem and the fix.
 */
export async function prepareQueueDirectories(root: string, uid: number = process.geteuid?.() ?? 0): Promise<QueueDirectories> {
  const directories = queueDirectories(root);
  const rootStats = await ensurePrivateDirectory(root, uid);
  for (const name of QUEUE_SUBDIRECTORIES) {
    const path = directories[name];
    const stats = await ensurePrivateDirectory(path, uid);
    if (stats.dev !== rootStats.dev) {
      throw new UnsafePathError(
        path,
        `is on another file system than ${root} (device ${stats.dev}, not ${rootStats.dev}); queue files move by rename, which only one file system makes atomic`,
        `put the whole queue directory on one file system`,
      );
    }
  }
  return directories;
}

async function ensurePrivateDirectory(path: string, uid: number): Promise<Stats> {
  let created = false;
  try {
    await mkdir(path, { mode: 0o700 });
    created = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new UnsafePathError(path, `the queue directory cannot be created (${(err as NodeJS.ErrnoException).code ?? String(err)})`, `create it: install -d -m 0700 ${path}`);
    }
  }
  const stats = await lstat(path);
  if (!stats.isDirectory()) throw new UnsafePathError(path, 'is not a directory', `remove it; the daemon creates the queue directory`);
  if (stats.uid !== uid) {
    throw new UnsafePathError(path, `is owned by uid ${stats.uid}, not by uid ${uid} the daemon runs as`, `run: chown ${uid} ${path}`);
  }
  if ((stats.mode & 0o077) !== 0) {
    throw new UnsafePathError(path, `is open to group or others (mode ${(stats.mode & 0o7777).toString(8)})`, `run: chmod 0700 ${path}`);
  }
  // A new directory's entry in its parent must survive a crash too.
  if (created) await fsyncDirectory(join(path, '..'));
  return stats;
}

/** Makes the directory's entries (a create, rename or unlink in it) stable. */
export async function fsyncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
