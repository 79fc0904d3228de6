/**
 * The address grammar: RFC 5321 Mailbox, with RFC 6531 UTF-8, optional angle
 * brackets, the null sender `<>`, and unqualified local parts.
 *
 * This is the parameter-injection defence for MAIL FROM and RCPT TO. The
 * validated text is written between `<` and `>` on the wire, so it must never
 * hold anything a server could read as the end of the path or the start of a
 * parameter: no space outside quotes, no angle bracket anywhere (not even
 * quoted: a server that scans for `>` without honouring quotes would end the
 * path early), no second `@`, no control character. Whatever survives is a
 * mailbox a careful MTA parses the same way we do.
 *
 * A local part with a leading, trailing or doubled dot (`a..b`, `.a`, `a.`) is
 * not a dot-string, but Postfix takes it (SRS and list-bounce addresses have
 * them): it is kept, written as the quoted string it is equivalent to
 * (`"a..b"@example.org`), which every MTA reads back as the same mailbox.
 *
 * Refused with their own message because callers do write them: source
 * routes (`<@a,@b:u@c>`, RFC 5321 C: to be ignored, but an MTA could honour
 * them), general address literals (`[tag:...]`, nothing defines one), zone ids
 * in IPv6 literals, and a trailing dot in the domain.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { Address } from './envelope.ts';
import { SubmissionError, type InputPosition } from '../errors.ts';
import type { Outcome } from '../status/outcomes.ts';
import { describeCharacter, hasNonAscii, isUtf8NonAscii, utf8Octets } from './characters.ts';

/** Where an address is written; decides `<>` and the outcome of an error. */
export type AddressRole = 'sender' | 'recipient' | 'sasl_sender' | 'dsn-orig-rcpt';

/**
 * RFC 5321 4.5.3.1.3 puts 256 octets on a path. The local part's own limit
 * (64, 4.5.3.1.1) is deliberately not enforced: SRS and VERP addresses pass
 * it routinely in real mail, Postfix takes them, and refusing them here would
 * bounce mail the MTA would have delivered.
 */
export const MAX_ADDRESS_OCTETS = 256;
export const MAX_LABEL_OCTETS = 63;

const NULL_ADDRESS: Address = Object.freeze({ text: '', utf8: false, unqualified: false });

const NULL_REFUSALS: Readonly<Record<AddressRole, string | undefined>> = {
  sender: undefined,
  recipient: 'the null address <> cannot be a recipient',
  sasl_sender: 'the null address <> is not an authenticated sender; leave the value empty when there is none',
  'dsn-orig-rcpt': 'the null address <> is not an original recipient',
};

const OUTCOMES: Readonly<Record<AddressRole, Outcome>> = {
  sender: 'sender-syntax',
  recipient: 'recipient-syntax',
  sasl_sender: 'envelope-syntax',
  'dsn-orig-rcpt': 'envelope-syntax',
};

/** RFC 5322 atext specials: the ASCII characters besides letters and digits. */
const ATEXT_SPECIALS = new Set("!#$%&'*+-/=?^_`{|}~");

/** Thrown inside this file only; parseAddress turns it into a SubmissionError. */
class AddressProblem {
  constructor(
    readonly detail: string,
    readonly tooLong = false,
  ) {}
}

/**
 * Validate one address as the caller wrote it. Returns the text for between
 * the angle brackets; throws SubmissionError (outcome by role) on any fault.
 */
export function parseAddress(written: string, role: AddressRole, at: InputPosition = {}): Address {
  try {
    return parse(written, role);
  } catch (error) {
    if (!(error instanceof AddressProblem)) throw error;
    throw new SubmissionError(error.tooLong ? 'address-too-long' : OUTCOMES[role], error.detail, at);
  }
}

function problem(detail: string): never {
  throw new AddressProblem(detail);
}

