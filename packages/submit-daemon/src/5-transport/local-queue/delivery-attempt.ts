/**
 * One attempt to deliver a queued message, and what follows it: delivered
 * (the file removed after the MTA's 250), deferred (the next attempt after
 * the backoff of retry-schedule.ts, a delay warning if one is due),
 * refused or expired (a notice to the sender, then the file removed), or
 * partly delivered over LMTP (the finished recipients recorded, the others
 * deferred; partial-delivery.ts).
 *
 * Each attempt sends what the direct delivery would have sent: the same
 * envelope (sender, recipients with NOTIFY and ORCPT, RET, ENVID, the
 * caller's XFORWARD attributes), the same 8-bit declaration and source.
 *
 * A notice is itself a queued message (null sender, front door "notice"),
 * committed before the message it reports on is removed: a crash in
 * between sends the notice twice, never not at all. A notice that cannot
 * be delivered is not reported on (its sender is null) and is dropped.
 */
import { describeReply, describeStatus, isSubmissionError, statusOf, SubmissionError, type Envelope } from '@mailsubmit/shared';
import type { DaemonConfig } from '../../config/daemon-config.ts';
import type { Logger } from '../../logging/logger.ts';
import type { Delivery, Downstream } from '../downstream.ts';
import { isSmtpError } from '../smtp/index.ts';
import type { NoticeReason } from './delivery-status-notice.ts';
import { partialDelivery, withRecipients, withReplies } from './partial-delivery.ts';
import { DamagedQueueFile } from './queue-file-format.ts';
import { noCounts, type QueueCounts } from './queue-figures.ts';
import { noticeToQueue } from './queue-notice.ts';
import { QUEUED_OUTCOMES } from './queue-policy.ts';
import { delayWarningDue, lifetimeOver, nextAttemptAt } from './retry-schedule.ts';
import { dueRecipients, type RunnerEntries, type RunnerEntry } from './runner-entries.ts';

/** What one attempt came to. */
export type AttemptResult =
  | { readonly kind: 'delivered'; readonly delivery: Delivery }
  | { readonly kind: 'deferred'; readonly error: SubmissionError }
  | { readonly kind: 'refused'; readonly error: SubmissionError };

export interface AttemptOptions {
  /** False for a submission's own attempt: its caller is still there to hear the refusal. */
  readonly noticeOnRefusal: boolean;
}

/** What the attempts tell the queue runner's schedule. */
export interface AttemptSchedule {
  /** The MTA took a message: whatever waits for it may go now. */
  mtaAnswered(why: string): void;
  /** A message was put off by this failure; the MTA may need probing. */
  deferredBy(error: SubmissionError): void;
  /** A notice was queued: due at once, in its sender's turn. */
  reschedule(): void;
}

export interface AttemptServices {
  readonly config: () => DaemonConfig;
  readonly downstream: () => Downstream;
  readonly log: Logger;
  readonly now: () => Date;
  /** Reporting-MTA and From of notices. */
  readonly hostName: string;
  /** Aborted when the daemon's grace to stop is over: the delivery is cut short before the final dot. */
  readonly stopped: AbortSignal;
  readonly schedule: AttemptSchedule;
}

export class DeliveryAttempts {
  readonly counts: QueueCounts = noCounts();

  constructor(
    private readonly entries: RunnerEntries,
    private readonly services: AttemptServices,
  ) {}

