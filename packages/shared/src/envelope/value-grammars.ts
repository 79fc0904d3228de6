/**
 * Grammars of the envelope values that are not addresses and not DSN
 * parameters: size, the XFORWARD facts (protocol, HELO, client name, port)
 * and the logged-only facts (SASL, client certificate, TLS).
 *
 * Each grammar is the narrowest that real values fit, because each value
 * ends up on an SMTP command line (xtext-encoded) or in a log line: what a
 * grammar does not admit can never reach either. Every function takes the
 * value after the line-level checks (no controls, no trailing space, UTF-8
 * only where the attribute allows it) and throws SubmissionError.
 */
import { SubmissionError, type InputPosition } from '../errors.ts';
import type { Limits } from '../limits.ts';
import { findControl, describeCharacter, utf8Octets } from './characters.ts';

function refuse(detail: string, at: InputPosition): never {
  throw new SubmissionError('envelope-syntax', detail, at);
}

const DIGITS = /^[0-9]+$/;

/** Decimal digits only: no sign, no spaces, no exponent, no hex. */
function decimal(value: string, at: InputPosition): number {
  if (!DIGITS.test(value)) refuse('not a decimal number (digits only, no sign)', at);
  const number = Number(value);
  if (!Number.isSafeInteger(number)) refuse('number too large', at);
  return number;
}

/** Declared octet count of the message; over the message limit is refused before reading it. */
export function parseSize(value: string, limits: Limits, at: InputPosition): number {
  const size = decimal(value, at);
  if (size > limits.maxMessageOctets) {
    throw new SubmissionError(
      'over-limit',
      `the message is declared as ${size} octets, more than the limit of ${limits.maxMessageOctets}`,
      at,
    );
  }
  return size;
}

function integerIn(value: string, min: number, max: number, at: InputPosition): number {
  const number = decimal(value, at);
  if (number < min || number > max) refuse(`must be between ${min} and ${max}`, at);
  return number;
}

export function parseClientPort(value: string, at: InputPosition): number {
  return integerIn(value, 0, 65535, at);
}

export function parseKeysize(value: string, at: InputPosition): number {
  return integerIn(value, 1, 65535, at);
}

/**
 * A value of one character class (`allowed` matches a single character) and
 * a length range; `what` names the class for the message.
 */
function token(value: string, allowed: RegExp, max: number, what: string, at: InputPosition): string {
  if (value === '') refuse('empty', at);
  if (value.length > max) refuse(`longer than ${max} characters`, at);
  checkCharacters(value, allowed, `only ${what} are allowed`, at);
  return value;
}

function checkCharacters(value: string, allowed: RegExp, hint: string, at: InputPosition): void {
  for (const ch of value) {
    if (!allowed.test(ch)) refuse(`has ${describeCharacter(ch.codePointAt(0) as number)}; ${hint}`, at);
  }
}

const WORD = /^[A-Za-z0-9_-]$/;

/** protocol_name: SMTP, ESMTP, ESMTPSA, LMTP, ... */
export function parseProtocolName(value: string, at: InputPosition): string {
  return token(value, WORD, 64, "letters, digits, '_' and '-'", at);
}

export function parseSaslMethod(value: string, at: InputPosition): string {
  return token(value, WORD, 64, "letters, digits, '_' and '-'", at);
}

const VISIBLE_ASCII = /^[\x21-\x7e]$/;

/**
 * helo_name: what the client said, which need not be a valid host name
 * (`[1.2.3.4]`, bare words are common), so any visible US-ASCII.
 */
export function parseHeloName(value: string, at: InputPosition): string {
  return token(value, VISIBLE_ASCII, 255, 'visible US-ASCII characters (no spaces)', at);
}

/**
 * client_name: `unknown` (what Postfix logs when reverse DNS fails, and a
 * valid label anyway) or a host name. Underscores are admitted because
 * reverse DNS does return them. One trailing dot (the root) is stripped.
 */
export function parseClientName(value: string, at: InputPosition): string {
  const name = value.endsWith('.') ? value.slice(0, -1) : value;
  if (name.length > 255) refuse('longer than 255 characters', at);
  for (const label of name.split('.')) {
    if (label === '') refuse('empty label in the host name (two dots in a row, or a leading dot)', at);
    if (label.length > 63) refuse('a label of the host name is longer than 63 characters', at);
    checkCharacters(label, WORD, "a host name has letters, digits, '-' and '_'", at);
  }
  return name;
}

export const MAX_FREE_TEXT_OCTETS = 1024;

/**
 * sasl_username, ccert_subject, ccert_issuer: free text that only reaches
 * the log. Printable, UTF-8 allowed (a certificate subject often has it).
 */
export function parseFreeText(value: string, at: InputPosition): string {
  if (value === '') refuse('empty', at);
  const control = findControl(value);
  if (control !== undefined) refuse(`has ${describeCharacter(control)}`, at);
  const octets = utf8Octets(value);
  if (octets > MAX_FREE_TEXT_OCTETS) refuse(`longer than ${MAX_FREE_TEXT_OCTETS} octets (${octets})`, at);
  return value;
}

const FINGERPRINT = /^[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){15,63}$/;

/** ccert_fingerprint: hex pairs with colons, 16 (MD5) to 64 (SHA-512) pairs. */
export function parseFingerprint(value: string, at: InputPosition): string {
  if (!FINGERPRINT.test(value)) {
    refuse('not a fingerprint: 16 to 64 hex pairs separated by colons, like C2:9D:F4:...', at);
  }
  return value;
}

/** encryption_protocol: TLSv1.3, TLSv1/SSLv3, ... */
export function parseEncryptionProtocol(value: string, at: InputPosition): string {
  return token(value, /^[A-Za-z0-9._/-]$/, 64, "letters, digits and '.', '_', '/', '-'", at);
}

/** encryption_cipher: OpenSSL or IANA names, e.g. DHE-RSA-AES256-SHA, TLS_AES_256_GCM_SHA384. */
export function parseEncryptionCipher(value: string, at: InputPosition): string {
  return token(value, /^[A-Za-z0-9._/+=-]$/, 128, "letters, digits and '.', '_', '/', '+', '=', '-'", at);
}
