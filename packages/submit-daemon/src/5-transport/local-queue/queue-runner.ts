/**
 * NAME
 *   queue-runner - delivery from mailsubmit's local queue
 *
 * DESCRIPTION
 *   The queue runner owns the local queue (local-queue.ts) while the daemon
 *   runs: it takes the messages the submission path queues, tries each
 *   again on the schedule of retry-schedule.ts, and ends each one with
 *   exactly one of: delivered (the MTA's 250, then the file is removed),
 *   returned (a delivery status notice to the sender, then the file is
 *   removed), or deleted by an administrator.
 *
 *   Order and fairness: due messages wait in one line per sender (caller
 *   uid and envelope sender) and the lines take turns, so one sender's
 *   thousand messages do not keep another's one waiting behind them. At
 *   most queue.max_deliveries deliveries run at once.
 *
 *   The MTA coming back: while messages wait because of the MTA, the runner
 *   asks the downstream to probe it every queue.probe_interval (connect and
 *   greeting); a probe that succeeds, or any submission that reaches the
 *   MTA (submissionEnded), makes every waiting message due at once.
 *
 *   Each attempt sends what the direct delivery would have sent: the same
 *   envelope (sender, recipients with NOTIFY and ORCPT, RET, ENVID, the
 *   caller's XFORWARD attributes), the same 8-bit declaration and source.
 *
 *   Commit window: a message the MTA has taken is removed right after the
 *   MTA's 250. A crash between the two leaves it queued, and it is
 *   delivered again after the restart; that duplicate is the price of never
 *   losing one, as in every store-and-forward MTA. The log line of each
 *   delivery names both queue ids, so such a duplicate can be traced.
 *
 *   A notice is itself a queued message (null sender, front door "notice"),
 *   committed before the message it reports on is removed: a crash in
 *   between sends the notice twice, never not at all. A notice that cannot
 *   be delivered is not reported on (its sender is null) and is dropped.
 *
 *   Every change of a message's state is one log line with its queue id.
 */
import { hostname } from 'node:os';
import {
  describeReply,
  describeStatus,
  isSubmissionError,
  statusOf,
  SubmissionError,
  writeEnvelopeBlock,
  type Envelope,
} from '@mailsubmit/shared';
import type { DaemonConfig } from '../../config/daemon-config.ts';
import { QueueControlError, UnknownQueuedMessage, type QueueControl, type QueuedMessageDetail, type QueueListing, type QueueSummary } from '../../control/queue-control.ts';
import type { Logger } from '../../logging/logger.ts';
import type { SubmissionEnd, SubmissionObserver } from '../../metrics/submission-observer.ts';
import type { Downstream } from '../downstream.ts';
import { isSmtpError } from '../smtp/index.ts';
import type { NoticeReason } from './delivery-status-notice.ts';
import { DueLines } from './due-lines.ts';
import type { LocalQueue } from './local-queue.ts';
import { DamagedQueueFile, type QueueEntry } from './queue-file-format.ts';
import { QUEUED_OUTCOMES } from './queue-policy.ts';
import type { RecoveryReport } from './queue-recovery.ts';
import { partialDelivery, withRecipients, withReplies } from './partial-delivery.ts';
import { INITIAL_STATE, type QueueState } from './queue-state.ts';
import { noticeToQueue } from './queue-notice.ts';
import { DotUnstuffer } from './queued-original.ts';
import { delayWarningDue, lifetimeOver, nextAttemptAt } from './retry-schedule.ts';

export interface QueueRunnerServices {
  /** The configuration and downstream in force now (a reload may change them). */
  readonly config: () => DaemonConfig;
  readonly downstream: () => Downstream;
  readonly log: Logger;
  readonly now?: () => Date;
  /** Reporting-MTA and From of notices. */
  readonly hostName?: string;
}

/** What one attempt came to. */
/** Indexes of the recipients not finished yet (QueueState.doneRecipients). */
function dueRecipients(entry: Entry): number[] {
  const done = new Set(entry.state.doneRecipients);
  return entry.envelope.recipients.flatMap((_, i) => (done.has(i) ? [] : [i]));
}

export type AttemptResult =
  | { readonly kind: 'delivered'; readonly mtaQueueId?: string; readonly mtaText: string; readonly omitted: readonly string[] }
  | { readonly kind: 'deferred'; readonly error: SubmissionError }
  | { readonly kind: 'refused'; readonly error: SubmissionError };

