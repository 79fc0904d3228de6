/**
 * Where every ended submission is accounted for: counted by outcome (with
 * the last errors, for `mailsubmitctl status`), written as its one log
 * line, and told to the observers (downstream health, Prometheus metrics).
 * Each step on its own: a failure in one neither skips the others nor
 * reaches the submission, whose outcome was decided before.
 */
import type { Outcome } from '@mailsubmit/shared';
import type { Logger } from '../logging/logger.ts';
import { SubmissionLog } from '../logging/submission-log.ts';
import type { JobResult } from '../submission-job.ts';
import type { SubmissionObserver } from './submission-observer.ts';

const LAST_ERRORS = 10;

export class SubmissionTally {
  private readonly counts: Record<string, number> = {};
  private readonly errors: { at: number; outcome: string; text: string }[] = [];
  private readonly observers: SubmissionObserver[] = [];
  private readonly lines: SubmissionLog;

  constructor(private readonly log: Logger) {
    this.lines = new SubmissionLog(log);
  }

  /** Tells `observer` about every submission that ends from now on. */
  addObserver(observer: SubmissionObserver): void {
    this.observers.push(observer);
  }

  /** `status` is the exit status the caller got; `context` the log line's who and where. */
  ended(context: Record<string, unknown>, result: JobResult, status: number, durationMs: number, replyError: Error | null): void {
    this.count(result.outcome, result.text);
    this.lines.record(context, result, status, durationMs, replyError);
    for (const observer of this.observers) {
      try {
        observer.submissionEnded({ outcome: result.outcome, text: result.text, durationMs, octets: result.stats?.octets ?? null, at: Date.now() });
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'a submission observer failed');
      }
    }
  }

  get byOutcome(): Record<string, number> {
    return { ...this.counts };
  }

  get total(): number {
    return Object.values(this.counts).reduce((sum, n) => sum + n, 0);
  }

  /** The last few failures, oldest first. */
  get lastErrors(): readonly { at: number; outcome: string; text: string }[] {
    return [...this.errors];
  }

  private count(outcome: Outcome, text: string): void {
    this.counts[outcome] = (this.counts[outcome] ?? 0) + 1;
    if (outcome === 'ok') return;
    this.errors.push({ at: Date.now(), outcome, text });
    if (this.errors.length > LAST_ERRORS) this.errors.shift();
  }
}
