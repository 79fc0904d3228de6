/**
 * What the sendmail front door does to a message's header section, and the
 * envelope it builds, as pure functions of the section read by
 * HeaderSectionReader, the command line and the caller.
 *
 * - Recipients: the command line's, plus with -t the addresses of To, Cc and
 *   Bcc, or, when the message has any Resent- field, of Resent-To, Resent-Cc
 *   and Resent-Bcc only (Postfix's cleanup does the same). Added, never
 *   subtracted. Each address goes through parseAddress, naming its line.
 * - Bcc and Resent-Bcc fields are removed whole, continuation lines
 *   included, with or without -t, as Postfix's cleanup removes them from
 *   locally submitted mail: a blind copy must stay blind whichever MTA or
 *   listener configuration is downstream.
 * - A missing From:, Date: or Message-ID: is added at the end of the
 *   section, as sendmail and Postfix's pickup do, so the message is complete
 *   whatever the downstream listener's header rewriting is set to.
 */
import type { Address, Envelope, Recipient } from '../envelope/envelope.ts';
import { parseAddress } from '../envelope/address.ts';
import { SubmissionError } from '../errors.ts';
import { DEFAULT_LIMITS, type Limits } from '../limits.ts';
import { parseAddressList } from './address-list.ts';
import { unfoldedValue, type HeaderSection } from './header-section.ts';
import type { SendmailCommand } from './sendmail-command.ts';

const RECIPIENT_FIELDS = ['to', 'cc', 'bcc'];
const RESENT_RECIPIENT_FIELDS = ['resent-to', 'resent-cc', 'resent-bcc'];
const REMOVED_FIELDS = new Set(['bcc', 'resent-bcc']);
const utf8 = new TextDecoder('utf-8', { fatal: true });

export interface SendmailCaller {
  /** The caller's login name: the sender when there is no -f. */
  readonly userName: string | null;
  readonly uid: number;
}

/** The sender: -f, else the login name, unqualified for the MTA to qualify. */
export function sendmailSender(command: SendmailCommand, caller: SendmailCaller): Address {
  if (command.sender !== undefined) return command.sender;
  if (caller.userName === null) {
    throw new SubmissionError('usage', `uid ${caller.uid} has no login name to send as: give the sender with -f`, { attribute: 'sender' });
  }
  return parseAddress(caller.userName, 'sender', { attribute: 'sender' });
}

/** -t: the addresses of the recipient fields, in order, validated. */
export function headerRecipients(section: HeaderSection): { address: Address; line: number }[] {
  const resent = section.fields.some((f) => f.name.toLowerCase().startsWith('resent-'));
  const names = resent ? RESENT_RECIPIENT_FIELDS : RECIPIENT_FIELDS;
  const found: { address: Address; line: number }[] = [];
  for (const field of section.fields) {
    if (!names.includes(field.name.toLowerCase())) continue;
    const at = { line: field.line, attribute: 'recipient' };
    let value: string;
    try {
      value = utf8.decode(unfoldedValue(field));
    } catch {
      throw new SubmissionError('message-syntax', `the ${field.name} field is not valid UTF-8`, { line: field.line });
    }
    for (const spec of parseAddressList(value, at)) found.push({ address: parseAddress(spec, 'recipient', at), line: field.line });
  }
  return found;
}

/**
 * The envelope of a sendmail-style submission. Same address given twice
 * (same text) is sent once, as sendmail and Postfix do. No recipient at all
 * is a usage error: there is nothing to deliver to.
 */
export function buildSendmailEnvelope(
  command: SendmailCommand,
  section: HeaderSection,
  caller: SendmailCaller,
  limits: Limits = DEFAULT_LIMITS,
): Envelope {
  const sender = sendmailSender(command, caller);
  const candidates = [
    ...command.recipients.map((address) => ({ address, line: 0 })),
    ...(command.extractRecipients ? headerRecipients(section) : []),
  ];
  const seen = new Set<string>();
  const recipients: Recipient[] = [];
  for (const { address, line } of candidates) {
    if (seen.has(address.text)) continue;
    seen.add(address.text);
    if (recipients.length >= limits.maxRecipients) {
      throw new SubmissionError('over-limit', `more than ${limits.maxRecipients} recipients`, line > 0 ? { line } : {});
    }
    recipients.push(Object.freeze({ address, line, ...(command.notify !== undefined ? { notify: command.notify } : {}) }));
  }
  if (recipients.length === 0) {
    throw new SubmissionError(
      'usage',
      command.extractRecipients
        ? 'no recipients: none on the command line, and no addresses in the To, Cc or Bcc fields (-t)'
        : 'no recipients: give them as arguments, or use -t to take them from the To, Cc and Bcc fields',
      { attribute: 'recipient' },
    );
  }
  const asserted = ['sender', 'recipient'];
  if (command.notify !== undefined) asserted.push('dsn-notify-options');
  if (command.envelopeId !== undefined) asserted.push('dsn-envelope-id');
  if (command.returnOption !== undefined) asserted.push('dsn-return-option');
  return Object.freeze({
    sender,
    recipients: Object.freeze(recipients),
    ...(command.envelopeId !== undefined ? { envelopeId: command.envelopeId } : {}),
    ...(command.returnOption !== undefined ? { returnOption: command.returnOption } : {}),
    client: Object.freeze({}),
    sasl: Object.freeze({}),
    tls: Object.freeze({}),
    asserted: Object.freeze(asserted),
  });
}

