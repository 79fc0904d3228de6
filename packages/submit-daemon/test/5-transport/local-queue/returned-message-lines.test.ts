import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BoundaryInContentError, ReturnedMessageLines } from '../../../src/5-transport/local-queue/returned-message-lines.ts';

function rewrite(boundary: string, parts: readonly Buffer[]): Buffer {
  const lines = new ReturnedMessageLines(boundary);
  return Buffer.concat([...parts.map((part) => lines.write(part)), lines.end()]);
}

/** The rules written the slow, obvious way, on the whole input at once. */
function reference(input: Buffer): Buffer {
  const text = input.toString('latin1').replace(/\r+\n/g, '\n').replace(/\r/g, ' ').replace(/\n/g, '\r\n');
  if (text === '') return Buffer.alloc(0);
  const out: string[] = [];
  for (const line of (text.endsWith('\r\n') ? text.slice(0, -2) : text).split('\r\n')) {
    let rest = line;
    let first = true;
    do {
      const room = first ? 998 : 997;
      out.push((first ? '' : ' ') + rest.slice(0, room));
      rest = rest.slice(room);
      first = false;
    } while (rest.length > 0);
  }
  return Buffer.from(`${out.join('\r\n')}\r\n`, 'latin1');
}

describe('ReturnedMessageLines', () => {
  it('gives the same bytes as the reference, however the input is cut', () => {
    const octet = fc.constantFrom(0x0d, 0x0a, 0x2d, 0x61, 0x20, 0x61, 0x61);
    // Reads of any size, some long enough to need breaking; their concatenation is the input.
    const read = fc.oneof(
      fc.uint8Array({ maxLength: 60 }).map((a) => Buffer.from(a.map((b) => (b < 0x80 ? b : 0x61)))),
      fc.array(octet, { maxLength: 1500 }).map((a) => Buffer.from(a)),
      fc.integer({ min: 990, max: 2100 }).map((n) => Buffer.alloc(n, 0x61)),
    );
    fc.assert(
      fc.property(fc.array(read, { maxLength: 5 }), (reads) => {
        expect(rewrite('b0undary', reads).toString('latin1')).toBe(reference(Buffer.concat(reads)).toString('latin1'));
      }),
    );
  });

  it('never breaks a line inside a UTF-8 sequence', () => {
    const line = Buffer.from(`${'a'.repeat(997)}\u20ac\n`);
    const out = rewrite('b', [line]).toString('utf8');
    expect(out).toBe(`${'a'.repeat(997)}\r\n \u20ac\r\n`);
  });

  it('refuses a line that starts with the delimiter, also across reads, and passes one that only contains it', () => {
    expect(() => rewrite('xyz', [Buffer.from('a\n--xyz\n')])).toThrow(BoundaryInContentError);
    expect(() => rewrite('xyz', [Buffer.from('a\r\n--x'), Buffer.from('yz--\r\n')])).toThrow(BoundaryInContentError);
    expect(() => rewrite('xyz', [Buffer.from('--xyz')])).toThrow(BoundaryInContentError);
    expect(rewrite('xyz', [Buffer.from('a --xyz\n-xyz\n--xy\n')]).toString()).toBe('a --xyz\r\n-xyz\r\n--xy\r\n');
  });
});