/** Figures for the metrics endpoint. */
export interface QueueFigures {
  readonly messages: number;
  readonly octets: number;
  readonly held: number;
  readonly oldestArrival: Date | null;
  readonly delivered: number;
  readonly retries: number;
  readonly bounces: number;
  readonly delayWarnings: number;
  readonly dropped: number;
}

/** What the runner knows of one message without reading its file. */
interface Entry {
  readonly id: string;
  readonly envelope: Envelope;
  readonly caller: QueueEntry['caller'];
  readonly size: number;
  state: QueueState;
  active: boolean;
  /** In a due line, waiting for a delivery slot. */
  due: boolean;
}

const DEFAULT_SHOW_LIMIT = 1024 * 1024;
/** Timers fire no more often than this: a queue of thousands with spread-out attempts costs one scan a second at most. */
const TIMER_GRANULARITY_MS = 1000;

export class QueueRunner implements QueueControl, SubmissionObserver {
  private readonly entries = new Map<string, Entry>();
  private readonly dueLines = new DueLines<Entry>();
  private active = 0;
  private readonly deliveries = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  private probeTimer: NodeJS.Timeout | null = null;
  /** Messages are waiting because the MTA failed; cleared when it answers. */
  private waitingForMta = false;
  /** The last failure to reach the MTA at all, until it answers again (a probe, a delivery). */
  private unreachable: SubmissionError | null = null;
  private stopping = false;
  private readonly stopped = new AbortController();
  private readonly counts = { delivered: 0, retries: 0, bounces: 0, delayWarnings: 0, dropped: 0 };
  private readonly now: () => Date;
  private readonly hostName: string;

  constructor(
    private readonly queue: LocalQueue,
    private readonly services: QueueRunnerServices,
  ) {
    this.now = services.now ?? (() => new Date());
    this.hostName = services.hostName ?? hostname();
  }

  /** Takes over what the recovery scan found, logs it, and starts the schedule. */
  start(recovery: RecoveryReport): void {
    const { log } = this.services;
    for (const name of recovery.removedIncomplete) log.info({ file: name }, 'local queue: removed an incomplete file left by a crash');
    for (const name of recovery.removedOrphanStates) log.info({ queue_id: name }, 'local queue: removed the state of a message already gone');
    for (const left of recovery.leftAlone) log.error({ file: left.name, reason: left.reason }, 'local queue: a file this mailsubmit cannot read is left alone');
    for (const found of recovery.queued) {
      this.entries.set(found.queueId, { id: found.queueId, envelope: found.envelope, caller: found.caller, size: found.messageOctets, state: found.state, active: false, due: false });
    }
    if (recovery.queued.length > 0) {
      log.info({ messages: recovery.queued.length }, 'local queue: resuming the messages queued before the start');
      // After a restart the MTA's state is unknown: probe it rather than wait out each backoff.
      this.waitingForMta = true;
    }
    this.reschedule();
  }

  // ---- the submission path ----

  /**
   * Commits a message the MTA could not take now (`failure`), or, with
   * null, one its submission tries from the queue at once (attemptNow).
   * Resolves once the file is on stable storage; throws SubmissionError
   * (spool-full for a limit) and then leaves nothing behind.
   */
  async enqueue(entry: QueueEntry, message: AsyncIterable<Uint8Array>, failure: SubmissionError | null): Promise<string> {
    const record = await this.commit(entry, message, failure === null);
    if (failure !== null) {
      // The direct attempt counts: the next one is a backoff away, unless the MTA comes back first. Kept in
      // memory only: queueing writes one file (queue-state.ts), and a restart, which forgets it, only makes
      // the message due at once.
      await this.deferred(record, failure, { persist: false });
      this.reschedule();
    } else {
      this.active++;
    }
    this.services.log.info(
      { queue_id: record.id, uid: entry.caller.uid, door: entry.caller.frontDoor, sender: entry.envelope.sender.text, nrcpt: entry.envelope.recipients.length, size: record.size, ...(failure ? { reason: failure.message } : {}) },
      'local queue: queued',
    );
    return record.id;
  }

  /**
   * The attempt a submission makes from the queue for its own message,
   * right after enqueue(…, null): delivered or refused, the message is
   * gone; deferred, it waits for its next attempt. A refusal is the
   * submission's to report (its caller is still there): no notice.
   */
  async attemptNow(id: string): Promise<AttemptResult> {
    const entry = this.entries.get(id);
    if (entry === undefined) throw new SubmissionError('internal', `the local queue holds no message ${id}`);
    try {
      return await this.attempt(entry, { noticeOnRefusal: false });
    } finally {
      this.active--;
      entry.active = false;
      this.pump();
    }
  }

