/**
 * NAME
 *   delivery-status-notice: the bounce or delay warning for a queued message
 *
 * SUMMARY
 *   deliveryStatusNotice(input) returns the notice to send to the envelope
 *   sender, with the null sender, about the recipients the local queue could
 *   not deliver (failed: refused permanently, or past the maximal queue
 *   lifetime) or has not delivered yet (delayed: a delay warning); or null
 *   when no notice is due. Pure apart from reading the original message.
 *
 * DESCRIPTION
 *   The notice is an RFC 3464 report, laid out as Postfix's bounce daemon
 *   lays out its own (bounce_notify_util.c), so that an admin and a bounce
 *   parser see what they know:
 *
 *     multipart/report; report-type=delivery-status
 *       text/plain                 what happened, for a person
 *       message/delivery-status    the fields, for a program
 *       message/rfc822             the original (failed, RET=FULL or no RET)
 *       text/rfc822-headers        or its header section (RET=HDRS, warnings)
 *
 *   Who is reported:
 *   - nobody when the sender is null (<>): a notice about a notice could loop;
 *   - a recipient whose NOTIFY is NEVER, or lacks FAILURE (failed) or DELAY
 *     (delayed), is left out; no NOTIFY counts as FAILURE,DELAY (RFC 3461
 *     4.1 leaves it to the MTA; Postfix's choice). Nobody left: no notice.
 *
 *   What is returned: no RET returns the whole message, as Postfix does; a
 *   delay warning returns the header section only, as Postfix's does (the
 *   message is still on its way). Unlike Postfix no size limit cuts the
 *   copy: the queue decides, passing a header section only if it wants.
 *
 *   UTF-8 (RFC 6533): when the sender, a reported recipient or its ORCPT
 *   has non-ASCII, or the original's header section has 8-bit octets, the
 *   report parts become message/global-delivery-status and message/global
 *   (message/global-headers), addresses of type utf-8, and the notice needs
 *   SMTPUTF8 (`smtputf8`). Otherwise every generated line is ASCII.
 *
 *   The bytes: CRLF line ends (RFC 5322), no dot-stuffing (that is the
 *   message encoder's job on the way to the MTA, which takes CRLF as is),
 *   no line over 998 octets. The original is streamed through
 *   ReturnedMessageLines, one read at a time: never held in memory. When
 *   only the header section goes back, `message` is not read: closing it
 *   is the caller's.
 */

import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { messageIdHost, rfc5322Date, type Address, type Envelope, type Recipient } from '@mailsubmit/shared';
import { printable, wrap } from './report-text.ts';
import { ReturnedMessageLines } from './returned-message-lines.ts';

/** Why the notice is sent: the message is given up on, or only late. */
export type NoticeReason = 'refused' | 'expired' | 'delay-warning';

export interface RecipientResult {
  /** The recipient as in the envelope (address, NOTIFY, ORCPT). */
  readonly recipient: Recipient;
  readonly action: 'failed' | 'delayed';
  /** RFC 3463 enhanced status: `5.1.1`, `4.4.1`. */
  readonly status: string;
  /** The MTA's reply (`550 5.1.1 <bob@example.org>: ...`), type `smtp` unless said. */
  readonly diagnostic?: { readonly type?: string; readonly text: string };
  /** The MTA that answered, as a host name. */
  readonly remoteMta?: string;
  readonly lastAttempt?: Date;
}

export interface OriginalMessage {
  /** The header section as written, without the empty line after it. */
  readonly headerSection: Buffer;
  /** The whole message as written; read once. Without it only the header section can go back. */
  readonly message?: Buffer | Readable;
  /** Some octet of the message is 0x80 or above (the queue knows it from the message's stats). */
  readonly eightBit: boolean;
}

export interface NoticeInput {
  readonly envelope: Pick<Envelope, 'sender' | 'recipients' | 'envelopeId' | 'returnOption'>;
  readonly results: readonly RecipientResult[];
  readonly reason: NoticeReason;
  /** The host that reports: Reporting-MTA, From, Message-Id. */
  readonly reportingHost: string;
  /** The local queue's id of the message. */
  readonly queueId: string;
  readonly arrivalDate: Date;
  /** The maximal queue lifetime: the text says it, a delay warning's Will-Retry-Until is arrival plus it. */
  readonly maximalLifetimeSeconds: number;
  readonly original: OriginalMessage;
  /** The notice's Date (default: now). */
  readonly now?: Date;
}

export interface DeliveryStatusNotice {
  /** Where it goes, with the null sender: the original envelope sender. */
  readonly recipient: Address;
  /** The recipients it reports, as their addresses. */
  readonly reported: readonly string[];
  /** Has UTF-8 in its header or report: send with SMTPUTF8. */
  readonly smtputf8: boolean;
  /** Has 8-bit octets: send with BODY=8BITMIME. */
  readonly eightBit: boolean;
  readonly messageId: string;
  /** The message, CRLF line ends, not dot-stuffed; read once. */
  readonly content: Readable;
}

