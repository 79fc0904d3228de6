/**
 * mailsubmit-sendmail -bv: Postfix's address verification, reported by
 * mail. Nothing is read from the caller's input and nothing is delivered to
 * the addresses; the caller learns where the report goes, on its standard
 * output, and the sender gets the report.
 *
 * 1. The envelope is the one a submission with this command line would
 *    have (the same parser, recipient limits and rights: the caller must
 *    be allowed the sender, as for a message).
 * 2. The downstream verifies it (Downstream.verify): SMTP and LMTP answer
 *    MAIL and each RCPT in a transaction reset before DATA; the sendmail
 *    transport runs Postfix's own `sendmail -bv`, which mails its own
 *    report.
 * 3. From the RCPT replies the daemon writes the report
 *    (verification-report.ts) and submits it through the same downstream,
 *    from the null sender to the caller's sender, as Postfix's bounce
 *    service sends its reports. A null sender (-f '<>') gets none, as in
 *    Postfix, where a report to <> is dropped.
 *
 * Any failure (the MTA unreachable, the sender refused, the report
 * refused) is the outcome of the whole command, as for a submission.
 */
import { randomBytes } from 'node:crypto';
import {
  buildSendmailEnvelope,
  describeStatus,
  isSubmissionError,
  parseAddress,
  sendmailSender,
  SubmissionError,
  type Address,
  type CallerIdentity,
  type Envelope,
  type Grant,
  type HeaderSection,
  type SendmailCommand,
} from '@mailsubmit/shared';
import type { DaemonConfig } from '../../config/daemon-config.ts';
import type { Downstream } from '../../5-transport/downstream.ts';
import { checkEnvelopeRights, checkSenderRight, type JobResult } from '../../submission-job.ts';
import { verificationReport } from './verification-report.ts';

export interface VerificationContext {
  readonly config: DaemonConfig;
  readonly downstream: Downstream;
  readonly caller: CallerIdentity;
  readonly grant: Grant;
  readonly hostName: string;
  /** Aborted when the helper goes away: a report not yet committed is not sent. */
  readonly signal?: AbortSignal;
}

export interface VerificationOutcome {
  readonly result: JobResult;
  /** For the caller's standard output on success, as Postfix's sendmail prints it. */
  readonly stdoutLine?: string;
}

/** -bv has no message: the header section -t would read from is empty (and -t is refused with -bv anyway). */
const NO_HEADER: HeaderSection = Object.freeze({
  fields: [],
  lineCount: 0,
  separator: null,
  separatorAdded: false,
  droppedFromLines: 0,
  endedByDot: false,
  unfinished: false,
});

/** Verifies `command`'s recipients and mails the report; never throws. */
export async function verifyAddresses(context: VerificationContext, command: SendmailCommand): Promise<VerificationOutcome> {
  let envelope: Envelope | undefined;
  try {
    envelope = permittedEnvelope(context, command);
    const verification = await context.downstream.verify(envelope);
    const sender = envelope.sender;
    const stdoutLine = `Mail Delivery Status Report will be mailed to <${sender.text}>.\n`;
    const count = `${envelope.recipients.length} recipient${envelope.recipients.length === 1 ? '' : 's'}`;
    if (verification.reportedBy === 'mta') {
      return { result: { outcome: 'ok', text: `address verification of ${count}: the MTA mails the report`, envelope, omitted: verification.omitted }, stdoutLine };
    }
    const deliverable = verification.verdicts.filter((v) => v.reply.code >= 200 && v.reply.code <= 299).length;
    const summary = `address verification of ${count}, ${deliverable} deliverable`;
    if (sender.text === '') return { result: { outcome: 'ok', text: `${summary}: no report for the null sender`, envelope, omitted: verification.omitted }, stdoutLine };
    const report = verificationReport({
      sender,
      verdicts: verification.verdicts.map((v) => ({ address: v.recipient.address, reply: v.reply })),
      hostName: context.hostName,
      now: new Date(),
      unique: randomBytes(6).toString('hex'),
    });
    const delivery = await context.downstream.deliver({
      envelope: reportEnvelope(sender),
      body: report.body,
      eightBit: report.eightBit,
      // The daemon's own mail: Postfix qualifies its addresses as for local mail.
      localSubmission: true,
      ...(context.signal !== undefined ? { signal: context.signal } : {}),
    });
    return {
      result: {
        outcome: 'ok',
        text: `${summary}: report ${delivery.queueId !== undefined ? `queued as ${delivery.queueId}` : 'queued'}`,
        envelope,
        ...(delivery.queueId !== undefined ? { queueId: delivery.queueId } : {}),
        omitted: [...verification.omitted, ...delivery.omitted],
        mtaText: delivery.text,
      },
      stdoutLine,
    };
  } catch (err) {
    const failure = isSubmissionError(err) ? err : new SubmissionError('internal', err instanceof Error ? err.message : String(err));
    return { result: { outcome: failure.outcome, text: describeStatus(failure.outcome, failure.message), ...(envelope ? { envelope } : {}) } };
  }
}

/** The envelope a submission with this command line would have, if the caller may use it. */
function permittedEnvelope(context: VerificationContext, command: SendmailCommand): Envelope {
  const { grant, caller, config } = context;
  const who = caller.userName ?? `uid ${caller.uid}`;
  if (grant.senders.length === 0) throw new SubmissionError('attribute-not-permitted', `no envelope sender is permitted to ${who}`, { attribute: 'sender' });
  const sendmailCaller = { userName: caller.userName, uid: caller.uid, fullName: caller.fullName ?? null };
  // The sender first, before the recipients are looked at, as for a message.
  checkSenderRight(grant, caller, sendmailSender(command, sendmailCaller));
  const envelope = buildSendmailEnvelope(command, NO_HEADER, sendmailCaller, config.limits);
  checkEnvelopeRights(grant, caller, envelope);
  return envelope;
}

/** From the null sender (no report about a report), to the one who asked. */
function reportEnvelope(to: Address): Envelope {
  return Object.freeze({
    sender: parseAddress('<>', 'sender'),
    recipients: Object.freeze([Object.freeze({ address: to, line: 0 })]),
    client: Object.freeze({}),
    sasl: Object.freeze({}),
    tls: Object.freeze({}),
    asserted: Object.freeze([]),
  });
}
