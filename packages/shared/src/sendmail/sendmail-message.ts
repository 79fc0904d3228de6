/**
 * What the sendmail front door does to a message's header section, and the
 * envelope it builds, as pure functions of the section read by
 * HeaderSectionReader, the command line and the caller.
 *
 * - Recipients: the command line's, plus with -t the addresses of To, Cc and
 *   Bcc, or, when the message has a Resent-To, Resent-Cc or Resent-Bcc
 *   field, of those only (Postfix's sendmail does the same). Added, never
 *   subtracted. Each address goes through parseAddress, naming its line.
 * - Bcc, Resent-Bcc, Content-Length and Return-Path fields are removed
 *   whole, continuation lines included, with or without -t, as Postfix's
 *   cleanup removes them (message_drop_headers): a blind copy must stay
 *   blind whichever MTA or listener configuration is downstream.
 * - A missing Message-Id, Date or From (Resent-Message-Id, Resent-Date,
 *   Resent-From when the message has Resent- fields) is added at the end of
 *   the section as Postfix's cleanup adds it, by the MTA or by the daemon
 *   (HeaderCompletion).
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
const utf8 = new TextDecoder('utf-8', { fatal: true });

export interface SendmailCaller {
  /** The caller's login name: the sender when there is no -f. */
  readonly userName: string | null;
  readonly uid: number;
  /** The full name of the user database's entry (gecosFullName), for the From field. */
  readonly fullName?: string | null;
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
  // As Postfix's sendmail: a Resent- recipient field (even one naming nobody) switches to
  // the Resent- recipients; Resent-From or Resent-Date alone does not.
  const resent = section.fields.some((f) => RESENT_RECIPIENT_FIELDS.includes(f.name.toLowerCase()));
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
      throw new SubmissionError('over-limit', `more than ${limits.maxRecipients} recipients (limits.max_recipients in mailsubmit.conf)`, line > 0 ? { line } : {});
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

/**
 * Who completes a sendmail-door message's header section:
 * - `mta`: Postfix's cleanup, told by XFORWARD SOURCE=LOCAL that the message
 *   was submitted locally, adds the missing Message-Id, Date and From and
 *   qualifies header addresses with myorigin, as for Postfix's own sendmail.
 *   The daemon adds only what cleanup cannot know: a From with the full
 *   name (SMTP has no way to carry it), and the Message-Id and Date that
 *   Postfix would put before it.
 * - `daemon`: a downstream that cannot be told (the sendmail transport runs
 *   Postfix's sendmail -G, LMTP, downstream.xforward = false): the daemon
 *   adds all three itself, in Postfix's order and forms, with the address
 *   as the caller gave it (unqualified when the caller's was).
 */
export type HeaderCompletion = 'mta' | 'daemon';

