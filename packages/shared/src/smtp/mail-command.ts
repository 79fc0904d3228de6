/**
 * MAIL FROM and RCPT TO lines for one validated envelope.
 *
 *   MAIL FROM:<addr> [SIZE=n] [BODY=8BITMIME] [SMTPUTF8] [RET=FULL|HDRS] [ENVID=xtext]
 *   RCPT TO:<addr> [NOTIFY=a,b] [ORCPT=rfc822;xtext | utf-8;utf-8-addr-xtext]
 *
 * A parameter goes out only when the server announced its extension; what
 * the caller asked for but the server cannot take is listed in `omitted`, so
 * the daemon can log it (the contract: nothing is silently dropped). Postfix
 * does the same when it relays to a server without DSN.
 *
 * Values are re-checked here even though the envelope validator checked
 * them: the builders must never produce a line that reads differently from
 * the envelope, whatever object they are handed. A value that fails is a
 * SubmissionError naming its attribute; the finished line also passes
 * assertSafeCommandLine.
 */
import type { Envelope, NotifyKeyword, OriginalRecipient, Recipient } from '../envelope/envelope.ts';
import { SubmissionError, type InputPosition } from '../errors.ts';
import type { ServerCapabilities } from './capabilities.ts';
import { assertSafeCommandLine } from './command-line-safety.ts';
import { formatPath } from './path.ts';
import { encodeUtf8AddrXtext, encodeXtext } from './xtext.ts';

/** What is known about the message when MAIL is sent. */
export interface MessageFacts {
  /**
   * The message has octets above 0x7F. Declaring BODY=8BITMIME for a 7-bit
   * message is harmless, so a caller that cannot know yet may pass true.
   */
  readonly eightBit: boolean;
  /** Octets the DATA will carry, for SIZE=; defaults to the envelope's `size`. */
  readonly sizeEstimate?: number;
}

export interface BuiltCommand {
  readonly line: string;
  /** Parameters the caller asked for that the server did not announce, e.g. 'RET (no DSN)'. */
  readonly omitted: readonly string[];
}

/** RFC 3461 section 4.2: the ORCPT value may be at most 500 characters. */
export const MAX_ORCPT_CHARACTERS = 500;

const NON_ASCII = /[^\u0000-\u007f]/;
const ADDRESS_TYPE = /^[A-Za-z0-9][A-Za-z0-9-]*$/;
const NOTIFY_KEYWORDS: ReadonlySet<string> = new Set<NotifyKeyword>(['SUCCESS', 'FAILURE', 'DELAY', 'NEVER']);

/** True when any address or ORCPT value is non-ASCII, so the transaction needs SMTPUTF8. */
export function needsSmtpUtf8(envelope: Envelope): boolean {
  const { sender, recipients } = envelope;
  if (sender.utf8 || NON_ASCII.test(sender.text)) return true;
  return recipients.some(
    (r) => r.address.utf8 || NON_ASCII.test(r.address.text) || (r.orcpt !== undefined && NON_ASCII.test(r.orcpt.value)),
  );
}

function sizeParameter(envelope: Envelope, message: MessageFacts): number | undefined {
  const size = message.sizeEstimate ?? envelope.size;
  if (size === undefined) return undefined;
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new SubmissionError('envelope-syntax', 'size is not a non-negative integer', { attribute: 'size' });
  }
  return size;
}

export function mailFromCommand(envelope: Envelope, message: MessageFacts, caps: ServerCapabilities): BuiltCommand {
  const params: string[] = [];
  const omitted: string[] = [];

  const size = sizeParameter(envelope, message);
  if (size !== undefined) {
    if (caps.size !== null) params.push(`SIZE=${size}`);
    else omitted.push('SIZE (no SIZE)');
  }
  if (message.eightBit) {
    if (caps.eightBitMime) params.push('BODY=8BITMIME');
    else omitted.push('BODY=8BITMIME (no 8BITMIME)');
  }
  if (needsSmtpUtf8(envelope)) {
    if (caps.smtpUtf8) params.push('SMTPUTF8');
    else omitted.push('SMTPUTF8 (no SMTPUTF8)');
  }
  const ret = envelope.returnOption;
  if (ret !== undefined) {
    if (ret !== 'FULL' && ret !== 'HDRS') {
      throw new SubmissionError('envelope-syntax', 'return option is neither FULL nor HDRS', { attribute: 'dsn-return-option' });
    }
    if (caps.dsn) params.push(`RET=${ret}`);
    else omitted.push('RET (no DSN)');
  }
  const envid = envelope.envelopeId;
  if (envid !== undefined && envid !== '') {
    const encoded = encodeWithPosition(() => encodeXtext(envid), { attribute: 'dsn-envelope-id' });
    if (caps.dsn) params.push(`ENVID=${encoded}`);
    else omitted.push('ENVID (no DSN)');
  }

  const path = formatPath(envelope.sender.text, 'sender-syntax', { attribute: 'sender' });
  const line = [`MAIL FROM:${path}`, ...params].join(' ');
  assertSafeCommandLine(line);
  return { line, omitted };
}

