/**
 * Address verification on an open SmtpConnection (mailsubmit-sendmail -bv):
 * XFORWARD, MAIL and every RCPT, then RSET. DATA is never sent, so nothing
 * can be delivered; each RCPT reply is the MTA's verdict on that address
 * (its recipient checks: local recipient table, relay rules, virtual and
 * access maps), as it would answer it for a real submission.
 *
 * Every RCPT gets its reply, a refused one included (a submission stops
 * writing at the first refusal; a report wants them all). A refused MAIL
 * (or XFORWARD) ends the verification with that reply as an SmtpError: the
 * sender was refused, so no recipient was verified.
 */
import type { Envelope, Recipient, SmtpReply, XforwardSource } from '@mailsubmit/shared';
import { replyError, type SmtpConnection } from './smtp-connection.ts';
import { SmtpError } from './smtp-error.ts';
import { envelopeReplies, envelopeSteps, resetQuietly } from './smtp-transaction.ts';

export interface VerifyOptions {
  readonly xforwardSource?: XforwardSource;
  /** False: never send XFORWARD (downstream.xforward = false). */
  readonly xforward?: boolean;
}

export interface RecipientVerdict {
  readonly recipient: Recipient;
  /** The MTA's reply to its RCPT: 2xx deliverable, 4xx or 5xx not. */
  readonly reply: SmtpReply;
}

export interface VerifyResult {
  /** One per recipient, in envelope order. */
  readonly verdicts: readonly RecipientVerdict[];
  /** DSN and other parameters the server could not take, for the log. */
  readonly omitted: readonly string[];
}

/** Asks the MTA about each recipient of `envelope` in a transaction that is reset before DATA. */
export async function verifyRecipients(conn: SmtpConnection, envelope: Envelope, options: VerifyOptions = {}): Promise<VerifyResult> {
  if (!conn.usable) throw new SmtpError('ERR_SMTP_NOT_USABLE', 'mta-protocol', 'the connection to the MTA is not usable');
  const { steps, mailIndex, omitted } = envelopeSteps(conn, envelope, { eightBit: false, ...options });
  conn.busy = true;
  try {
    const replies = await envelopeReplies(conn, steps, 'every-recipient');
    const mailReply = replies[mailIndex];
    const refused = replies.findIndex((reply, index) => index <= mailIndex && !positive(reply));
    if (refused >= 0 || mailReply === undefined) {
      conn.markError();
      if (mailReply !== undefined && positive(mailReply)) await resetQuietly(conn);
      const step = steps[refused >= 0 ? refused : mailIndex];
      const reply = replies[refused];
      if (reply === undefined || step === undefined) throw new SmtpError('ERR_SMTP_REPLY', 'mta-protocol', 'the MTA did not answer MAIL');
      throw replyError(reply, step.stage, step.line);
    }
    const rcptReplies = replies.slice(mailIndex + 1);
    if (rcptReplies.length !== envelope.recipients.length) {
      conn.destroy();
      throw new SmtpError('ERR_SMTP_REPLY', 'mta-protocol', `the MTA answered ${rcptReplies.length} of ${envelope.recipients.length} RCPT commands`);
    }
    // The transaction ends here, whatever the verdicts: no DATA, nothing delivered.
    const reset = await conn.command('RSET', 'rset');
    if (!positive(reset)) {
      conn.markError();
      conn.destroy();
    }
    return { verdicts: envelope.recipients.map((recipient, index) => ({ recipient, reply: rcptReplies[index] as SmtpReply })), omitted };
  } finally {
    conn.busy = false;
  }
}

function positive(reply: SmtpReply): boolean {
  return reply.code >= 200 && reply.code <= 299;
}
