/**
 * The one hook where a finished submission is reported to whoever keeps
 * figures about it (the Prometheus metrics, the downstream's health for
 * `mailsubmitctl status`). The daemon calls it once per submission, from the
 * place where the submission ends, so no stage needs to know about metrics.
 */
import type { Outcome } from '@mailsubmit/shared';

export interface SubmissionEnd {
  readonly outcome: Outcome;
  /** The caller's text (status text and detail). */
  readonly text: string;
  /** From accept to the reply, in milliseconds. */
  readonly durationMs: number;
  /** Octets of the message as the caller wrote it, when it was read to the end. */
  readonly octets: number | null;
  /** Wall-clock time of the end, milliseconds since the epoch. */
  readonly at: number;
}

export interface SubmissionObserver {
  /** Must not throw; the daemon logs and ignores an observer that does. */
  submissionEnded(end: SubmissionEnd): void;
}

/** Outcomes that are the MTA's answer or the way to it failing, not the caller's doing. */
export const DOWNSTREAM_OUTCOMES: ReadonlySet<Outcome> = new Set<Outcome>([
  'mta-unreachable',
  'mta-timeout',
  'mta-protocol',
  'mta-tempfail',
  // The MTA failed; the message waits in the local queue.
  'queued-locally',
  'recipient-refused',
  'message-refused',
  'smtputf8-unsupported',
]);
