/** The character classes the grammars share, and how refused characters are named. */
import { describe, expect, it } from 'vitest';
import {
  describeCharacter,
  findControl,
  hasNonAscii,
  isUtf8NonAscii,
  utf8Octets,
} from '../../src/envelope/characters.ts';

describe('character classes', () => {
  it('finds C0 controls, DEL and C1 controls, and nothing else', () => {
    expect(findControl('plain text ~')).toBeUndefined();
    expect(findControl('jösé 日本')).toBeUndefined();
    expect(findControl('a\tb')).toBe(0x09);
    expect(findControl('a\u007fb')).toBe(0x7f);
    expect(findControl('a\u009bb')).toBe(0x9b);
    expect(findControl('\u0000')).toBe(0);
  });

  it('takes U+00A0 and above, but no surrogate halves, as UTF8-non-ascii', () => {
    expect(isUtf8NonAscii(0x9f)).toBe(false);
    expect(isUtf8NonAscii(0xa0)).toBe(true);
    expect(isUtf8NonAscii(0xd800)).toBe(false);
    expect(isUtf8NonAscii(0x1f600)).toBe(true);
  });

  it('tells ASCII and non-ASCII apart', () => {
    expect(hasNonAscii('abc')).toBe(false);
    expect(hasNonAscii('abé')).toBe(true);
  });

  it('counts UTF-8 octets', () => {
    expect(utf8Octets('abc')).toBe(3);
    expect(utf8Octets('é')).toBe(2);
    expect(utf8Octets('😀')).toBe(4);
  });

  it('names controls without echoing them', () => {
    expect(describeCharacter(0x0d)).toMatch(/lone carriage return/);
    expect(describeCharacter(0x00)).toMatch(/NUL/);
    expect(describeCharacter(0x09)).toMatch(/tab/);
    expect(describeCharacter(0x7f)).toMatch(/DEL/);
    expect(describeCharacter(0x1b)).toMatch(/escape/);
    expect(describeCharacter(0x01)).toBe('a control character (0x01)');
    expect(describeCharacter(0x85)).toBe('a control character (U+0085)');
    expect(describeCharacter(0x20)).toBe('a space');
    expect(describeCharacter(0x3d)).toBe('the character "="');
    for (let cp = 0; cp < 0xa0; cp++) {
      if (cp < 0x20 || cp >= 0x7f) expect(describeCharacter(cp)).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    }
  });
});