  /**
   * Why the MTA cannot be reached, while it is known not to answer: the
   * last connection that failed, not followed yet by a probe or a delivery
   * that got through. A submission that may be queued then goes to the
   * queue at once instead of waiting out its own connect (timeouts.connect
   * when the MTA hangs). Only with a downstream that can be probed: without
   * probes nothing would ever find the MTA back but the backoff.
   */
  get mtaUnreachable(): SubmissionError | null {
    return this.services.downstream().probe !== undefined ? this.unreachable : null;
  }

  private async commit(entry: QueueEntry, message: AsyncIterable<Uint8Array>, active: boolean): Promise<Entry> {
    if (this.stopping) throw new SubmissionError('shutting-down', 'mailsubmitd is stopping; try again shortly');
    const committed = await this.queue.enqueue(entry, message);
    const record: Entry = { id: committed.queueId, envelope: entry.envelope, caller: entry.caller, size: committed.messageOctets, state: INITIAL_STATE, active, due: false };
    this.entries.set(record.id, record);
    return record;
  }

  /** A submission reached the MTA: whatever waits for it may go now. */
  submissionEnded(end: SubmissionEnd): void {
    if (end.outcome === 'ok') {
      this.unreachable = null;
      if (this.waitingForMta) this.mtaAnswered('a submission reached the MTA');
    }
  }

  // ---- scheduling ----

  private reschedule(): void {
    if (this.stopping) return;
    const now = this.now().getTime();
    let earliest = Infinity;
    let waiting = false;
    for (const entry of this.entries.values()) {
      if (entry.active || entry.due || entry.state.held) continue;
      const at = entry.state.nextAttempt?.getTime() ?? now;
      if (at <= now) this.makeDue(entry);
      else {
        earliest = Math.min(earliest, at);
        waiting ||= entry.state.attempts > 0;
      }
    }
    this.waitingForMta &&= waiting;
    this.setTimer(earliest);
    this.setProbe();
    this.pump();
  }

  private setTimer(at: number): void {
    if (at === this.timerAt && this.timer !== null) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = at;
    if (at === Infinity) return;
    const delay = Math.max(at - this.now().getTime(), TIMER_GRANULARITY_MS);
    // setTimeout's limit is 2^31-1 ms (24.8 days); a later time is reached in steps.
    this.timer = setTimeout(() => {
      this.timer = null;
      this.timerAt = Infinity;
      this.reschedule();
    }, Math.min(delay, 2 ** 31 - 1));
    this.timer.unref();
  }

  private setProbe(): void {
    const probe = this.services.downstream().probe;
    const wanted = this.waitingForMta && !this.stopping && probe !== undefined;
    if (!wanted) {
      if (this.probeTimer !== null) clearInterval(this.probeTimer);
      this.probeTimer = null;
      return;
    }
    if (this.probeTimer !== null) return;
    this.probeTimer = setInterval(() => void this.probe(), this.services.config().queue.probeInterval);
    this.probeTimer.unref();
  }

  private async probe(): Promise<void> {
    const downstream = this.services.downstream();
    try {
      await downstream.probe?.();
    } catch (err) {
      this.services.log.debug({ err: (err as Error).message }, 'local queue: the MTA does not answer yet');
      return;
    }
    this.mtaAnswered('the MTA answers again');
  }

  /** Every message waiting for its next attempt (not held) is due now. */
  private mtaAnswered(why: string): void {
    this.unreachable = null;
    if (!this.waitingForMta || this.stopping) return;
    this.waitingForMta = false;
    let due = 0;
    for (const entry of this.entries.values()) {
      if (entry.active || entry.due || entry.state.held) continue;
      entry.state = { ...entry.state, nextAttempt: null };
      due++;
    }
    this.services.log.info({ messages: due }, `local queue: ${why}; waiting messages are due now`);
    this.reschedule();
  }

  private makeDue(entry: Entry): void {
    entry.due = true;
    this.dueLines.add(senderLine(entry), entry);
  }

