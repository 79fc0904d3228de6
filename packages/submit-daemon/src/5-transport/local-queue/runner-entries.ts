/**
 * What the queue runner knows of each queued message without reading its
 * file (envelope, caller, size, state, whether it is due or being
 * delivered), and the changes it makes to them. Each change reaches the
 * queue's files (local-queue.ts) before this memory does, so the runner
 * never believes more than a restart would find.
 */
import { SubmissionError, type Envelope } from '@mailsubmit/shared';
import type { LocalQueue } from './local-queue.ts';
import type { QueueEntry } from './queue-file-format.ts';
import type { QueuedSummary } from './queue-recovery.ts';
import { INITIAL_STATE, type QueueState } from './queue-state.ts';

export interface RunnerEntry {
  readonly id: string;
  readonly envelope: Envelope;
  readonly caller: QueueEntry['caller'];
  readonly size: number;
  state: QueueState;
  active: boolean;
  /** In a due line, waiting for a delivery slot. */
  due: boolean;
}

export class RunnerEntries {
  private readonly byId = new Map<string, RunnerEntry>();
  /** Set when the daemon stops: nothing new is queued after that. */
  private closed = false;

  constructor(readonly queue: LocalQueue) {}

  get size(): number {
    return this.byId.size;
  }

  get(id: string): RunnerEntry | undefined {
    return this.byId.get(id);
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  values(): IterableIterator<RunnerEntry> {
    return this.byId.values();
  }

  /** A message the recovery scan found queued before the start. */
  adopt(found: QueuedSummary): void {
    this.byId.set(found.queueId, { id: found.queueId, envelope: found.envelope, caller: found.caller, size: found.messageOctets, state: found.state, active: false, due: false });
  }

  close(): void {
    this.closed = true;
  }

  /** Writes a new message (a submission's, or a notice) to the queue; `active` when its first attempt starts at once. */
  async commit(entry: QueueEntry, message: AsyncIterable<Uint8Array>, active: boolean): Promise<RunnerEntry> {
    if (this.closed) throw new SubmissionError('shutting-down', 'mailsubmitd is stopping; try again shortly');
    const committed = await this.queue.enqueue(entry, message);
    const record: RunnerEntry = { id: committed.queueId, envelope: entry.envelope, caller: entry.caller, size: committed.messageOctets, state: INITIAL_STATE, active, due: false };
    this.byId.set(record.id, record);
    return record;
  }

  async saveState(entry: RunnerEntry, state: QueueState): Promise<void> {
    await this.queue.setState(entry.id, state);
    entry.state = state;
  }

  /** Delivered, returned or deleted: the files go, then the entry. */
  async remove(id: string): Promise<void> {
    await this.queue.remove(id);
    this.byId.delete(id);
  }
}

/** Indexes of the recipients not finished yet (QueueState.doneRecipients). */
export function dueRecipients(entry: RunnerEntry): number[] {
  const done = new Set(entry.state.doneRecipients);
  return entry.envelope.recipients.flatMap((_, i) => (done.has(i) ? [] : [i]));
}
