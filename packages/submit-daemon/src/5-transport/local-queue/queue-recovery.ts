/**
 * The scan at start, before anything is queued or delivered. Every step
 * is one that a crash at any point leaves safe to repeat (rule 7 of the
 * queue-file rules: nothing needs an undo):
 *
 *   - incoming/ is emptied: nothing in it was ever committed (a message
 *     file is committed by its rename out of it, a sidecar by its rename
 *     over the old one), so nobody was told 0 for it;
 *   - ready/ is listed: each message's head, size and state. A file whose
 *     version this code does not know, or that is damaged, or whose name
 *     is no queue id, is left where it is and reported, never deleted: a
 *     newer mailsubmit, or an administrator, may still read it;
 *   - a sidecar in state/ whose message is gone is removed: the message
 *     is unlinked first at removal, so this is a removal cut short.
 */
import { open, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDirectory, type QueueDirectories } from './queue-directories.ts';
import { isQueueId } from './queue-id.ts';
import { readQueueFileSummary, type QueueFileSummary } from './queued-message.ts';
import { readQueueState, type QueueState } from './queue-state.ts';

export interface QueuedSummary extends QueueFileSummary {
  readonly state: QueueState;
}

export interface LeftAlone {
  /** The name in ready/ (or state/). */
  readonly name: string;
  readonly reason: string;
}

export interface RecoveryReport {
  /** Names removed from incoming/: writes a crash cut short. */
  readonly removedIncomplete: readonly string[];
  /** Sidecars removed from state/ whose message was already gone. */
  readonly removedOrphanStates: readonly string[];
  /** The committed messages, oldest id first. */
  readonly queued: readonly QueuedSummary[];
  /** Files kept but not readable by this version: unknown version, damaged, not a queue id. */
  readonly leftAlone: readonly LeftAlone[];
}

export async function recoverQueue(directories: QueueDirectories): Promise<RecoveryReport> {
  const removedIncomplete = await removeAll(directories.incoming);
  const queued: QueuedSummary[] = [];
  const leftAlone: LeftAlone[] = [];
  const readyNames = (await readdir(directories.ready)).sort();
  for (const name of readyNames) {
    if (!isQueueId(name)) {
      leftAlone.push({ name, reason: 'the name is not a queue id' });
      continue;
    }
    try {
      queued.push(await summarize(directories, name));
    } catch (err) {
      leftAlone.push({ name, reason: (err as Error).message });
    }
  }
  const ready = new Set(readyNames);
  const orphans = (await readdir(directories.state)).filter((name) => !ready.has(name));
  for (const name of orphans) await unlink(join(directories.state, name));
  if (orphans.length > 0) await fsyncDirectory(directories.state);
  return { removedIncomplete, removedOrphanStates: orphans, queued, leftAlone };
}

async function summarize(directories: QueueDirectories, queueId: string): Promise<QueuedSummary> {
  const handle = await open(join(directories.ready, queueId), 'r');
  try {
    const summary = await readQueueFileSummary(handle, queueId);
    return { ...summary, state: await readQueueState(directories, queueId) };
  } finally {
    await handle.close();
  }
}

async function removeAll(directory: string): Promise<string[]> {
  const names = await readdir(directory);
  for (const name of names) await unlink(join(directory, name));
  if (names.length > 0) await fsyncDirectory(directory);
  return names;
}