const CRLF = '\r\n';
const NON_ASCII = /[^\u0000-\u007f]/u;
const mailerName = 'mailsubmit';

/** The notice, or null when none is due (null sender, nobody left to report). */
export function deliveryStatusNotice(input: NoticeInput): DeliveryStatusNotice | null {
  const { envelope } = input;
  if (envelope.sender.text === '') return null;
  const warning = input.reason === 'delay-warning';
  const reported = input.results.filter((result) => result.action === (warning ? 'delayed' : 'failed') && wantsNotice(result.recipient, warning));
  if (reported.length === 0) return null;

  const headersOnly = warning || envelope.returnOption === 'HDRS' || input.original.message === undefined;
  const utf8Header = input.original.headerSection.some((octet) => octet >= 0x80);
  const utf8 =
    envelope.sender.utf8 || utf8Header || reported.some(({ recipient }) => recipient.address.utf8 || (recipient.orcpt !== undefined && isUtf8Orcpt(recipient.orcpt)));
  const host = messageIdHost(input.reportingHost);
  const now = input.now ?? new Date();
  const boundary = `=_${input.queueId.replace(/[^A-Za-z0-9]/g, '')}.${randomBytes(16).toString('hex')}`;
  const messageId = `<${now.toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, '')}.${randomBytes(6).toString('hex').toUpperCase()}@${host}>`;
  const eightBit = utf8 || (!headersOnly && input.original.eightBit);
  const context: Context = { input, reported, warning, utf8, host, now, boundary, headersOnly };

  const head = [...headerFields(context, messageId), '', 'This is a MIME-encapsulated message.', ''].join(CRLF) + CRLF;
  const text = [...explanation(context), ...deliveryStatus(context), ...originalPartHeader(context)].join(CRLF) + CRLF;
  const lines = new ReturnedMessageLines(boundary);
  // Only the three delimiters may start with it; a reply or an address that does (a 2^-128 chance) gets a new boundary.
  if ((head + text).split(CRLF).filter((line) => line.startsWith(`--${boundary}`)).length !== 3) return deliveryStatusNotice(input);
  const source = headersOnly ? input.original.headerSection : (input.original.message as Buffer | Readable);

  async function* generate(): AsyncGenerator<Buffer> {
    yield Buffer.from(head + text, 'utf8');
    if (Buffer.isBuffer(source)) yield lines.write(source);
    else for await (const chunk of source) yield lines.write(chunk as Buffer);
    yield lines.end();
    yield Buffer.from(`${CRLF}--${boundary}--${CRLF}`, 'latin1');
  }
  return {
    recipient: envelope.sender,
    reported: reported.map(({ recipient }) => recipient.address.text),
    smtputf8: utf8,
    eightBit,
    messageId,
    content: Readable.from(generate(), { objectMode: false }),
  };
}

interface Context {
  readonly input: NoticeInput;
  readonly reported: readonly RecipientResult[];
  readonly warning: boolean;
  readonly utf8: boolean;
  readonly host: string;
  readonly now: Date;
  readonly boundary: string;
  readonly headersOnly: boolean;
}

/** RFC 3461 4.1: NOTIFY=NEVER never; otherwise FAILURE for failures, DELAY for warnings; none given: both. */
function wantsNotice(recipient: Recipient, warning: boolean): boolean {
  if (recipient.notify === undefined) return true;
  return recipient.notify.includes(warning ? 'DELAY' : 'FAILURE');
}

function isUtf8Orcpt(orcpt: NonNullable<Recipient['orcpt']>): boolean {
  return orcpt.type === 'utf-8' || NON_ASCII.test(orcpt.value);
}

function headerFields(context: Context, messageId: string): string[] {
  const { input, warning, host, now, boundary } = context;
  return [
    `From: MAILER-DAEMON@${host} (Mail Delivery System)`,
    `Subject: ${warning ? 'Delayed Mail (still being retried)' : 'Undelivered Mail Returned to Sender'}`,
    `To: <${input.envelope.sender.text}>`,
    `Date: ${rfc5322Date(now)}`,
    `Message-Id: ${messageId}`,
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=delivery-status;',
    `\tboundary="${boundary}"`,
  ];
}

