/**
 * Caller text shown in a log line, a status report or a reply: no control,
 * format character, separator or lone surrogate survives, and different
 * inputs stay different (the escaping is reversible).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { escapeBytes, escapeText, unescapeBytes, unescapeText } from '../../src/text/escape-text.ts';

const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;

describe('escapeText', () => {
  it.each([
    ['RIGHT-TO-LEFT OVERRIDE', 'evil\u202etxt.exe', 'evil\\u202etxt.exe'],
    ['isolates', 'a\u2066b\u2067c\u2068d\u2069', 'a\\u2066b\\u2067c\\u2068d\\u2069'],
    ['zero-width characters and marks', '\u200b\u200c\u200d\u200e\u200f', '\\u200b\\u200c\\u200d\\u200e\\u200f'],
    ['the byte order mark', '\ufeffx', '\\ufeffx'],
    ['a tag character (astral Cf)', 'x\u{e0001}', 'x\\u{e0001}'],
    ['ESC and a terminal sequence', '\u001b[31mred', '\\x1b[31mred'],
    ['CR, LF, TAB, NUL, DEL', 'a\r\nb\tc\u0000d\u007f', 'a\\x0d\\x0ab\\x09c\\x00d\\x7f'],
    ['C1 controls (CSI, NEL)', '\u009b2J\u0085', '\\u009b2J\\u0085'],
    ['line and paragraph separators', 'a\u2028b\u2029', 'a\\u2028b\\u2029'],
    ['a lone surrogate', 'a\ud800b', 'a\\ud800b'],
    ['the backslash itself', 'a\\u202e', 'a\\\\u202e'],
  ])('escapes %s', (_name, input, expected) => {
    expect(escapeText(input)).toBe(expected);
    expect(unescapeText(expected)).toBe(input);
  });

  it('leaves letters of every script, emoji and spaces alone', () => {
    for (const text of ['j\u00f6rg@b\u00fccher.example', '\u0430\u0434\u043c\u0438\u043d', '\u05e9\u05dc\u05d5\u05dd', 'a b', '\u{1f600}', 'plain']) {
      expect(escapeText(text)).toBe(text);
    }
  });

  it('keeps no unsafe character, and tells every two inputs apart (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 64 }), (text) => {
        const escaped = escapeText(text);
        expect(UNSAFE.test(escaped)).toBe(false);
        expect(unescapeText(escaped)).toBe(text);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 16 }), fc.string({ unit: 'binary', maxLength: 16 }), (a, b) => {
        fc.pre(a !== b);
        expect(escapeText(a)).not.toBe(escapeText(b));
      }),
      { numRuns: 2000 },
    );
  });

  it('survives JSON with no raw unsafe character in the line', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 64 }), (text) => {
        const line = JSON.stringify({ sender: escapeText(text) });
        expect(UNSAFE.test(line)).toBe(false);
        expect(unescapeText(JSON.parse(line).sender)).toBe(text);
      }),
    );
  });
});

describe('escapeBytes', () => {
  it('shows octets that are not UTF-8 as \\xHH and decodes the rest', () => {
    expect(escapeBytes(Buffer.from([0x61, 0xff, 0x62]))).toBe('a\\xffb');
    expect(escapeBytes(Buffer.from([0xc3, 0xbc, 0xc3]))).toBe('\u00fc\\xc3');
    expect(escapeBytes(Buffer.from([0xed, 0xa0, 0x80]))).toBe('\\xed\\xa0\\x80');
    expect(escapeBytes(Buffer.from('\u202e\u001b', 'utf8'))).toBe('\\u202e\\x1b');
    expect(escapeBytes(Buffer.from([0xc0, 0xaf]))).toBe('\\xc0\\xaf');
  });

  it('is reversible and leaves nothing unsafe for any octets (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const escaped = escapeBytes(bytes);
        expect(UNSAFE.test(escaped)).toBe(false);
        expect(Buffer.from(unescapeBytes(escaped)).equals(Buffer.from(bytes))).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });
});
