/**
 * The two encodings DSN parameters travel in.
 *
 * xtext (RFC 3461 section 4): ENVID, ORCPT of type rfc822, and every XFORWARD
 * value. Octets 0x21-0x7E other than '+' and '=' stand for themselves; every
 * other octet of the value's UTF-8 encoding is written `+HH` with upper-case
 * hex. The result is printable ASCII without spaces, so it can never end a
 * parameter or a command line early.
 *
 * utf-8-addr-xtext (RFC 6533 section 3): ORCPT of type utf-8. Printable ASCII
 * other than '+', '=' and '\' stands for itself; every other code point
 * (non-ASCII, controls, space, and those three) is written `\x{HEX}` with the
 * shortest upper-case hex of at least two digits, as Postfix's uxtext_quote()
 * writes it.
 *
 * Values must be well-formed Unicode: an unpaired surrogate has no UTF-8
 * encoding, and encoding it as U+FFFD would silently change the value.
 */
import { SubmissionError } from '../errors.ts';

const LONE_SURROGATE = /[\ud800-\udfff]/u;
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

function assertWellFormed(value: string, what: string): void {
  if (LONE_SURROGATE.test(value)) {
    throw new SubmissionError('envelope-syntax', `${what} is not well-formed Unicode`);
  }
}

const HEX = '0123456789ABCDEF';

function isXchar(octet: number): boolean {
  return octet >= 0x21 && octet <= 0x7e && octet !== 0x2b /* + */ && octet !== 0x3d /* = */;
}

/** RFC 3461 xtext of the UTF-8 encoding of `value`. */
export function encodeXtext(value: string): string {
  assertWellFormed(value, 'xtext value');
  const octets = Buffer.from(value, 'utf8');
  let out = '';
  for (const octet of octets) {
    out += isXchar(octet) ? String.fromCharCode(octet) : `+${HEX[octet >> 4]}${HEX[octet & 15]}`;
  }
  return out;
}

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x41 + 10;
  if (code >= 0x61 && code <= 0x66) return code - 0x61 + 10;
  return -1;
}

/**
 * Decodes xtext back to a string. Lower-case hex after '+' is accepted (some
 * clients write it); a '+' without two hex digits, a raw '=' or anything
 * outside 0x21-0x7E, or octets that are not UTF-8, are an error.
 */
export function decodeXtext(text: string): string {
  const octets: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x2b) {
      const high = hexValue(text.charCodeAt(i + 1));
      const low = hexValue(text.charCodeAt(i + 2));
      if (high < 0 || low < 0) {
        throw new SubmissionError('envelope-syntax', `bad xtext: '+' at offset ${i} is not followed by two hex digits`);
      }
      octets.push(high * 16 + low);
      i += 2;
    } else if (isXchar(code)) {
      octets.push(code);
    } else {
      throw new SubmissionError('envelope-syntax', `bad xtext: character ${describe(code)} at offset ${i}`);
    }
  }
  try {
    return utf8Decoder.decode(Uint8Array.from(octets));
  } catch {
    throw new SubmissionError('envelope-syntax', 'bad xtext: the decoded octets are not UTF-8');
  }
}

function describe(code: number): string {
  return code >= 0x21 && code <= 0x7e ? `'${String.fromCharCode(code)}'` : `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
}

function isQchar(codePoint: number): boolean {
  return codePoint >= 0x21 && codePoint <= 0x7e && codePoint !== 0x2b && codePoint !== 0x3d && codePoint !== 0x5c;
}

/** RFC 6533 utf-8-addr-xtext of `value` (pure ASCII output). */
export function encodeUtf8AddrXtext(value: string): string {
  assertWellFormed(value, 'utf-8-addr-xtext value');
  let out = '';
  for (const char of value) {
    const codePoint = char.codePointAt(0) as number;
    out += isQchar(codePoint) ? char : `\\x{${codePoint.toString(16).toUpperCase().padStart(2, '0')}}`;
  }
  return out;
}

const EMBEDDED = /\\x\{([0-9A-Fa-f]{2,6})\}/y;

/**
 * Decodes utf-8-addr-xtext. Accepts hex in either case; a '\' that does not
 * start a `\x{HEX}` naming a Unicode scalar value, or a raw '+', '=', space
 * or control, is an error.
 */
export function decodeUtf8AddrXtext(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const codePoint = text.codePointAt(i) as number;
    if (codePoint === 0x5c) {
      EMBEDDED.lastIndex = i;
      const match = EMBEDDED.exec(text);
      const value = match ? Number.parseInt(match[1] as string, 16) : -1;
      if (!match || value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff)) {
        throw new SubmissionError('envelope-syntax', `bad utf-8-addr-xtext: '\\' at offset ${i} does not start \\x{HEX}`);
      }
      out += String.fromCodePoint(value);
      i += match[0].length;
    } else if (isQchar(codePoint) || codePoint > 0x7f) {
      // RFC 6533 utf-8-addr-unitext allows raw UTF-8; accept it when decoding.
      const char = String.fromCodePoint(codePoint);
      out += char;
      i += char.length;
    } else {
      throw new SubmissionError('envelope-syntax', `bad utf-8-addr-xtext: character ${describe(codePoint)} at offset ${i}`);
    }
  }
  assertWellFormed(out, 'utf-8-addr-xtext value');
  return out;
}