export interface AddedHeaderFacts {
  readonly now: Date;
  /** The host for Message-ID's right-hand side. */
  readonly hostName: string;
  /** Unique per submission: Message-ID's left-hand side ends with it. */
  readonly unique: string;
  /** The caller's full name from the user database (gecosFullName); -F overrides it. */
  readonly fullName?: string | null;
  readonly completion?: HeaderCompletion;
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

/**
 * The fields Postfix's cleanup removes from every message with its default
 * message_drop_headers. The re-injection listener's cleanup removes none
 * (its message_drop_headers is empty, so the native door's header section
 * stays the caller's); the sendmail door removes them itself.
 */
export const DROPPED_FIELDS: ReadonlySet<string> = new Set(['bcc', 'content-length', 'resent-bcc', 'return-path']);
/** The fields that put Postfix's cleanup in Resent- mode (HDR_OPT_RR in Postfix's header_opts.c). */
export const RESENT_FIELDS: ReadonlySet<string> = new Set(['resent-bcc', 'resent-cc', 'resent-date', 'resent-from', 'resent-message-id', 'resent-reply-to', 'resent-sender', 'resent-to']);

/**
 * The header section as it goes downstream: Bcc, Resent-Bcc, Content-Length
 * and Return-Path gone, missing fields added at the end (see
 * HeaderCompletion), each as Postfix's cleanup writes it.
 */
export function rewriteHeader(section: HeaderSection, command: SendmailCommand, sender: Address, facts: AddedHeaderFacts): RewrittenHeader {
  const parts: Buffer[] = [];
  let lineCount = 0;
  let removedLines = 0;
  const present = new Set<string>();
  let resent = false;
  let resentKept = false;
  for (const field of section.fields) {
    const name = field.name.toLowerCase();
    present.add(name);
    if (RESENT_FIELDS.has(name)) resent = true;
    if (DROPPED_FIELDS.has(name)) {
      removedLines += field.lines.length;
      continue;
    }
    if (RESENT_FIELDS.has(name)) resentKept = true;
    parts.push(...field.lines);
    lineCount += field.lines.length;
  }
  const last = parts.at(-1);
  let addedOctets = 0;
  const added = headerAdditions(present, resent, command, sender, facts, resent && !resentKept);
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

/**
 * The fields to add, in the order Postfix's cleanup adds them: Message-Id,
 * Date, From, each with `Resent-` when the message has a Resent- field.
 * `resentHidden`: the only Resent- fields were removed, so cleanup would
 * no longer see the message as resent and would add the wrong fields.
 */
function headerAdditions(
  present: ReadonlySet<string>,
  resent: boolean,
  command: SendmailCommand,
  sender: Address,
  facts: AddedHeaderFacts,
  resentHidden: boolean,
): string[] {
  const prefix = resent ? 'Resent-' : '';
  const missing = (name: string) => !present.has(`${prefix}${name}`.toLowerCase());
  const fullName = command.fullName ?? facts.fullName ?? null;
  const named = sender.text !== '' && fullName !== null && fullName !== '';
  if ((facts.completion ?? 'daemon') === 'mta' && !(named && missing('From')) && !resentHidden) return [];
  const added: string[] = [];
  if (missing('Message-Id')) added.push(`${prefix}Message-Id: <${messageIdLeft(facts.now, facts.unique)}@${facts.hostName}>`);
  if (missing('Date')) added.push(`${prefix}Date: ${postfixDate(facts.now)}`);
  if (missing('From')) added.push(`${prefix}From: ${fromValue(fullName ?? undefined, sender)}`);
  return added;
}

/**
 * The From value as Postfix's cleanup writes it (header_from_format =
 * standard): `phrase <address>` with a full name, the bare address
 * without one, `MAILER-DAEMON` for the null sender whatever the name.
 */
export function fromValue(fullName: string | undefined, sender: Address): string {
  if (sender.text === '') return 'MAILER-DAEMON';
  if (fullName === undefined || fullName === '') return sender.text;
  const phrase = displayName(fullName);
  return phrase === '' ? `<${sender.text}>` : `${phrase} <${sender.text}>`;
}

/** Quoted as a whole when the name has one of these (cleanup_message.c: "%!" and RFC 822's specials). */
const QUOTE_WHOLE = /[%!()<>@,;:\\".[\]]/;
/** Control characters: never written into a header, whatever the name holds. */
const CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]/g;

/**
 * A full name as the phrase of Postfix's From field, for any text the
 * caller controls (-F, or the GECOS field chfn lets every user set):
 * CR and LF become spaces, as in Postfix; a name with specials, `%` or
 * `!` is one quoted string with `"` and `\` escaped; otherwise its words
 * are joined by single spaces, `|` kept as Postfix's tokenizer keeps it.
 * Non-ASCII text stays as it is (UTF-8), as Postfix writes it. Unlike
 * Postfix, control characters are dropped rather than written: a word
 * that had one is still quoted, as Postfix quotes it.
 */
export function displayName(name: string): string {
  const spaced = name.replace(/[\r\n]/g, ' ');
  if (QUOTE_WHOLE.test(spaced)) return `"${spaced.replace(CONTROL, '').replace(/(["\\])/g, '\\$1')}"`;
  const tokens: { text: string; word: boolean }[] = [];
  for (const piece of spaced.split(/([ \t|])/)) {
    if (piece === '' || piece === ' ' || piece === '\t') continue;
    if (piece === '|') tokens.push({ text: '|', word: false });
    else {
      const clean = piece.replace(CONTROL, '');
      tokens.push({ text: clean === piece ? piece : `"${clean}"`, word: true });
    }
  }
  let phrase = '';
  tokens.forEach((token, i) => {
    const previous = tokens[i - 1];
    if (previous !== undefined && previous.word && token.word) phrase += ' ';
    phrase += token.text;
  });
  return phrase;
}

/**
 * Postfix's fullname(): the GECOS field up to the first `,`, `;` or `%`
 * (`Full Name,room,phone` gives `Full Name`), each `&` the login name with
 * its first letter in capitals. Postfix's sendmail takes the NAME
 * environment variable first; the daemon does not see the caller's
 * environment, so NAME does not count here.
 */
export function gecosFullName(gecos: string, login: string): string {
  const capitalized = login === '' ? '' : (login[0] as string).replace(/[a-z]/, (c) => c.toUpperCase()) + login.slice(1);
  let name = '';
  for (const char of gecos) {
    if (char === ',' || char === ';' || char === '%') break;
    name += char === '&' ? capitalized : char;
  }
  return name;
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

/**
 * A Date value in the form of Postfix's mail_date(): the day of the month
 * padded to two places with a space, and the zone's abbreviation in a
 * comment when the system has one (`Sat,  5 Dec 2026 19:37:51 +0000 (UTC)`).
 */
export function postfixDate(now: Date): string {
  const plain = rfc5322Date(now).replace(/^(\w{3}, )(\d) /, '$1 $2 ');
  const zone = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(now).find((p) => p.type === 'timeZoneName')?.value;
  return zone !== undefined && /^[A-Z]{2,6}$/.test(zone) ? `${plain} (${zone})` : plain;
}

/** Like Postfix's: the time in UTC to the second, then what makes it unique. */
function messageIdLeft(now: Date, unique: string): string {
  const stamp = now.toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, '');
  return `${stamp}.${unique.toUpperCase()}`;
}

/** A host name fit for a Message-ID (dot-atom text); anything else becomes `localhost`. */
export function messageIdHost(name: string): string {
  return /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(name) && name.length <= 253 ? name : 'localhost';
}