export function rcptToCommand(recipient: Recipient, caps: ServerCapabilities): BuiltCommand {
  const params: string[] = [];
  const omitted: string[] = [];
  const position: InputPosition = { line: recipient.line, attribute: 'recipient' };

  if (recipient.address.text === '') {
    throw new SubmissionError('recipient-syntax', 'the null address <> cannot be a recipient', position);
  }
  const path = formatPath(recipient.address.text, 'recipient-syntax', position);

  if (recipient.notify !== undefined) {
    const notify = notifyValue(recipient.notify, recipient.line);
    if (caps.dsn) params.push(`NOTIFY=${notify}`);
    else omitted.push('NOTIFY (no DSN)');
  }
  if (recipient.orcpt !== undefined) {
    const orcpt = orcptValue(recipient.orcpt, recipient.line);
    if (caps.dsn) params.push(`ORCPT=${orcpt}`);
    else omitted.push('ORCPT (no DSN)');
  }

  const line = [`RCPT TO:${path}`, ...params].join(' ');
  assertSafeCommandLine(line);
  return { line, omitted };
}

function notifyValue(notify: readonly NotifyKeyword[], line: number): string {
  const position: InputPosition = { attribute: 'dsn-notify-options' };
  const where = `for the recipient on line ${line}: `;
  if (!Array.isArray(notify) || notify.length === 0) {
    throw new SubmissionError('envelope-syntax', `${where}empty NOTIFY list`, position);
  }
  const seen = new Set<string>();
  for (const keyword of notify) {
    if (!NOTIFY_KEYWORDS.has(keyword)) {
      throw new SubmissionError('envelope-syntax', `${where}${JSON.stringify(keyword)} is not a NOTIFY keyword`, position);
    }
    if (seen.has(keyword)) throw new SubmissionError('envelope-syntax', `${where}${keyword} given twice`, position);
    seen.add(keyword);
  }
  if (seen.has('NEVER') && seen.size > 1) {
    throw new SubmissionError('envelope-syntax', `${where}NEVER cannot be combined with other keywords`, position);
  }
  return notify.join(',');
}

/**
 * `type;encoded`. An rfc822 value with non-ASCII in it is sent as type utf-8
 * (RFC 6533 section 3: rfc822 values are ASCII; utf-8 is the type for
 * internationalized addresses); the value itself is unchanged.
 */
function orcptValue(orcpt: OriginalRecipient, line: number): string {
  const position: InputPosition = { attribute: 'dsn-orig-rcpt' };
  const where = `for the recipient on line ${line}: `;
  if (typeof orcpt.type !== 'string' || !ADDRESS_TYPE.test(orcpt.type)) {
    throw new SubmissionError('envelope-syntax', `${where}bad address type ${JSON.stringify(orcpt.type)}`, position);
  }
  if (typeof orcpt.value !== 'string' || orcpt.value === '') {
    throw new SubmissionError('envelope-syntax', `${where}empty original recipient`, position);
  }
  let type = orcpt.type.toLowerCase();
  if (type === 'rfc822' && NON_ASCII.test(orcpt.value)) type = 'utf-8';
  const encoded = encodeWithPosition(
    () => (type === 'utf-8' ? encodeUtf8AddrXtext(orcpt.value) : encodeXtext(orcpt.value)),
    position,
  );
  const value = `${type};${encoded}`;
  if (value.length > MAX_ORCPT_CHARACTERS) {
    throw new SubmissionError(
      'envelope-syntax',
      `${where}the original recipient is ${value.length} characters once encoded; RFC 3461 allows ${MAX_ORCPT_CHARACTERS}`,
      position,
    );
  }
  return value;
}

function encodeWithPosition(encode: () => string, position: InputPosition): string {
  try {
    return encode();
  } catch (err) {
    if (err instanceof SubmissionError) throw new SubmissionError(err.outcome, err.detail, position);
    throw err;
  }
}
