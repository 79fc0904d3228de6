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
 *   Commit window: a message the MTA has taken is removed right after the
 *   MTA's 250. A crash between the two leaves it queued, and it is
 *   delivered again after the restart; that duplicate is the price of never
 *   losing one, as in every store-and-forward MTA. The log line of each
 *   delivery names both queue ids, so such a duplicate can be traced.
 *
 *   Every change of a message's state is one log line with its queue id.
 *
 *   This file holds the schedule and the submission path's way in; beside
 *   it, in the order a message meets them: runner-entries.ts (what the
 *   runner knows of each message), delivery-attempt.ts (one attempt and
 *   what follows it: delivered, deferred, refused, expired, notices),
 *   queue-administration.ts (mailsubmitctl queue), queue-figures.ts
 *   (status and metrics).
 */
import { hostname } from 'node:os';
import { SubmissionError } from '@mailsubmit/shared';
import type { DaemonConfig } from '../../config/daemon-config.ts';
import type { QueueControl, QueuedMessageDetail, QueueListing, QueueSummary } from '../../control/queue-control.ts';
import type { Logger } from '../../logging/logger.ts';
import type { SubmissionEnd, SubmissionObserver } from '../../metrics/submission-observer.ts';
import type { Downstream } from '../downstream.ts';
import { DeliveryAttempts, type AttemptResult } from './delivery-attempt.ts';
import { DueLines } from './due-lines.ts';
import type { LocalQueue } from './local-queue.ts';
import { QueueAdministration } from './queue-administration.ts';
import { queueFigures, queueSummary, type QueueFigures } from './queue-figures.ts';
import type { QueueEntry } from './queue-file-format.ts';
import { QUEUED_OUTCOMES } from './queue-policy.ts';
import type { RecoveryReport } from './queue-recovery.ts';
import { RunnerEntries, type RunnerEntry } from './runner-entries.ts';

export interface QueueRunnerServices {
  /** The configuration and downstream in force now (a reload may change them). */
  readonly config: () => DaemonConfig;
  readonly downstream: () => Downstream;
  readonly log: Logger;
  readonly now?: () => Date;
  /** Reporting-MTA and From of notices. */
  readonly hostName?: string;
}

/** Timers fire no more often than this: a queue of thousands with spread-out attempts costs one scan a second at most. */
const TIMER_GRANULARITY_MS = 1000;

export class QueueRunner implements QueueControl, SubmissionObserver {
  private readonly entries: RunnerEntries;
  private readonly attempts: DeliveryAttempts;
  private readonly administration: QueueAdministration;
  private readonly dueLines = new DueLines<RunnerEntry>();
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
  private readonly now: () => Date;

  constructor(
    queue: LocalQueue,
    private readonly services: QueueRunnerServices,
  ) {
    this.now = services.now ?? (() => new Date());
    this.entries = new RunnerEntries(queue);
    this.attempts = new DeliveryAttempts(this.entries, {
      config: services.config,
      downstream: services.downstream,
      log: services.log,
      now: this.now,
      hostName: services.hostName ?? hostname(),
      stopped: this.stopped.signal,
      schedule: {
        mtaAnswered: (why) => this.mtaAnswered(why),
        deferredBy: (error) => this.deferredBy(error),
        reschedule: () => this.reschedule(),
      },
    });
    this.administration = new QueueAdministration(this.entries, { log: services.log, now: this.now, summary: () => this.summary(), reschedule: () => this.reschedule() });
  }

  /** Takes over what the recovery scan found, logs it, and starts the schedule. */
  start(recovery: RecoveryReport): void {
    const { log } = this.services;
    for (const name of recovery.removedIncomplete) log.info({ file: name }, 'local queue: removed an incomplete file left by a crash');
    for (const name of recovery.removedOrphanStates) log.info({ queue_id: name }, 'local queue: removed the state of a message already gone');
    for (const left of recovery.leftAlone) log.error({ file: left.name, reason: left.reason }, 'local queue: a file this mailsubmit cannot read is left alone');
    for (const found of recovery.queued) this.entries.adopt(found);
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
    const record = await this.entries.commit(entry, message, failure === null);
    if (failure !== null) {
      // The direct attempt counts: the next one is a backoff away, unless the MTA comes back first.
      await this.attempts.deferred(record, failure, { persist: false });
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
      return await this.attempts.attempt(entry, { noticeOnRefusal: false });
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

  /** A message put off because of the MTA waits for it to answer: probe it meanwhile. */
  private deferredBy(error: SubmissionError): void {
    this.waitingForMta ||= QUEUED_OUTCOMES.has(error.outcome);
    if (error.outcome === 'mta-unreachable') this.unreachable = error;
    this.setProbe();
  }

  private makeDue(entry: RunnerEntry): void {
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
      const delivery = this.attempts
        .attempt(next, { noticeOnRefusal: true })
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

  private takeDue(): RunnerEntry | null {
    for (let entry = this.dueLines.take(); entry !== null; entry = this.dueLines.take()) {
      entry.due = false;
      // Held, deleted or taken by attemptNow since it became due.
      if (this.entries.has(entry.id) && !entry.state.held && !entry.active) return entry;
    }
    return null;
  }

  // ---- the administrator (QueueControl, queue-administration.ts) ----

  list(): { readonly messages: readonly QueueListing[]; readonly summary: QueueSummary } {
    return this.administration.list();
  }

  show(id: string, limit?: number): Promise<QueuedMessageDetail> {
    return this.administration.show(id, limit);
  }

  flush(id?: string): Promise<readonly string[]> {
    return this.administration.flush(id);
  }

  hold(id: string): Promise<void> {
    return this.administration.hold(id);
  }

  release(id: string): Promise<void> {
    return this.administration.release(id);
  }

  delete(id: string): Promise<void> {
    return this.administration.delete(id);
  }

  requeue(id?: string): Promise<readonly string[]> {
    return this.administration.requeue(id);
  }

  // ---- status, metrics, stop ----

  /** For the metrics endpoint and `mailsubmitctl status`. */
  figures(): QueueFigures {
    return queueFigures(this.entries, this.attempts.counts);
  }

  /** The totals, for the mailq-style summary line and `mailsubmitctl status`. */
  summary(): QueueSummary {
    return queueSummary(this.figures());
  }

  /**
   * Stops scheduling; deliveries under way get `graceMs` to finish, then
   * are cut short without the final dot (their messages stay queued).
   */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    this.entries.close();
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.probeTimer !== null) clearInterval(this.probeTimer);
    const all = Promise.allSettled([...this.deliveries]);
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise<void>((resolve) => (grace = setTimeout(resolve, graceMs)))]);
    clearTimeout(grace);
    this.stopped.abort(new SubmissionError('shutting-down', 'mailsubmitd is stopping'));
    await all;
  }
}

/** Turns are taken by caller uid and envelope sender (due-lines.ts). */
function senderLine(entry: RunnerEntry): string {
  return `${entry.caller.uid} ${entry.envelope.sender.text}`;
}
