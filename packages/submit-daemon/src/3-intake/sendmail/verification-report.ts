/**
 * The report mailsubmit-sendmail -bv mails to the sender, in the form of
 * Postfix's own (bounce(8)'s "verify" template): a multipart/report with a
 * text part naming each address and its verdict, and a delivery-status
 * part a program can read (RFC 3464, with Postfix's verification actions
 * `deliverable` and `undeliverable`).
 *
 * The verdict is the downstream MTA's reply to RCPT for that address, in a
 * transaction reset before DATA (5-transport/smtp/smtp-verify.ts): 2xx
 * deliverable; 4xx or 5xx undeliverable, its status saying which.
 *
 * Pure: the caller gives the time, host name and unique part. What goes
 * in comes from validated addresses and the MTA's reply lines (the reply
 * reader already turned control characters into '?'; anything outside
 * printable ASCII is turned into '?' here too), each reply cut to
 * REPLY_CHARS, so every line stays far below SMTP's 1000 octets. The
 * message comes out as SMTP DATA (CRLF lines, dot-stuffed, no final dot),
 * in chunks, so that a report on many recipients is never whole in memory.
 */
import { describeReply, messageIdHost, postfixDate, type Address, type SmtpReply } from '@mailsubmit/shared';

export interface ReportVerdict {
  readonly address: Address;
  readonly reply: SmtpReply;
}

export interface ReportFacts {
  /** Who asked: the report's recipient (the caller's envelope sender). */
  readonly sender: Address;
  readonly verdicts: readonly ReportVerdict[];
  readonly hostName: string;
  readonly now: Date;
  /** Unique per report (hex): the boundary and Message-ID end with it. */
  readonly unique: string;
}

export interface VerificationReport {
  /** The message as SMTP DATA. */
  readonly body: AsyncIterable<Uint8Array>;
  /** Some address is non-ASCII: the text goes out as UTF-8 (8bit). */
  readonly eightBit: boolean;
}

export const REPORT_SUBJECT = 'Mail Delivery Status Report';
/** Longest MTA reply text quoted for one address. */
export const REPLY_CHARS = 400;
/** Lines gathered into one chunk of the body. */
const CHUNK_OCTETS = 64 * 1024;

/** The report for `facts`; its body can be read once. */
export function verificationReport(facts: ReportFacts): VerificationReport {
  const eightBit = facts.sender.utf8 || facts.verdicts.some((v) => v.address.utf8);
  return { body: chunks(reportLines(facts, eightBit)), eightBit };
}

/** What the text part says of one address: `<a@b>: deliverable: the MTA accepted the address (250 2.1.5 Ok)`. */
export function verdictLine(verdict: ReportVerdict): string {
  const { code } = verdict.reply;
  const said = replyText(verdict.reply);
  if (code >= 200 && code <= 299) return `<${verdict.address.text}>: deliverable: the MTA accepted the address (${said})`;
  if (code >= 400 && code <= 499) return `<${verdict.address.text}>: undeliverable for now: the MTA deferred the address (${said})`;
  return `<${verdict.address.text}>: undeliverable: the MTA refused the address (${said})`;
}

/** The enhanced status for a verdict: the MTA's own, or one from its reply code's class. */
export function verdictStatus(reply: SmtpReply): string {
  const klass = reply.code >= 200 && reply.code <= 299 ? 2 : reply.code >= 400 && reply.code <= 499 ? 4 : 5;
  const enhanced = reply.enhanced ?? '';
  return enhanced.startsWith(`${klass}.`) ? enhanced : `${klass}.0.0`;
}

function replyText(reply: SmtpReply): string {
  return describeReply(reply, REPLY_CHARS).replace(/[^\x20-\x7e]/g, '?');
}

function* reportLines(facts: ReportFacts, eightBit: boolean): Generator<string> {
  const host = messageIdHost(facts.hostName);
  const boundary = `${facts.unique}/${host}`;
  const date = postfixDate(facts.now);
  const stamp = facts.now.toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, '');
  yield 'From: MAILER-DAEMON (Mail Delivery System)';
  yield `To: ${facts.sender.text}`;
  yield `Subject: ${REPORT_SUBJECT}`;
  yield `Date: ${date}`;
  yield `Message-Id: <${stamp}.${facts.unique.toUpperCase()}@${host}>`;
  yield 'Auto-Submitted: auto-replied';
  yield 'MIME-Version: 1.0';
  yield 'Content-Type: multipart/report; report-type=delivery-status;';
  yield `\tboundary="${boundary}"`;
  if (eightBit) yield 'Content-Transfer-Encoding: 8bit';
  yield '';
  yield 'This is a MIME-encapsulated message.';
  yield '';
  yield `--${boundary}`;
  yield 'Content-Description: Notification';
  yield `Content-Type: text/plain; charset=${eightBit ? 'utf-8' : 'us-ascii'}`;
  if (eightBit) yield 'Content-Transfer-Encoding: 8bit';
  yield '';
  yield `This is the mail system at host ${host}.`;
  yield '';
  yield 'Enclosed is the mail delivery report that you requested.';
  yield 'mailsubmit asked the MTA about each address and delivered nothing.';
  yield '';
  yield '                   The mail system';
  for (const verdict of facts.verdicts) {
    yield '';
    yield verdictLine(verdict);
  }
  yield '';
  yield `--${boundary}`;
  yield 'Content-Description: Delivery report';
  // RFC 6533: a UTF-8 address needs the global form of the report.
  yield `Content-Type: message/${eightBit ? 'global-' : ''}delivery-status`;
  yield '';
  yield `Reporting-MTA: dns; ${host}`;
  yield `Arrival-Date: ${date}`;
  for (const verdict of facts.verdicts) {
    const { reply } = verdict;
    const positive = reply.code >= 200 && reply.code <= 299;
    yield '';
    yield `Final-Recipient: ${verdict.address.utf8 ? 'utf-8' : 'rfc822'}; ${verdict.address.text}`;
    yield `Action: ${positive ? 'deliverable' : 'undeliverable'}`;
    yield `Status: ${verdictStatus(reply)}`;
    yield `Diagnostic-Code: smtp; ${replyText(reply)}`;
  }
  yield '';
  yield `--${boundary}--`;
}

async function* chunks(lines: Iterable<string>): AsyncGenerator<Uint8Array> {
  let pending = '';
  for (const line of lines) {
    // No line of the report starts with a dot; stuffed all the same, as SMTP wants.
    pending += `${line.startsWith('.') ? '.' : ''}${line}\r\n`;
    if (pending.length >= CHUNK_OCTETS) {
      yield Buffer.from(pending, 'utf8');
      pending = '';
    }
  }
  if (pending !== '') yield Buffer.from(pending, 'utf8');
}