  async attempt(entry: RunnerEntry, options: AttemptOptions): Promise<AttemptResult> {
    const { log } = this.services;
    let opened;
    try {
      opened = await this.entries.queue.read(entry.id);
    } catch (err) {
      // A file that cannot be read is held, not retried in a loop; the administrator decides.
      const reason = err instanceof DamagedQueueFile ? err.message : `cannot read the queue file: ${(err as Error).message}`;
      log.error({ queue_id: entry.id, reason }, 'local queue: held, the queue file cannot be read');
      await this.entries.saveState(entry, { ...entry.state, held: true, lastError: reason });
      return { kind: 'deferred', error: new SubmissionError('internal', reason) };
    }
    let result: AttemptResult;
    // Recipients an earlier attempt finished (partial-delivery.ts) are left out.
    const due = dueRecipients(entry);
    try {
      const delivery = await this.services.downstream().deliver({
        envelope: withRecipients(opened.envelope, due),
        body: opened.message,
        eightBit: opened.eightBit,
        localSubmission: opened.localSubmission,
        sizeEstimate: opened.messageOctets,
        signal: this.services.stopped,
        route: { door: opened.caller.frontDoor, caller: opened.caller.user },
        // Read again from the file, should another downstream be tried after this one read it.
        replay: () => this.messageOf(entry.id),
      });
      result = { kind: 'delivered', delivery };
    } catch (err) {
      const error = isSubmissionError(err) ? err : new SubmissionError('internal', (err as Error).message);
      result = QUEUED_OUTCOMES.has(error.outcome) || statusOf(error.outcome).smtpClass !== 5 ? { kind: 'deferred', error } : { kind: 'refused', error };
    } finally {
      opened.message.destroy();
    }
    if (result.kind !== 'delivered') result = await this.finishSome(entry, due, result, options);

    if (result.kind === 'delivered') {
      await this.entries.remove(entry.id);
      this.counts.delivered++;
      this.services.schedule.mtaAnswered('a queued message was delivered');
      const { delivery } = result;
      log.info(
        { queue_id: entry.id, mta_queue_id: delivery.queueId, mta_reply: delivery.text, attempts: entry.state.attempts + 1, sender: entry.envelope.sender.text, downstream: delivery.via, downstream_tls: delivery.tls },
        'local queue: delivered',
      );
    } else if (result.kind === 'refused') {
      if (options.noticeOnRefusal) await this.giveUp(entry, 'refused', result.error);
      else await this.forget(entry, 'refused, its caller was told', result.error.message);
    } else if (this.services.stopped.aborted) {
      log.info({ queue_id: entry.id }, 'local queue: attempt cut short by the daemon stopping; the message stays queued');
    } else if (lifetimeOver(entry.caller.arrivalTime, this.services.now(), this.services.config().queue)) {
      await this.giveUp(entry, 'expired', result.error);
    } else {
      this.counts.retries++;
      await this.deferred(entry, result.error);
    }
    return result;
  }

  /**
   * A temporary failure: the next attempt after the backoff, a delay
   * warning if one is due. A submission's direct attempt is recorded with
   * `persist: false`: kept in memory only, since queueing writes one file
   * (queue-state.ts) and a restart, which forgets it, only makes the
   * message due at once.
   */
  async deferred(entry: RunnerEntry, error: SubmissionError, options: { readonly persist: boolean } = { persist: true }): Promise<void> {
    const config = this.services.config().queue;
    const now = this.services.now();
    const attempts = entry.state.attempts + 1;
    const warn = delayWarningDue(entry.caller.arrivalTime, now, entry.state.delayWarned, config);
    if (warn) await this.notify(entry, 'delay-warning', error);
    const nextAttempt = nextAttemptAt(attempts, entry.caller.arrivalTime, now, config);
    const state = { ...entry.state, attempts, nextAttempt, lastError: failureText(error), delayWarned: entry.state.delayWarned || warn };
    if (options.persist) await this.entries.saveState(entry, state);
    else entry.state = state;
    this.services.log.info({ queue_id: entry.id, attempts, next_attempt: nextAttempt.toISOString(), reason: failureText(error) }, 'local queue: deferred');
    this.services.schedule.deferredBy(error);
  }

  /** The message's octets, read from its queue file once more. */
  private async *messageOf(id: string): AsyncGenerator<Uint8Array> {
    const again = await this.entries.queue.read(id);
    try {
      yield* again.message;
    } finally {
      again.message.destroy();
    }
  }