  /** Starts deliveries while slots are free: the first line's first message, then that line goes to the back. */
  private pump(): void {
    const max = this.services.config().queue.maxDeliveries;
    while (!this.stopping && this.active < max) {
      const next = this.takeDue();
      if (next === null) return;
      this.active++;
      next.active = true;
      const delivery = this.attempt(next, { noticeOnRefusal: true })
        .then(
          () => undefined,
          (err: unknown) => {
            // Its state could not be written (a full disk): try again after a backoff, never in a tight loop.
            next.state = { ...next.state, nextAttempt: new Date(this.now().getTime() + this.services.config().queue.minimalBackoff) };
            this.services.log.error({ queue_id: next.id, err: (err as Error).message }, 'local queue: attempt failed; tried again after the minimal backoff');
          },
        )
        .finally(() => {
          this.active--;
          next.active = false;
          this.deliveries.delete(delivery);
          this.reschedule();
        });
      this.deliveries.add(delivery);
    }
  }

  private takeDue(): Entry | null {
    for (let entry = this.dueLines.take(); entry !== null; entry = this.dueLines.take()) {
      entry.due = false;
      // Held, deleted or taken by attemptNow since it became due.
      if (this.entries.has(entry.id) && !entry.state.held && !entry.active) return entry;
    }
    return null;
  }

  // ---- one attempt ----

