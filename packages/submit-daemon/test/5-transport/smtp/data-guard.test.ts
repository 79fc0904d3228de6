import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DataGuard } from '../../../src/5-transport/smtp/data-guard.ts';

function checkSplit(bytes: Buffer, cuts: number[]): string | null {
  const guard = new DataGuard();
  const points = [0, ...cuts.filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b), bytes.length];
  for (let i = 1; i < points.length; i++) {
    const problem = guard.check(bytes.subarray(points[i - 1], points[i]));
    if (problem !== null) return problem;
  }
  return guard.finish();
}

const SAFE = Buffer.from('Subject: x\r\n\r\n..leading dot\r\nbody\r\n...\r\n');

describe('DataGuard', () => {
  it('accepts dot-stuffed CRLF text', () => {
    expect(checkSplit(SAFE, [])).toBeNull();
    expect(checkSplit(Buffer.from('..starts with a dot\r\n'), [])).toBeNull();
    expect(checkSplit(Buffer.alloc(0), [])).toBeNull();
  });

  it.each([
    ['a bare LF', 'a\nb\r\n'],
    ['a bare CR', 'a\rb\r\n'],
    ['an unstuffed dot line', 'a\r\n.\r\nRCPT TO:<x@y>\r\n'],
    ['an unstuffed leading dot', 'a\r\n.x\r\n'],
    ['an unstuffed dot at the very start', '.x\r\n'],
    ['a lone dot at the end', 'a\r\n.'],
    ['a CR at the end', 'a\r'],
  ])('refuses %s', (_name, text) => {
    expect(checkSplit(Buffer.from(text), [])).not.toBeNull();
  });

  it('gives the same verdict wherever the chunks are cut', () => {
    const texts = [
      SAFE,
      Buffer.from('a\r\n.\r\n'),
      Buffer.from('a\r\n..\r\n'),
      Buffer.from('a\n.\nb'),
      Buffer.from('.\r\n'),
      Buffer.from('x\r\n.y'),
      Buffer.from('x\r\r\n'),
    ];
    for (const bytes of texts) {
      const whole = checkSplit(bytes, []) === null;
      fc.assert(
        fc.property(fc.array(fc.integer({ min: 0, max: bytes.length }), { maxLength: 6 }), (cuts) => {
          expect(checkSplit(bytes, cuts) === null).toBe(whole);
        }),
      );
    }
  });

  it('refuses any text with CRLF.CRLF, whatever else it contains', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('a', '.', '\r\n', '\r', '\n') }), fc.string({ unit: fc.constantFrom('a', '.', '\r\n') }), (before, after) => {
        const bytes = Buffer.from(`${before}\r\n.\r\n${after}`);
        expect(checkSplit(bytes, [])).not.toBeNull();
      }),
    );
  });

  it('tells whether the message ended with a line end', () => {
    const guard = new DataGuard();
    expect(guard.endsWithLineEnd).toBe(true);
    guard.check(Buffer.from('abc'));
    expect(guard.endsWithLineEnd).toBe(false);
    guard.check(Buffer.from('\r\n'));
    expect(guard.endsWithLineEnd).toBe(true);
    expect(guard.octets).toBe(5);
  });
});
