/**
 * Grammars of the DSN attributes (RFC 3461): NOTIFY, ORCPT, ENVID and RET.
 *
 * These values go on MAIL and RCPT as parameters, ORCPT and ENVID xtext
 * encoded. The encoder makes `+`, `=` and `\` safe on the wire; what this
 * file must make sure of is that the decoded value is what the RFC allows,
 * so that a server never sees a parameter it will refuse after the others
 * were accepted.
 */
import type { NotifyKeyword, OriginalRecipient, ReturnOption } from './envelope.ts';
import { SubmissionError, type InputPosition } from '../errors.ts';
import { parseAddress } from './address.ts';
import { describeCharacter, findControl, hasNonAscii, utf8Octets } from './characters.ts';

function refuse(detail: string, at: InputPosition): never {
  throw new SubmissionError('envelope-syntax', detail, at);
}

const NOTIFY_WORDS: Readonly<Record<string, NotifyKeyword>> = {
  never: 'NEVER',
  success: 'SUCCESS',
  failure: 'FAILURE',
  fail: 'FAILURE',
  delay: 'DELAY',
};

/**
 * dsn-notify-options: `never`, or a comma list of success, failure (or fail)
 * and delay, in any case, spaces around the commas allowed. Repeats fold;
 * the result is sorted so that equal requests compare equal.
 */
export function parseNotify(value: string, at: InputPosition): readonly NotifyKeyword[] {
  const keywords = new Set<NotifyKeyword>();
  for (const item of value.split(',')) {
    const word = item.replace(/^ +| +$/g, '');
    if (word === '') refuse('empty item in the list (a comma too many)', at);
    const keyword = Object.hasOwn(NOTIFY_WORDS, word.toLowerCase()) ? NOTIFY_WORDS[word.toLowerCase()] : undefined;
    if (keyword === undefined) {
      refuse(`unknown keyword "${word}"; use never, or any of success, failure, delay`, at);
    }
    keywords.add(keyword);
  }
  if (keywords.has('NEVER') && keywords.size > 1) refuse('never cannot be combined with other keywords', at);
  return Object.freeze([...keywords].sort());
}

export const MAX_ORCPT_OCTETS = 500;
const ADDRESS_TYPE = /^[A-Za-z0-9-]+$/;

/**
 * dsn-orig-rcpt: `type;value`, or a bare address that is taken as rfc822
 * (utf-8 when it has non-ASCII, RFC 6533). The value is kept as written. A
 * non-ASCII value needs type utf-8: under rfc822 the server would take the
 * xtext-decoded octets for a different, ASCII address.
 */
export function parseOriginalRecipient(value: string, at: InputPosition): OriginalRecipient {
  const octets = utf8Octets(value);
  if (octets > MAX_ORCPT_OCTETS) refuse(`longer than ${MAX_ORCPT_OCTETS} octets (${octets})`, at);
  const semicolon = value.indexOf(';');
  const prefix = semicolon < 0 ? '' : value.slice(0, semicolon);
  // A quoted local part may hold a ';': only a prefix free of address syntax is a type.
  if (semicolon < 0 || /["<@]/.test(prefix)) {
    const address = parseAddress(value, 'dsn-orig-rcpt', at);
    return Object.freeze({ type: address.utf8 ? 'utf-8' : 'rfc822', value: address.text });
  }
  if (!ADDRESS_TYPE.test(prefix)) {
    refuse(
      prefix === '' ? "no address type before ';' (write rfc822;address)" : `"${prefix}" is not an address type`,
      at,
    );
  }
  const type = prefix.toLowerCase();
  const original = value.slice(semicolon + 1);
  if (original === '') refuse(`no original recipient after "${prefix};"`, at);
  const control = findControl(original);
  if (control !== undefined) refuse(`has ${describeCharacter(control)}`, at);
  if (hasNonAscii(original) && type !== 'utf-8') {
    refuse(`a non-ASCII original recipient needs type utf-8, not ${type}`, at);
  }
  return Object.freeze({ type, value: original });
}

export const MAX_ENVELOPE_ID_CHARS = 100;
const ENVELOPE_ID = /^[\x21-\x7e]+$/;

/** dsn-envelope-id: 1 to 100 visible US-ASCII characters (RFC 3461 4.4). */
export function parseEnvelopeId(value: string, at: InputPosition): string {
  if (value === '') refuse('empty', at);
  if (value.length > MAX_ENVELOPE_ID_CHARS) refuse(`longer than ${MAX_ENVELOPE_ID_CHARS} characters`, at);
  if (!ENVELOPE_ID.test(value)) {
    for (const ch of value) {
      const cp = ch.codePointAt(0) as number;
      if (cp < 0x21 || cp > 0x7e) refuse(`has ${describeCharacter(cp)}; only visible US-ASCII is allowed`, at);
    }
  }
  return value;
}

const RETURN_WORDS: Readonly<Record<string, ReturnOption>> = { full: 'FULL', headers: 'HDRS', hdrs: 'HDRS' };

/** dsn-return-option: full or headers (hdrs, as on the wire, too), in any case. */
export function parseReturnOption(value: string, at: InputPosition): ReturnOption {
  const option = Object.hasOwn(RETURN_WORDS, value.toLowerCase()) ? RETURN_WORDS[value.toLowerCase()] : undefined;
  if (option === undefined) refuse(`"${value}" is not full or headers`, at);
  return option;
}