  private async attempt(entry: Entry, options: { readonly noticeOnRefusal: boolean }): Promise<AttemptResult> {
    const { log } = this.services;
    let opened;
    try {
      opened = await this.queue.read(entry.id);
    } catch (err) {
      // A file that cannot be read is held, not retried in a loop; the administrator decides.
      const reason = err instanceof DamagedQueueFile ? err.message : `cannot read the queue file: ${(err as Error).message}`;
      log.error({ queue_id: entry.id, reason }, 'local queue: held, the queue file cannot be read');
      await this.saveState(entry, { ...entry.state, held: true, lastError: reason });
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
        signal: this.stopped.signal,
        route: { door: opened.caller.frontDoor, caller: opened.caller.user },
        // Read again from the file, should another downstream be tried after this one read it.
        replay: () => this.messageOf(entry.id),
      });
      result = { kind: 'delivered', ...(delivery.queueId !== undefined ? { mtaQueueId: delivery.queueId } : {}), mtaText: delivery.text, omitted: delivery.omitted };
    } catch (err) {
      const error = isSubmissionError(err) ? err : new SubmissionError('internal', (err as Error).message);
      result = QUEUED_OUTCOMES.has(error.outcome) || statusOf(error.outcome).smtpClass !== 5 ? { kind: 'deferred', error } : { kind: 'refused', error };
    } finally {
      opened.message.destroy();
    }
    if (result.kind !== 'delivered') result = await this.finishSome(entry, due, result, options);

    if (result.kind === 'delivered') {
      await this.queue.remove(entry.id);
      this.entries.delete(entry.id);
      this.counts.delivered++;
      this.mtaAnswered('a queued message was delivered');
      log.info({ queue_id: entry.id, mta_queue_id: result.mtaQueueId, mta_reply: result.mtaText, attempts: entry.state.attempts + 1, sender: entry.envelope.sender.text }, 'local queue: delivered');
    } else if (result.kind === 'refused') {
      if (options.noticeOnRefusal) await this.giveUp(entry, 'refused', result.error);
      else await this.forget(entry, 'refused, its caller was told', result.error.message);
    } else if (this.stopped.signal.aborted) {
      log.info({ queue_id: entry.id }, 'local queue: attempt cut short by the daemon stopping; the message stays queued');
    } else if (lifetimeOver(entry.caller.arrivalTime, this.now(), this.services.config().queue)) {
      await this.giveUp(entry, 'expired', result.error);
    } else {
      this.counts.retries++;
      await this.deferred(entry, result.error);
    }
    return result;
  }

  /** The message's octets, read from its queue file once more. */
  private async *messageOf(id: string): AsyncGenerator<Uint8Array> {
    const again = await this.queue.read(id);
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
  private async finishSome(entry: Entry, due: readonly number[], result: Exclude<AttemptResult, { kind: 'delivered' }>, options: { readonly noticeOnRefusal: boolean }): Promise<AttemptResult> {
    const split = partialDelivery(result.error);
    if (split === null || !isSmtpError(result.error) || split.putOff.length === 0 || split.putOff.length === due.length) return result;
    if (split.refused.length > 0 && options.noticeOnRefusal) {
      await this.notify(entry, 'refused', withReplies(result.error, split.refused), withRecipients(entry.envelope, split.refused.map((i) => due[i] as number)));
    }
    const finished = [...split.delivered, ...split.refused].map((i) => due[i] as number);
    await this.saveState(entry, { ...entry.state, doneRecipients: [...entry.state.doneRecipients, ...finished].sort((a, b) => a - b) });
    this.services.log.info({ queue_id: entry.id, delivered: split.delivered.length, refused: split.refused.length, put_off: split.putOff.length }, 'local queue: some recipients finished, the others wait');
    return { kind: 'deferred', error: withReplies(result.error, split.putOff) };
  }

  /** A temporary failure: the next attempt after the backoff, a delay warning if one is due. */
  private async deferred(entry: Entry, error: SubmissionError, options: { readonly persist: boolean } = { persist: true }): Promise<void> {
    const config = this.services.config().queue;
    const now = this.now();
    const attempts = entry.state.attempts + 1;
    const warn = delayWarningDue(entry.caller.arrivalTime, now, entry.state.delayWarned, config);
    if (warn) await this.notify(entry, 'delay-warning', error);
    const nextAttempt = nextAttemptAt(attempts, entry.caller.arrivalTime, now, config);
    const state = { ...entry.state, attempts, nextAttempt, lastError: failureText(error), delayWarned: entry.state.delayWarned || warn };
    if (options.persist) await this.saveState(entry, state);
    else entry.state = state;
    this.waitingForMta ||= QUEUED_OUTCOMES.has(error.outcome);
    if (error.outcome === 'mta-unreachable') this.unreachable = error;
    this.services.log.info({ queue_id: entry.id, attempts, next_attempt: nextAttempt.toISOString(), reason: failureText(error) }, 'local queue: deferred');
    this.setProbe();
  }

  /** Refused or expired: the notice to the sender is committed first, then the message goes. */
  private async giveUp(entry: Entry, reason: 'refused' | 'expired', error: SubmissionError): Promise<void> {
    const noticeId = await this.notify(entry, reason, error);
    if (noticeId !== null) this.counts.bounces++;
    await this.forget(entry, reason === 'expired' ? 'expired' : 'refused', failureText(error), noticeId);
  }

  private async forget(entry: Entry, why: string, detail: string, noticeId: string | null = null): Promise<void> {
    await this.queue.remove(entry.id);
    this.entries.delete(entry.id);
    if (noticeId === null && why !== 'refused, its caller was told') this.counts.dropped++;
    this.services.log.warn({ queue_id: entry.id, sender: entry.envelope.sender.text, reason: detail, ...(noticeId !== null ? { notice_queue_id: noticeId } : {}) }, `local queue: removed, ${why}`);
  }

  /**
   * Queues the delivery status notice about `entry` for its sender; its
   * queue id, or null when none is due (null sender, NOTIFY, a notice
   * about a notice).
   */
  private async notify(entry: Entry, reason: NoticeReason, error: SubmissionError, about: Envelope = withRecipients(entry.envelope, dueRecipients(entry))): Promise<string | null> {
    const config = this.services.config();
    const notice = await noticeToQueue({
      queueId: entry.id,
      envelope: about,
      arrivalTime: entry.caller.arrivalTime,
      reason,
      error,
      read: () => this.queue.read(entry.id),
      limits: config.limits,
      maximalLifetimeMs: config.queue.maximalLifetime,
      reportingHost: this.hostName,
      uid: process.geteuid?.() ?? 0,
      now: this.now(),
    });
    if (notice === null) {
      this.services.log.info({ queue_id: entry.id, reason }, 'local queue: no notice is due (null sender, or NOTIFY asks for none)');
      return null;
    }
    let id: string;
    try {
      ({ id } = await this.commit(notice.entry, notice.message, false));
    } finally {
      notice.close();
    }
    // Due at once, in its sender's turn.
    this.reschedule();
    if (reason === 'delay-warning') this.counts.delayWarnings++;
    this.services.log.info({ queue_id: entry.id, notice_queue_id: id, reason, to: notice.to }, 'local queue: notice queued for the sender');
    return id;
  }

  private async saveState(entry: Entry, state: QueueState): Promise<void> {
    await this.queue.setState(entry.id, state);
    entry.state = state;
  }

  // ---- the administrator (QueueControl) ----

  list(): { readonly messages: readonly QueueListing[]; readonly summary: QueueSummary } {
    const messages = [...this.entries.values()].sort((a, b) => (a.id < b.id ? -1 : 1)).map((entry) => this.listing(entry));
    return { messages, summary: this.summary() };
  }

  async show(id: string, limit = DEFAULT_SHOW_LIMIT): Promise<QueuedMessageDetail> {
    const entry = this.known(id);
    const opened = await this.queue.read(id);
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
      await this.saveState(entry, { ...entry.state, nextAttempt: null });
      flushed.push(entry.id);
    }
    this.services.log.info({ messages: flushed.length, ...(id !== undefined ? { queue_id: id } : {}) }, 'local queue: flushed by the administrator');
    this.reschedule();
    return flushed;
  }

  async hold(id: string): Promise<void> {
    const entry = this.known(id);
    await this.saveState(entry, { ...entry.state, held: true });
    this.services.log.info({ queue_id: id }, 'local queue: held by the administrator');
  }

  async release(id: string): Promise<void> {
    const entry = this.known(id);
    if (!entry.state.held) throw new QueueControlError(`${id} is not held`);
    await this.saveState(entry, { ...entry.state, held: false, nextAttempt: null });
    this.services.log.info({ queue_id: id }, 'local queue: released by the administrator');
    this.reschedule();
  }

  async delete(id: string): Promise<void> {
    const entry = this.known(id);
    if (entry.active) throw new QueueControlError(`${id} is being delivered now; hold it, or try again when the attempt is over`);
    await this.queue.remove(id);
    this.entries.delete(id);
    this.services.log.warn({ queue_id: id, sender: entry.envelope.sender.text, nrcpt: entry.envelope.recipients.length }, 'local queue: deleted by the administrator, without a notice');
  }

  async requeue(id?: string): Promise<readonly string[]> {
    const chosen = id !== undefined ? [this.known(id)] : [...this.entries.values()].filter((entry) => !entry.state.held);
    const requeued: string[] = [];
    for (const entry of chosen) {
      if (entry.active) continue;
      await this.saveState(entry, { ...INITIAL_STATE, held: entry.state.held, delayWarned: entry.state.delayWarned, doneRecipients: entry.state.doneRecipients });
      requeued.push(entry.id);
    }
    this.services.log.info({ messages: requeued.length, ...(id !== undefined ? { queue_id: id } : {}) }, 'local queue: requeued by the administrator (retry history forgotten)');
    this.reschedule();
    return requeued;
  }

  /** One pass over the messages, no listing built: the metrics and `mailsubmitctl status` ask often. */
  figures(): QueueFigures {
    let oldest: Date | null = null;
    let octets = 0;
    let held = 0;
    for (const entry of this.entries.values()) {
      octets += entry.size;
      if (entry.state.held) held++;
      if (oldest === null || entry.caller.arrivalTime < oldest) oldest = entry.caller.arrivalTime;
    }
    return { messages: this.entries.size, octets, held, oldestArrival: oldest, ...this.counts };
  }

  /** The totals, for the mailq-style summary line and `mailsubmitctl status`. */
  summary(): QueueSummary {
    const { messages, octets, held, oldestArrival } = this.figures();
    return { messages, octets, held, oldest_arrival: oldestArrival?.toISOString() ?? null };
  }

  /**
   * Stops scheduling; deliveries under way get `graceMs` to finish, then
   * are cut short without the final dot (their messages stay queued).
   */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.probeTimer !== null) clearInterval(this.probeTimer);
    const all = Promise.allSettled([...this.deliveries]);
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise<void>((resolve) => (grace = setTimeout(resolve, graceMs)))]);
    clearTimeout(grace);
    this.stopped.abort(new SubmissionError('shutting-down', 'mailsubmitd is stopping'));
    await all;
  }

  private listing(entry: Entry): QueueListing {
    const now = this.now();
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

  private known(id: string): Entry {
    const entry = this.entries.get(id);
    if (entry === undefined) throw new UnknownQueuedMessage(id);
    return entry;
  }
}

/** Turns are taken by caller uid and envelope sender (due-lines.ts). */
function senderLine(entry: Entry): string {
  return `${entry.caller.uid} ${entry.envelope.sender.text}`;
}

/** The MTA's words, or the outcome's text, on one line. */
function failureText(error: SubmissionError): string {
  const reply = isSmtpError(error) && error.reply !== undefined ? describeReply(error.reply) : null;
  return (reply ?? describeStatus(error.outcome, error.message)).replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
}
