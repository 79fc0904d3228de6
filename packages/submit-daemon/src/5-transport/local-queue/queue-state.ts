/**
 * A queued message's state, beside it: the message file is never modified
 * (rule 8 of the queue-file rules), so what changes (attempts, next
 * attempt, last error, hold) lives in a small sidecar, state/<queue id>,
 * replaced whole and the same safe way as a message is committed: written
 * in incoming/, fsync'ed, renamed over the old sidecar, state/ fsync'ed. A
 * crash leaves either the old sidecar or the new one, never a mix.
 *
 * No sidecar means the state every message starts in, so queueing a
 * message writes one file, not two.
 *
 *   mailsubmit-queue-state 1
 *   attempts: 3
 *   next-attempt: 2026-12-06T00:10:00.000Z
 *   held: no
 *   delay-warning-sent: no
 *   done-recipients: 0,2
 *   last-error: 451 4.3.0 Error: queue file write error
 */
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDirectory, type QueueDirectories } from './queue-directories.ts';
import { temporaryName } from './queue-file-writer.ts';
import { DamagedQueueFile, parseFactLines, UnknownQueueFileVersion } from './queue-file-format.ts';

export const QUEUE_STATE_VERSION = 1;
const VERSION_LINE = /^mailsubmit-queue-state (\d{1,9})$/;

export interface QueueState {
  readonly attempts: number;
  /** Null: due at once. */
  readonly nextAttempt: Date | null;
  readonly held: boolean;
  /** The MTA's words at the last failed attempt, on one line. */
  readonly lastError: string | null;
  /** The sender has had its delay warning (queue.delay_warning_time); one per message. */
  readonly delayWarned: boolean;
  /**
   * Recipients (indexes into the queue file's) that are finished: an LMTP
   * server delivered to them, or refused them for good, while others were
   * put off (partial-delivery.ts). Later attempts leave them out.
   */
  readonly doneRecipients: readonly number[];
}

export const INITIAL_STATE: QueueState = Object.freeze({ attempts: 0, nextAttempt: null, held: false, lastError: null, delayWarned: false, doneRecipients: [] });

export function writeQueueStateText(state: QueueState): string {
  let text = `mailsubmit-queue-state ${QUEUE_STATE_VERSION}\nattempts: ${state.attempts}\n`;
  if (state.nextAttempt !== null) text += `next-attempt: ${state.nextAttempt.toISOString()}\n`;
  text += `held: ${state.held ? 'yes' : 'no'}\n`;
  if (state.delayWarned) text += 'delay-warning-sent: yes\n';
  if (state.doneRecipients.length > 0) text += `done-recipients: ${state.doneRecipients.join(',')}\n`;
  // An MTA's reply may span lines; the sidecar keeps one.
  if (state.lastError !== null) text += `last-error: ${state.lastError.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim()}\n`;
  return text;
}

export function parseQueueStateText(text: string): QueueState {
  const lines = text.split('\n');
  const firstLine = lines[0] ?? '';
  const version = VERSION_LINE.exec(firstLine);
  if (version === null || Number(version[1]) !== QUEUE_STATE_VERSION) throw new UnknownQueueFileVersion(firstLine);
  if (!text.endsWith('\n')) throw new DamagedQueueFile('its state sidecar does not end with a line end');
  const values = parseFactLines(lines.slice(1, -1));
  const attempts = Number(values.get('attempts'));
  if (!Number.isSafeInteger(attempts) || attempts < 0) throw new DamagedQueueFile('its state has no attempt count');
  const next = values.get('next-attempt');
  const nextAttempt = next === undefined ? null : new Date(next);
  if (nextAttempt !== null && Number.isNaN(nextAttempt.getTime())) throw new DamagedQueueFile('its next-attempt is not a time');
  const done = values.get('done-recipients');
  const doneRecipients = done === undefined ? [] : done.split(',').map(Number);
  if (!doneRecipients.every((i) => Number.isSafeInteger(i) && i >= 0)) throw new DamagedQueueFile('its done-recipients are not recipient numbers');
  return { attempts, nextAttempt, held: values.get('held') === 'yes', lastError: values.get('last-error') ?? null, delayWarned: values.get('delay-warning-sent') === 'yes', doneRecipients };
}

/** The sidecar's state, or INITIAL_STATE without one. */
export async function readQueueState(directories: QueueDirectories, queueId: string): Promise<QueueState> {
  let text: string;
  try {
    text = await readFile(join(directories.state, queueId), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return INITIAL_STATE;
    throw err;
  }
  return parseQueueStateText(text);
}

export async function writeQueueState(directories: QueueDirectories, queueId: string, state: QueueState): Promise<void> {
  const temporary = join(directories.incoming, temporaryName(`state.${queueId}`));
  try {
    const handle = await open(temporary, 'wx', 0o600);
    try {
      await handle.writeFile(writeQueueStateText(state), 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, join(directories.state, queueId));
  } catch (err) {
    await unlink(temporary).catch(() => undefined);
    throw err;
  }
  await fsyncDirectory(directories.state);
}

/** Removes the sidecar, if any; true when there was one. */
export async function removeQueueState(directories: QueueDirectories, queueId: string): Promise<boolean> {
  try {
    await unlink(join(directories.state, queueId));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  await fsyncDirectory(directories.state);
  return true;
}