/** The text/plain part: Postfix's wording, one paragraph per reported recipient. */
function explanation(context: Context): string[] {
  const { input, reported, warning, utf8, host, boundary } = context;
  const days = (input.maximalLifetimeSeconds / 86400).toFixed(1);
  const lines = [`--${boundary}`, 'Content-Description: Notification', `Content-Type: text/plain; charset=${utf8 ? 'utf-8' : 'us-ascii'}`];
  if (utf8) lines.push('Content-Transfer-Encoding: 8bit');
  lines.push('', `This is the ${mailerName} program at host ${host}.`, '');
  if (warning) {
    const hours = ((context.now.getTime() - input.arrivalDate.getTime()) / 3_600_000).toFixed(1);
    lines.push(
      '####################################################################',
      '# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #',
      '####################################################################',
      '',
      `Your message could not be delivered for ${hours} hours.`,
      `It will be retried until it is ${days} days old.`,
    );
  } else {
    lines.push(
      "I'm sorry to have to inform you that your message could not",
      input.reason === 'expired' ? `be delivered to one or more recipients within ${days} days.` : 'be delivered to one or more recipients.',
      context.headersOnly ? 'Its header section is attached below.' : "It's attached below.",
    );
  }
  lines.push(
    '',
    'For further assistance, please send mail to postmaster.',
    '',
    'If you do so, please include this problem report. You can',
    'delete your own text from the attached returned message.',
    '',
    `                   The ${mailerName} program`,
  );
  for (const result of reported) {
    const said = result.diagnostic === undefined ? `delivery status ${result.status}` : printable(result.diagnostic.text, utf8);
    const who = result.remoteMta === undefined ? '' : `host ${printable(result.remoteMta, utf8)} said: `;
    lines.push('', ...wrap(`<${result.recipient.address.text}>: ${who}${said}`, '    '));
  }
  return lines;
}

/** The message/delivery-status part (RFC 3464 2.2, 2.3). */
function deliveryStatus(context: Context): string[] {
  const { input, reported, warning, utf8, host, boundary } = context;
  const { envelope } = input;
  const lines = [
    '',
    `--${boundary}`,
    'Content-Description: Delivery report',
    `Content-Type: message/${utf8 ? 'global-delivery-status' : 'delivery-status'}`,
  ];
  if (utf8) lines.push('Content-Transfer-Encoding: 8bit');
  lines.push('', `Reporting-MTA: dns; ${host}`, `X-Mailsubmit-Queue-ID: ${printable(input.queueId, false)}`, `X-Mailsubmit-Sender: ${addressField(envelope.sender)}`);
  if (envelope.envelopeId !== undefined) lines.push(`Original-Envelope-Id: ${printable(envelope.envelopeId, false)}`);
  lines.push(`Arrival-Date: ${rfc5322Date(input.arrivalDate)}`);
  for (const result of reported) {
    const { recipient } = result;
    lines.push('', `Final-Recipient: ${addressField(recipient.address)}`);
    if (recipient.orcpt !== undefined) {
      const type = isUtf8Orcpt(recipient.orcpt) ? 'utf-8' : recipient.orcpt.type;
      lines.push(...wrap(`Original-Recipient: ${type}; ${printable(recipient.orcpt.value, utf8)}`, ' '));
    }
    lines.push(`Action: ${result.action}`, `Status: ${result.status}`);
    if (result.remoteMta !== undefined) lines.push(`Remote-MTA: dns; ${printable(result.remoteMta, false)}`);
    if (result.diagnostic !== undefined) {
      // RFC 3464: the diagnostic type is an atom (Postfix turns the rest into '-').
      const type = (result.diagnostic.type ?? 'smtp').replace(/[^A-Za-z0-9!#$%&'*+\/=?^_`{|}~-]/g, '-');
      lines.push(...wrap(`Diagnostic-Code: ${type}; ${printable(result.diagnostic.text, utf8)}`, ' '));
    }
    if (result.lastAttempt !== undefined) lines.push(`Last-Attempt-Date: ${rfc5322Date(result.lastAttempt)}`);
    if (warning) lines.push(`Will-Retry-Until: ${rfc5322Date(new Date(input.arrivalDate.getTime() + input.maximalLifetimeSeconds * 1000))}`);
  }
  return lines;
}

/** Address type rfc822, or utf-8 for a non-ASCII address (RFC 6533 3). */
function addressField(address: Address): string {
  return `${address.utf8 ? 'utf-8' : 'rfc822'}; ${address.text}`;
}

/** The MIME header of the last part; the original itself follows as a stream. */
function originalPartHeader(context: Context): string[] {
  const { input, utf8, headersOnly, boundary } = context;
  const type = headersOnly ? (utf8 ? 'message/global-headers' : 'text/rfc822-headers') : utf8 ? 'message/global' : 'message/rfc822';
  const lines = ['', `--${boundary}`, `Content-Description: Undelivered Message${headersOnly ? ' Headers' : ''}`, `Content-Type: ${type}`];
  const eightBit = headersOnly ? input.original.headerSection.some((octet) => octet >= 0x80) : input.original.eightBit;
  if (eightBit) lines.push('Content-Transfer-Encoding: 8bit');
  lines.push('');
  return lines;
}