  /**
   * An LMTP transaction that delivered to some recipients (or refused some
   * for good) and put the others off: the finished ones are recorded, the
   * refused ones' sender told, and what remains is the put-off ones, with
   * their own replies. Any other failure is returned as it is.
   */
  private async finishSome(entry: RunnerEntry, due: readonly number[], result: Exclude<AttemptResult, { kind: 'delivered' }>, options: AttemptOptions): Promise<AttemptResult> {
    const split = partialDelivery(result.error);
    if (split === null || !isSmtpError(result.error) || split.putOff.length === 0 || split.putOff.length === due.length) return result;
    if (split.refused.length > 0 && options.noticeOnRefusal) {
      await this.notify(entry, 'refused', withReplies(result.error, split.refused), withRecipients(entry.envelope, split.refused.map((i) => due[i] as number)));
    }
    const finished = [...split.delivered, ...split.refused].map((i) => due[i] as number);
    await this.entries.saveState(entry, { ...entry.state, doneRecipients: [...entry.state.doneRecipients, ...finished].sort((a, b) => a - b) });
    this.services.log.info({ queue_id: entry.id, delivered: split.delivered.length, refused: split.refused.length, put_off: split.putOff.length }, 'local queue: some recipients finished, the others wait');
    return { kind: 'deferred', error: withReplies(result.error, split.putOff) };
  }

  /** Refused or expired: the notice to the sender is committed first, then the message goes. */
  private async giveUp(entry: RunnerEntry, reason: 'refused' | 'expired', error: SubmissionError): Promise<void> {
    const noticeId = await this.notify(entry, reason, error);
    if (noticeId !== null) this.counts.bounces++;
    await this.forget(entry, reason === 'expired' ? 'expired' : 'refused', failureText(error), noticeId);
  }

  private async forget(entry: RunnerEntry, why: string, detail: string, noticeId: string | null = null): Promise<void> {
    await this.entries.remove(entry.id);
    if (noticeId === null && why !== 'refused, its caller was told') this.counts.dropped++;
    this.services.log.warn({ queue_id: entry.id, sender: entry.envelope.sender.text, reason: detail, ...(noticeId !== null ? { notice_queue_id: noticeId } : {}) }, `local queue: removed, ${why}`);
  }

  /**
   * Queues the delivery status notice about `entry` for its sender; its
   * queue id, or null when none is due (null sender, NOTIFY, a notice
   * about a notice).
   */
  private async notify(entry: RunnerEntry, reason: NoticeReason, error: SubmissionError, about: Envelope = withRecipients(entry.envelope, dueRecipients(entry))): Promise<string | null> {
    const config = this.services.config();
    const notice = await noticeToQueue({
      queueId: entry.id,
      envelope: about,
      arrivalTime: entry.caller.arrivalTime,
      reason,
      error,
      read: () => this.entries.queue.read(entry.id),
      limits: config.limits,
      maximalLifetimeMs: config.queue.maximalLifetime,
      reportingHost: this.services.hostName,
      uid: process.geteuid?.() ?? 0,
      now: this.services.now(),
    });
    if (notice === null) {
      this.services.log.info({ queue_id: entry.id, reason }, 'local queue: no notice is due (null sender, or NOTIFY asks for none)');
      return null;
    }
    let id: string;
    try {
      ({ id } = await this.entries.commit(notice.entry, notice.message, false));
    } finally {
      notice.close();
    }
    // Due at once, in its sender's turn.
    this.services.schedule.reschedule();
    if (reason === 'delay-warning') this.counts.delayWarnings++;
    this.services.log.info({ queue_id: entry.id, notice_queue_id: id, reason, to: notice.to }, 'local queue: notice queued for the sender');
    return id;
  }
}

/** The MTA's words, or the outcome's text, on one line. */
function failureText(error: SubmissionError): string {
  const reply = isSmtpError(error) && error.reply !== undefined ? describeReply(error.reply) : null;
  return (reply ?? describeStatus(error.outcome, error.message)).replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
}
