import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DotTerminator } from '../../src/sendmail/dot-terminator.ts';

/** Feeds `input` in the given pieces; returns what was passed on and whether a dot line ended it. */
function run(input: string, cuts: readonly number[] = []): { data: string; ended: boolean } {
  const bytes = Buffer.from(input, 'latin1');
  const dots = new DotTerminator(true);
  const out: Buffer[] = [];
  let from = 0;
  for (const cut of [...cuts.filter((c) => c > 0 && c < bytes.length)].sort((a, b) => a - b).concat(bytes.length)) {
    const scan = dots.write(bytes.subarray(from, cut));
    out.push(scan.data);
    from = cut;
    if (scan.ended) return { data: Buffer.concat(out).toString('latin1'), ended: true };
  }
  const last = dots.end();
  out.push(last.data);
  return { data: Buffer.concat(out).toString('latin1'), ended: last.ended };
}

/** The rule, written line by line. */
function model(input: string): { data: string; ended: boolean } {
  let at = 0;
  while (at <= input.length) {
    const lf = input.indexOf('\n', at);
    const line = lf === -1 ? input.slice(at) : input.slice(at, lf);
    // As Postfix's sendmail: the CRs before an LF go before the dot check; a last line without LF keeps them.
    if (line === '.' || (lf !== -1 && /^\.\r+$/.test(line))) return { data: input.slice(0, at), ended: true };
    if (lf === -1) break;
    at = lf + 1;
  }
  return { data: input, ended: false };
}

describe('DotTerminator', () => {
  it.each([
    ['a\n.\nb\n', 'a\n', true],
    ['a\r\n.\r\nb\r\n', 'a\r\n', true],
    ['.\nrest', '', true],
    ['a\n..\nb\n', 'a\n..\nb\n', false],
    ['a\n.b\n', 'a\n.b\n', false],
    ['a\n. \n', 'a\n. \n', false],
    ['a\n.', 'a\n', true],
    ['a.\n.x', 'a.\n.x', false],
    ['a\n.\r\r\nb\n', 'a\n', true],
    ['a\n.\r', 'a\n.\r', false],
    ['a\n.\r\r', 'a\n.\r\r', false],
    ['a\n.\rx\n', 'a\n.\rx\n', false],
  ])('%j passes on %j (ended: %s)', (input, data, ended) => {
    expect(run(input)).toEqual({ data, ended });
  });

  it('takes a dot line only when it fits, LF included, in one 2048-octet piece, as Postfix\'s sendmail reads it', () => {
    for (const cuts of [[], [7, 8, 1000, 2054, 2055]]) {
      expect(run(`before\n.${'\r'.repeat(2046)}\nafter\n`, cuts)).toEqual({ data: 'before\n', ended: true });
      const long = `before\n.${'\r'.repeat(2047)}\nafter\n`;
      expect(run(long, cuts)).toEqual({ data: long, ended: false });
      const dots = `before\n${'.'.repeat(3000)}\nafter\n`;
      expect(run(dots, cuts)).toEqual({ data: dots, ended: false });
    }
  });

  it('gives the same result however the input is cut', () => {
    const text = fc.stringMatching(/^[a.\r\n]{0,40}$/);
    fc.assert(
      fc.property(text, fc.array(fc.nat(40), { maxLength: 8 }), (input, cuts) => {
        expect(run(input, cuts)).toEqual(model(input));
      }),
      { numRuns: 2000 },
    );
  });

  it('passes nothing on after the end', () => {
    const dots = new DotTerminator(true);
    expect(dots.write(Buffer.from('x\n.\n')).ended).toBe(true);
    expect(dots.write(Buffer.from('more\n'))).toEqual({ data: Buffer.alloc(0), ended: true });
  });
});
