/**
 * What an administrator does to the local queue (`mailsubmitctl queue`,
 * through the control socket; control/queue-control.ts): list, show,
 * flush, hold, release, delete, requeue, and the listing each message is
 * shown by. Every change is written to the message's state before it
 * counts, and logged with the queue id.
 */
import { writeEnvelopeBlock } from '@mailsubmit/shared';
import { QueueControlError, UnknownQueuedMessage, type QueueControl, type QueuedMessageDetail, type QueueListing, type QueueSummary } from '../../control/queue-control.ts';
import type { Logger } from '../../logging/logger.ts';
import { INITIAL_STATE } from './queue-state.ts';
import { DotUnstuffer } from './queued-original.ts';
import { dueRecipients, type RunnerEntries, type RunnerEntry } from './runner-entries.ts';

const DEFAULT_SHOW_LIMIT = 1024 * 1024;

export interface AdministrationServices {
  readonly log: Logger;
  readonly now: () => Date;
  /** The totals for the listing's summary line. */
  readonly summary: () => QueueSummary;
  /** A message's next attempt changed: the runner looks at its schedule again. */
  readonly reschedule: () => void;
}

export class QueueAdministration implements QueueControl {
  constructor(
    private readonly entries: RunnerEntries,
    private readonly services: AdministrationServices,
  ) {}

  list(): { readonly messages: readonly QueueListing[]; readonly summary: QueueSummary } {
    const messages = [...this.entries.values()].sort((a, b) => (a.id < b.id ? -1 : 1)).map((entry) => this.listing(entry));
    return { messages, summary: this.services.summary() };
  }

  async show(id: string, limit = DEFAULT_SHOW_LIMIT): Promise<QueuedMessageDetail> {
    const entry = this.known(id);
    const opened = await this.entries.queue.read(id);
    const unstuffed = opened.message.pipe(new DotUnstuffer());
    const chunks: Buffer[] = [];
    let octets = 0;
    let truncated = false;
    try {
      for await (const chunk of unstuffed as AsyncIterable<Buffer>) {
        chunks.push(chunk);
        octets += chunk.length;
        if (octets > limit) {
          truncated = true;
          break;
        }
      }
    } finally {
      opened.message.destroy();
      unstuffed.destroy();
    }
    const message = Buffer.concat(chunks).subarray(0, limit).toString('utf8').replace(/\r\n/g, '\n');
    return { listing: this.listing(entry), envelope: writeEnvelopeBlock(entry.envelope).split('\n').filter((line) => line !== ''), message, truncated };
  }

  async flush(id?: string): Promise<readonly string[]> {
    const chosen = id !== undefined ? [this.known(id)] : [...this.entries.values()].filter((entry) => !entry.state.held);
    const flushed: string[] = [];
    for (const entry of chosen) {
      if (entry.state.held) throw new QueueControlError(`${entry.id} is held: release it first`);
      if (entry.active || entry.due) continue;
      await this.entries.saveState(entry, { ...entry.state, nextAttempt: null });
      flushed.push(entry.id);
    }
    this.services.log.info({ messages: flushed.length, ...(id !== undefined ? { queue_id: id } : {}) }, 'local queue: flushed by the administrator');
    this.services.reschedule();
    return flushed;
  }

  async hold(id: string): Promise<void> {
    const entry = this.known(id);
    await this.entries.saveState(entry, { ...entry.state, held: true });
    this.services.log.info({ queue_id: id }, 'local queue: held by the administrator');
  }

  async release(id: string): Promise<void> {
    const entry = this.known(id);
    if (!entry.state.held) throw new QueueControlError(`${id} is not held`);
    await this.entries.saveState(entry, { ...entry.state, held: false, nextAttempt: null });
    this.services.log.info({ queue_id: id }, 'local queue: released by the administrator');
    this.services.reschedule();
  }

  async delete(id: string): Promise<void> {
    const entry = this.known(id);
    if (entry.active) throw new QueueControlError(`${id} is being delivered now; hold it, or try again when the attempt is over`);
    await this.entries.remove(id);
    this.services.log.warn({ queue_id: id, sender: entry.envelope.sender.text, nrcpt: entry.envelope.recipients.length }, 'local queue: deleted by the administrator, without a notice');
  }

  async requeue(id?: string): Promise<readonly string[]> {
    const chosen = id !== undefined ? [this.known(id)] : [...this.entries.values()].filter((entry) => !entry.state.held);
    const requeued: string[] = [];
    for (const entry of chosen) {
      if (entry.active) continue;
      await this.entries.saveState(entry, { ...INITIAL_STATE, held: entry.state.held, delayWarned: entry.state.delayWarned, doneRecipients: entry.state.doneRecipients });
      requeued.push(entry.id);
    }
    this.services.log.info({ messages: requeued.length, ...(id !== undefined ? { queue_id: id } : {}) }, 'local queue: requeued by the administrator (retry history forgotten)');
    this.services.reschedule();
    return requeued;
  }

  private listing(entry: RunnerEntry): QueueListing {
    const now = this.services.now();
    return {
      id: entry.id,
      state: entry.active ? 'active' : entry.state.held ? 'held' : entry.due || entry.state.nextAttempt === null || entry.state.nextAttempt <= now ? 'due' : 'deferred',
      arrival_time: entry.caller.arrivalTime.toISOString(),
      age_s: Math.max(0, Math.round((now.getTime() - entry.caller.arrivalTime.getTime()) / 1000)),
      size: entry.size,
      sender: entry.envelope.sender.text,
      // As mailq lists them: the recipients still due.
      recipients: dueRecipients(entry).map((i) => entry.envelope.recipients[i]?.address.text ?? ''),
      caller_uid: entry.caller.uid,
      caller_user: entry.caller.user,
      front_door: entry.caller.frontDoor,
      attempts: entry.state.attempts,
      next_attempt: entry.state.held || entry.state.nextAttempt === null ? null : entry.state.nextAttempt.toISOString(),
      last_error: entry.state.lastError,
    };
  }

  private known(id: string): RunnerEntry {
    const entry = this.entries.get(id);
    if (entry === undefined) throw new UnknownQueuedMessage(id);
    return entry;
  }
}
