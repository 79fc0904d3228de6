import { describe, expect, it } from 'vitest';
import { SubmissionError } from '../../src/errors.ts';
import { decodeUtf8AddrXtext, decodeXtext, encodeUtf8AddrXtext, encodeXtext } from '../../src/smtp/xtext.ts';

describe('encodeXtext', () => {
  it('leaves printable ASCII other than + and = as is', () => {
    expect(encodeXtext('user@example.com')).toBe('user@example.com');
    expect(encodeXtext('!~"<>;')).toBe('!~"<>;');
  });

  it('encodes +, =, space and controls as +HH with upper-case hex', () => {
    expect(encodeXtext('a+b=c d')).toBe('a+2Bb+3Dc+20d');
    expect(encodeXtext('\r\n\0\x7f')).toBe('+0D+0A+00+7F');
    expect(encodeXtext('\u00ff')).toBe('+C3+BF');
  });

  it('encodes every octet of the UTF-8 encoding of non-ASCII text', () => {
    expect(encodeXtext('j\u00f6rg')).toBe('j+C3+B6rg');
    expect(encodeXtext('\u{1F600}')).toBe('+F0+9F+98+80');
  });

  it('refuses an unpaired surrogate instead of changing the value', () => {
    expect(() => encodeXtext('a\ud800b')).toThrow(SubmissionError);
  });
});

describe('decodeXtext', () => {
  it('decodes +HH in either case', () => {
    expect(decodeXtext('a+2Bb+3dc')).toBe('a+b=c');
    expect(decodeXtext('j+C3+B6rg')).toBe('j\u00f6rg');
  });

  it.each([
    ['a+2', 'truncated hexchar'],
    ['a+G0', 'non-hex digit'],
    ['a=b', 'raw ='],
    ['a b', 'space'],
    ['a\u00e9', 'non-ASCII'],
    ['+FF', 'not UTF-8'],
  ])('refuses %j (%s)', (text) => {
    expect(() => decodeXtext(text)).toThrow(SubmissionError);
  });
});

describe('encodeUtf8AddrXtext', () => {
  it('writes non-ASCII code points as \\x{HEX}', () => {
    expect(encodeUtf8AddrXtext('j\u00f6rg@b\u00fccher.example')).toBe('j\\x{F6}rg@b\\x{FC}cher.example');
    expect(encodeUtf8AddrXtext('\u7528\u6237@\u4f8b\u5b50')).toBe('\\x{7528}\\x{6237}@\\x{4F8B}\\x{5B50}');
    expect(encodeUtf8AddrXtext('\u{1F600}')).toBe('\\x{1F600}');
  });

  it('escapes +, =, backslash, space and controls', () => {
    expect(encodeUtf8AddrXtext('a+b=c\\d e\r')).toBe('a\\x{2B}b\\x{3D}c\\x{5C}d\\x{20}e\\x{0D}');
  });

  it('round-trips through decodeUtf8AddrXtext', () => {
    const value = '"x y"+\\=\u00e9\u{10FFFF}@example.org';
    expect(decodeUtf8AddrXtext(encodeUtf8AddrXtext(value))).toBe(value);
  });

  it('refuses a malformed escape or a raw + when decoding', () => {
    expect(() => decodeUtf8AddrXtext('a\\x{D800}')).toThrow(SubmissionError);
    expect(() => decodeUtf8AddrXtext('a\\x{110000}')).toThrow(SubmissionError);
    expect(() => decodeUtf8AddrXtext('a\\y')).toThrow(SubmissionError);
    expect(() => decodeUtf8AddrXtext('a+b')).toThrow(SubmissionError);
  });
});