function parse(written: string, role: AddressRole): Address {
  if (written === '') {
    problem(role === 'sender' ? 'empty; the null sender is written <>' : 'empty');
  }
  const inner = stripBrackets(written);
  if (inner === '') {
    const refusal = NULL_REFUSALS[role];
    if (refusal !== undefined) problem(refusal);
    return NULL_ADDRESS;
  }
  // Checked before the grammar so that the work on hostile input stays bounded.
  const octets = utf8Octets(inner);
  if (octets > MAX_ADDRESS_OCTETS) {
    throw new AddressProblem(`longer than ${MAX_ADDRESS_OCTETS} octets (${octets})`, true);
  }

  if (inner.startsWith('@')) {
    problem(
      inner.includes(':')
        ? 'source routes (@host,...:) are not accepted; give the mailbox alone'
        : 'no local part before the @',
    );
  }
  const quoted = inner.startsWith('"');
  const localEnd = quoted ? scanQuotedLocalPart(inner) : scanDotString(inner);
  // Atext and dots only, so the quoted form needs no backslash; it is at most two octets longer.
  const text = !quoted && !isDotAtom(inner.slice(0, localEnd)) ? `"${inner.slice(0, localEnd)}"${inner.slice(localEnd)}` : inner;
  if (utf8Octets(text) > MAX_ADDRESS_OCTETS) {
    throw new AddressProblem(`longer than ${MAX_ADDRESS_OCTETS} octets once its local part is quoted (${utf8Octets(text)})`, true);
  }
  if (localEnd === inner.length) {
    return Object.freeze({ text, utf8: hasNonAscii(text), unqualified: true });
  }
  if (inner.charCodeAt(localEnd) !== 0x40) {
    problem(`${describeCharacter(inner.codePointAt(localEnd) ?? 0)} after the quoted local part`);
  }
  checkDomainPart(inner.slice(localEnd + 1));
  return Object.freeze({ text, utf8: hasNonAscii(text), unqualified: false });
}

/** Atoms joined by single dots: what may stand unquoted (RFC 5321 Dot-string). */
function isDotAtom(local: string): boolean {
  return !local.startsWith('.') && !local.endsWith('.') && !local.includes('..');
}

/** The address without its brackets; the brackets must be balanced. */
function stripBrackets(written: string): string {
  const opens = written.startsWith('<');
  const closes = written.endsWith('>');
  if (opens && closes && written.length >= 2) return written.slice(1, -1);
  if (opens) {
    problem(
      written.includes('>')
        ? 'text after the closing angle bracket (parameters cannot be given here)'
        : 'no closing angle bracket',
    );
  }
  if (closes) {
    problem(
      written.includes('<')
        ? 'text before the opening angle bracket (a display name cannot be given here)'
        : 'a closing angle bracket without an opening one',
    );
  }
  return written;
}

/** Unquoted local part, atext and dots (misplaced dots included); returns the index of the `@` or the end. */
function scanDotString(text: string): number {
  let i = 0;
  while (i < text.length) {
    const cp = text.codePointAt(i) as number;
    if (cp === 0x40) break;
    if (cp !== 0x2e && !isAtext(cp)) problem(unexpected(cp, 'the local part'));
    i += cp > 0xffff ? 2 : 1;
  }
  if (i === 0) problem('no local part before the @');
  return i;
}

const ANGLE_IN_QUOTES =
  'angle brackets are not accepted, even quoted or escaped: a server could take them for the end of the address';

/** Quoted-string local part (qtextSMTP / quoted-pairSMTP); returns the index after the closing quote. */
function scanQuotedLocalPart(text: string): number {
  let i = 1;
  for (;;) {
    const cp = text.codePointAt(i);
    if (cp === undefined) problem('the quoted local part has no closing quote');
    if (cp === 0x22) return i + 1;
    if (cp === 0x5c) {
      const next = text.codePointAt(i + 1);
      if (next === undefined) problem('the quoted local part has no closing quote');
      if (next < 0x20 || next > 0x7e) problem(`a backslash before ${describeCharacter(next)} in the quoted local part`);
      if (next === 0x3c || next === 0x3e) problem(ANGLE_IN_QUOTES);
      i += 2;
      continue;
    }
    if (cp === 0x3c || cp === 0x3e) problem(ANGLE_IN_QUOTES);
    if (!isQtext(cp)) problem(`${describeCharacter(cp)} in the quoted local part`);
    i += cp > 0xffff ? 2 : 1;
  }
}

