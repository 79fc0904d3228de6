/**
 * A verdict: what a submission of some input would come to, before any MTA
 * is involved. `mailsubmitctl validate` prints it; the daemon uses the same
 * wording for the same failures.
 */
import type { Envelope } from '../envelope/envelope.ts';
import { isSubmissionError, SubmissionError } from '../errors.ts';
import type { MessageStats } from '../message/message-encoder.ts';
import { describeStatus, statusOf, type Outcome } from '../status/outcomes.ts';

export interface Verdict {
  readonly outcome: Outcome;
  readonly exitCode: number;
  /** One line for a person: `ok: 3 recipients, 2154 octets, 8bit` or the reason. */
  readonly text: string;
  readonly envelope?: Envelope;
  readonly stats?: MessageStats;
}

export function acceptedVerdict(envelope: Envelope, stats: MessageStats): Verdict {
  const count = envelope.recipients.length;
  const parts = [
    `${count} ${count === 1 ? 'recipient' : 'recipients'}`,
    `${stats.octets} octets`,
    stats.eightBit ? '8bit' : '7bit',
  ];
  if (needsUtf8(envelope)) parts.push('smtputf8');
  return { outcome: 'ok', exitCode: 0, text: `ok: ${parts.join(', ')}`, envelope, stats };
}

/** Any failure as a verdict: a SubmissionError keeps its outcome, anything else is temporary. */
export function refusedVerdict(error: unknown): Verdict {
  const submissionError: SubmissionError = isSubmissionError(error)
    ? error
    : new SubmissionError('internal', error instanceof Error ? error.message : String(error));
  const { outcome, exitCode } = statusOf(submissionError.outcome);
  return { outcome, exitCode, text: describeStatus(outcome, submissionError.message) };
}

function needsUtf8(envelope: Envelope): boolean {
  return envelope.sender.utf8 || envelope.recipients.some((r) => r.address.utf8 || r.orcpt?.type === 'utf-8');
}
