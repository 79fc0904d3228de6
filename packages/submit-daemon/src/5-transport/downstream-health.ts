/**
 * How the way to the MTA has been doing, for `mailsubmitctl status`: when a
 * submission last went through, and when and why one last failed there.
 * An administrator looking at a stuck queue wants exactly these two facts
 * before reading any log.
 */
import { DOWNSTREAM_OUTCOMES, type SubmissionEnd, type SubmissionObserver } from '../metrics/submission-observer.ts';

export interface DownstreamFailure {
  readonly at: number;
  readonly outcome: string;
  readonly text: string;
}

export class DownstreamHealth implements SubmissionObserver {
  private success: number | null = null;
  private failure: DownstreamFailure | null = null;

  get lastSuccessAt(): number | null {
    return this.success;
  }

  get lastFailure(): DownstreamFailure | null {
    return this.failure;
  }

  /** Healthy until a failure that no success has followed yet. */
  get healthy(): boolean {
    return this.failure === null || (this.success !== null && this.success >= this.failure.at);
  }

  submissionEnded(end: SubmissionEnd): void {
    if (end.outcome === 'ok') this.success = end.at;
    else if (DOWNSTREAM_OUTCOMES.has(end.outcome)) this.failure = { at: end.at, outcome: end.outcome, text: end.text };
  }
}
