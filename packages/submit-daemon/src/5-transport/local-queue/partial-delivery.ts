/**
 * An LMTP server answers the end of the data once per recipient, so a
 * transaction can end with some recipients delivered and others not. The
 * message must then go on for the others only: each further attempt would
 * hand the delivered ones another copy (Postfix's queue manager marks such
 * recipients done in the queue file for the same reason). This file
 * splits such an outcome: who has the message, who was refused for good,
 * and who is still due, each with its own reply.
 */
import type { Envelope, Recipient, SmtpReply, SubmissionError } from '@mailsubmit/shared';
import { isSmtpError, SmtpError } from '../smtp/index.ts';

export interface PartialDelivery {
  /** Indexes (into the recipients tried) that have the message. */
  readonly delivered: readonly number[];
  /** Indexes refused with 5xx: finished, the sender is told. */
  readonly refused: readonly number[];
  /** Indexes put off with 4xx: still due. */
  readonly putOff: readonly number[];
}

/** The split, where the error is per-recipient replies after the data; null for any other failure. */
export function partialDelivery(error: SubmissionError): PartialDelivery | null {
  if (!isSmtpError(error) || error.code !== 'ERR_LMTP_RECIPIENT_REFUSED' || error.recipientReplies === undefined) return null;
  const indexes = (test: (reply: SmtpReply) => boolean) => error.recipientReplies?.flatMap((reply, i) => (test(reply) ? [i] : [])) ?? [];
  return {
    delivered: indexes((r) => r.code >= 200 && r.code <= 299),
    refused: indexes((r) => r.code >= 500),
    putOff: indexes((r) => r.code >= 400 && r.code <= 499),
  };
}

/** The envelope with only the recipients at `indexes`. */
export function withRecipients(envelope: Envelope, indexes: readonly number[]): Envelope {
  return { ...envelope, recipients: indexes.map((i) => envelope.recipients[i] as Recipient) };
}

/** The same failure, its per-recipient replies cut to the recipients at `indexes` (so they line up with withRecipients). */
export function withReplies(error: SmtpError, indexes: readonly number[]): SmtpError {
  const replies = indexes.map((i) => error.recipientReplies?.[i] as SmtpReply);
  return new SmtpError(error.code, error.outcome, error.message, {
    ...(error.stage !== undefined ? { stage: error.stage } : {}),
    ...(error.reply !== undefined ? { reply: error.reply } : {}),
    ...(error.command !== undefined ? { command: error.command } : {}),
    recipientReplies: replies,
  });
}

/** The recipients that do not have the message yet, with the failure cut to them; unchanged unless some were delivered. */
export function withoutDelivered(envelope: Envelope, error: SubmissionError): { readonly envelope: Envelope; readonly error: SubmissionError } {
  const split = partialDelivery(error);
  if (split === null || split.delivered.length === 0 || !isSmtpError(error)) return { envelope, error };
  const waiting = [...split.refused, ...split.putOff].sort((a, b) => a - b);
  return { envelope: withRecipients(envelope, waiting), error: withReplies(error, waiting) };
}