function checkDomainPart(domain: string): void {
  if (domain === '') problem('no domain after the @');
  if (domain.startsWith('[')) {
    checkAddressLiteral(domain);
    return;
  }
  checkMailDomain(domain);
}

/**
 * RFC 5321 Domain, with RFC 6531 U-labels taken as labels of non-ASCII
 * letters (full IDNA validation is the MTA's business). The 255-octet domain
 * limit needs no check of its own: the whole address is already at most 256.
 */
function checkMailDomain(domain: string): void {
  if (domain.endsWith('.')) problem('the domain ends with a dot');
  for (const label of domain.split('.')) {
    if (label === '') problem('empty label in the domain (two dots in a row, or a leading dot)');
    if (utf8Octets(label) > MAX_LABEL_OCTETS) problem(`a domain label is longer than ${MAX_LABEL_OCTETS} octets`);
    if (label.startsWith('-') || label.endsWith('-')) problem(`the domain label "${label}" starts or ends with a hyphen`);
    for (const ch of label) {
      const cp = ch.codePointAt(0) as number;
      if (!isLetDig(cp) && cp !== 0x2d && !isUtf8NonAscii(cp)) problem(unexpected(cp, 'the domain'));
    }
  }
}

function checkAddressLiteral(literal: string): void {
  if (!literal.endsWith(']')) problem('the address literal has no closing bracket');
  const content = literal.slice(1, -1);
  if (/^ipv6:/i.test(content)) {
    const ip = content.slice(5);
    if (ip.includes('%')) problem('zone ids are not accepted in an IPv6 address literal');
    if (!isIPv6(ip)) problem(`"${literal}" is not a valid IPv6 address literal`);
    return;
  }
  if (isIPv4(content)) return;
  if (isIPv6(content)) problem('an IPv6 address literal needs its prefix: [IPv6:...]');
  if (/^[A-Za-z0-9-]*[A-Za-z0-9]:/.test(content)) {
    problem('general address literals ([tag:...]) are not accepted; use [1.2.3.4] or [IPv6:...]');
  }
  problem(`"${printable(literal)}" is not a valid address literal; use [1.2.3.4] or [IPv6:...]`);
}

/** The message for a character the grammar has no place for. */
function unexpected(cp: number, where: string): string {
  switch (cp) {
    case 0x20:
      return 'a space outside quotes (an address cannot carry parameters or a display name)';
    case 0x40:
      return 'more than one @ (quote the local part if it holds one)';
    case 0x3c:
    case 0x3e:
      return 'an angle bracket inside the address';
    case 0x22:
      return 'a quote inside an unquoted local part (quote the whole local part)';
    case 0x2c:
      return 'a comma: give one address per line';
    case 0x28:
    case 0x29:
      return 'a parenthesis: comments are not accepted in an address';
    default:
      return `${describeCharacter(cp)} in ${where}`;
  }
}

/** The literal as it may appear in a message: controls never reach this far, but be safe. */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

function isLetDig(cp: number): boolean {
  return (cp >= 0x30 && cp <= 0x39) || (cp >= 0x41 && cp <= 0x5a) || (cp >= 0x61 && cp <= 0x7a);
}

function isAtext(cp: number): boolean {
  return isLetDig(cp) || (cp < 0x80 && ATEXT_SPECIALS.has(String.fromCharCode(cp))) || isUtf8NonAscii(cp);
}

/** qtextSMTP (RFC 5321) with RFC 6531's UTF8-non-ascii. */
function isQtext(cp: number): boolean {
  return cp === 0x20 || cp === 0x21 || (cp >= 0x23 && cp <= 0x5b) || (cp >= 0x5d && cp <= 0x7e) || isUtf8NonAscii(cp);
}