export interface AddedHeaderFacts {
  readonly now: Date;
  /** The host for Message-ID's right-hand side. */
  readonly hostName: string;
  /** Unique per submission: Message-ID's left-hand side ends with it. */
  readonly unique: string;
}

export interface RewrittenHeader {
  /** The header section to send, the separator line included when there was one. */
  readonly bytes: Buffer;
  /** Lines in `bytes`, the separator included. */
  readonly lineCount: number;
  readonly added: readonly string[];
  /** Octets put in that the caller did not write: the added fields, and a line end for a last line without one. */
  readonly addedOctets: number;
  readonly removedLines: number;
}

/** The header section as it goes downstream: Bcc gone, missing fields added at the end. */
export function rewriteHeader(section: HeaderSection, command: SendmailCommand, sender: Address, facts: AddedHeaderFacts): RewrittenHeader {
  const parts: Buffer[] = [];
  let lineCount = 0;
  let removedLines = 0;
  const present = new Set<string>();
  for (const field of section.fields) {
    const name = field.name.toLowerCase();
    present.add(name);
    if (REMOVED_FIELDS.has(name)) {
      removedLines += field.lines.length;
      continue;
    }
    parts.push(...field.lines);
    lineCount += field.lines.length;
  }
  const last = parts.at(-1);
  let addedOctets = 0;
  const added: string[] = [];
  if (!present.has('from')) added.push(`From: ${fromValue(command.fullName, sender)}`);
  if (!present.has('date')) added.push(`Date: ${rfc5322Date(facts.now)}`);
  if (!present.has('message-id')) added.push(`Message-ID: <${messageIdLeft(facts.now, facts.unique)}@${facts.hostName}>`);
  // The caller's last line may end the input without a line end; what follows must start a line of its own.
  if (last !== undefined && last[last.length - 1] !== 0x0a && (added.length > 0 || section.separator !== null)) {
    parts.push(Buffer.from('\n'));
    addedOctets += 1;
  }
  for (const line of added) {
    const bytes = Buffer.from(`${line}\n`, 'utf8');
    parts.push(bytes);
    addedOctets += bytes.length;
  }
  lineCount += added.length;
  if (section.separator !== null) {
    parts.push(section.separator);
    lineCount += 1;
  }
  return { bytes: Buffer.concat(parts), lineCount, added, addedOctets, removedLines };
}

/** `Name <sender>`; the null sender is MAILER-DAEMON, as in Postfix's bounces. */
export function fromValue(fullName: string | undefined, sender: Address): string {
  const address = sender.text === '' ? 'MAILER-DAEMON' : sender.text;
  if (fullName === undefined || fullName.trim() === '') return sender.text === '' ? address : `<${address}>`;
  return `${displayName(fullName.trim())} <${address}>`;
}

const ATEXT_PHRASE = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]+$/;

/**
 * A phrase: atoms as they are, other ASCII as a quoted string, anything
 * with non-ASCII as RFC 2047 encoded words (at most 75 characters each), so
 * the header stays valid for any MTA, SMTPUTF8 or not.
 */
export function displayName(name: string): string {
  if (ATEXT_PHRASE.test(name)) return name;
  if (/^[\x20-\x7e]+$/.test(name)) return `"${name.replace(/(["\\])/g, '\\$1')}"`;
  const words: string[] = [];
  let piece = '';
  for (const char of name) {
    if (Buffer.byteLength(piece + char, 'utf8') > 45) {
      words.push(piece);
      piece = '';
    }
    piece += char;
  }
  if (piece !== '') words.push(piece);
  return words.map((w) => `=?UTF-8?B?${Buffer.from(w, 'utf8').toString('base64')}?=`).join(' ');
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number) => String(n).padStart(2, '0');

/** RFC 5322 3.3, in the daemon's local time with its offset. */
export function rfc5322Date(now: Date): string {
  const offset = -now.getTimezoneOffset();
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset);
  return (
    `${DAYS[now.getDay()] as string}, ${now.getDate()} ${MONTHS[now.getMonth()] as string} ${now.getFullYear()} ` +
    `${two(now.getHours())}:${two(now.getMinutes())}:${two(now.getSeconds())} ${sign}${two(Math.floor(abs / 60))}${two(abs % 60)}`
  );
}

function messageIdLeft(now: Date, unique: string): string {
  const stamp = now.toISOString().replace(/[-:TZ]/g, '').replace('.', '');
  return `${stamp}.${unique}`;
}

/** A host name fit for a Message-ID (dot-atom text); anything else becomes `localhost`. */
export function messageIdHost(name: string): string {
  return /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(name) && name.length <= 253 ? name : 'localhost';
}

