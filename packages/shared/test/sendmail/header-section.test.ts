import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { withLimits } from '../../src/limits.ts';
import { HeaderSectionReader, unfoldedValue, type HeaderSection } from '../../src/sendmail/header-section.ts';
import { expectSubmissionError } from '../envelope/expect-submission-error.ts';

function read(input: string | Buffer, options: { dotEnds?: boolean; cuts?: readonly number[]; limits?: ReturnType<typeof withLimits> } = {}): { section: HeaderSection; rest: string | null } {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  const reader = new HeaderSectionReader({ dotEnds: options.dotEnds ?? true, ...(options.limits ? { limits: options.limits } : {}) });
  let from = 0;
  const cuts = [...(options.cuts ?? []).filter((c) => c > 0 && c < bytes.length)].sort((a, b) => a - b).concat(bytes.length);
  for (const cut of cuts) {
    const rest = reader.write(bytes.subarray(from, cut));
    if (rest !== null) return { section: reader.section as HeaderSection, rest: Buffer.concat([rest, bytes.subarray(cut)]).toString('utf8') };
    from = cut;
  }
  const section = reader.end();
  const body = reader.takeBody();
  return { section, rest: body.length > 0 ? body.toString('utf8') : null };
}

const STRICT = withLimits({ strictMessageSyntax: true });

describe('HeaderSectionReader', () => {
  it('splits the fields, keeps continuation lines with their field, and stops at the empty line', () => {
    const { section, rest } = read('To: a@x.example,\n b@x.example\r\nSubject : hi\n\nbody\n.\n');
    expect(section.fields.map((f) => [f.name, f.line, f.lines.length])).toEqual([
      ['To', 1, 2],
      ['Subject', 3, 1],
    ]);
    expect(section.lineCount).toBe(3);
    expect(section.separator?.toString()).toBe('\n');
    expect(section.endedByDot).toBe(false);
    expect(rest).toBe('body\n.\n');
    expect(unfoldedValue(section.fields[0] as never).toString()).toBe(' a@x.example, b@x.example');
  });

  it('takes a dot line as the end of the message without -i, and as a header error with -i', () => {
    const ended = read('Subject: x\n.\nTo: later@x.example\n');
    expect(ended.section.endedByDot).toBe(true);
    expect(ended.section.fields.map((f) => f.name)).toEqual(['Subject']);
    expectSubmissionError(() => read('Subject: x\n.\n', { dotEnds: false, limits: STRICT }), { outcome: 'message-syntax', line: 2 });
    // By default a dot line with -i is no header line: the body starts with it.
    const data = read('Subject: x\n.\nmore\n', { dotEnds: false });
    expect(data.section.fields.map((f) => f.name)).toEqual(['Subject']);
    expect(data.section.separatorAdded).toBe(true);
    expect(data.rest).toBe('.\nmore\n');
    expect(read('Subject: x\n.\r\r\nTo: later@x.example\n').section.endedByDot).toBe(true);
  });

  it('ends at end of input, the last line without a line end counting', () => {
    const { section, rest } = read('Subject: x\nTo: a@x.example');
    expect(rest).toBeNull();
    expect(section.separator).toBeNull();
    expect(section.lineCount).toBe(2);
    expect(section.fields[1]?.lines[0]?.toString()).toBe('To: a@x.example');
    expect(read('').section.fields).toEqual([]);
  });

  it.each([
    ['Subject: x\nnot a header\n\n', 'message-syntax', 2, /neither a field/],
    [' starts with a continuation\n\n', 'message-syntax', 1, /continuation/],
    ['Subject: x\nTo: a\0b\n\n', 'message-syntax', 2, /NUL/],
    ['Subject: x\rY\n\n', 'message-syntax', 1, /bare CR/],
    ['Subject: x\r', 'message-syntax', 1, /bare CR/],
    [`Subject: ${'x'.repeat(1000)}\n\n`, 'over-limit', 1, /line longer than 998/],
  ] as const)('with strictMessageSyntax refuses %j', (input, outcome, line, detail) => {
    expectSubmissionError(() => read(input, { limits: STRICT }), { outcome, line, detail });
  });

  it('drops leading mbox From lines (after any number of >), as Postfix\'s sendmail does, and only those', () => {
    const { section, rest } = read('From a@x.example Tue Nov 24 12:00:00 2026\n>From b\n>>From c\r\nSubject: x\n\nFrom body\n');
    expect(section.droppedFromLines).toBe(3);
    expect(section.lineCount).toBe(4);
    expect(section.fields.map((f) => [f.name, f.line])).toEqual([['Subject', 4]]);
    expect(rest).toBe('From body\n');
    const later = read('Subject: x\nFrom y\n\nbody\n');
    expect(later.section.droppedFromLines).toBe(0);
    expect(later.section.separatorAdded).toBe(true);
    expect(later.rest).toBe('From y\n\nbody\n');
  });

  it.each([
    ['no empty line before the body', 'Subject: x\nbody line\nmore\n', ['Subject'], 'body line\nmore\n'],
    ['no header section', 'just a body\nSubject: not a field here\n', [], 'just a body\nSubject: not a field here\n'],
    ['a continuation first', ' continued\nSubject: x\n\nbody\n', [], ' continued\nSubject: x\n\nbody\n'],
    ['a name without colon', 'Subject\n', [], 'Subject\n'],
    ['a last line without line end', 'Subject: x\nno end', ['Subject'], 'no end'],
  ] as const)('by default ends the section at the first line that is no header line (%s), adding the empty line', (_name, input, names, rest) => {
    const result = read(input);
    expect(result.section.fields.map((f) => f.name)).toEqual(names);
    expect(result.section.separator?.toString()).toBe('\n');
    expect(result.section.separatorAdded).toBe(true);
    expect(result.rest).toBe(rest);
  });

  it('by default takes NUL, stray CRs, several CRs before the LF, and lines of any length', () => {
    const long = 'x'.repeat(5000);
    const { section, rest } = read(`Subject: a\0b\nX-Cr: a\rb\r\r\nX-Long: ${long}\n\rfolded\n\r\r\nbody\n`);
    expect(section.fields.map((f) => [f.name, f.lines.length])).toEqual([['Subject', 1], ['X-Cr', 1], ['X-Long', 2]]);
    expect(section.separator?.toString('latin1')).toBe('\r\r\n');
    expect(section.separatorAdded).toBe(false);
    expect(rest).toBe('body\n');
  });

  it('by default takes a first body line longer than the header limit without holding it, and stops before a field that is (unfinished)', () => {
    const limits = withLimits({ maxHeaderOctets: 1024 });
    const body = `${'y'.repeat(5000)}\nmore\n`;
    const result = read(body, { limits, cuts: [100, 2000, 4000] });
    expect(result.section.fields).toEqual([]);
    expect(result.section.separatorAdded).toBe(true);
    expect(result.section.unfinished).toBe(false);
    expect(result.rest).toBe(body);
    const field = `Subject: ${'y'.repeat(5000)}\n\nbody\n`;
    const long = read(field, { limits, cuts: [100, 2000] });
    expect(long.section).toMatchObject({ fields: [], unfinished: true, separator: null, separatorAdded: false, lineCount: 0 });
    expect(long.rest).toBe(field);
    // Strict: refused.
    expectSubmissionError(() => read(field, { limits: withLimits({ maxHeaderOctets: 1024, maxLineOctets: 10_000, strictMessageSyntax: true }), cuts: [100, 2000] }), { outcome: 'over-limit', line: 1, detail: /header section larger than 1024/ });
  });

  it('holds no more than the header limit: the section past it is handed back unread', () => {
    const limits = withLimits({ maxHeaderOctets: 100 });
    const lines = Array.from({ length: 20 }, (_, i) => `X-Line-${i}: filler\n`);
    const input = `${lines.join('')}\nbody\n`;
    for (const cuts of [[], [1, 50, 99, 100, 101, 150]]) {
      const { section, rest } = read(input, { limits, cuts });
      expect(section.fields.map((f) => f.name)).toEqual(['X-Line-0', 'X-Line-1', 'X-Line-2', 'X-Line-3', 'X-Line-4']);
      expect(section).toMatchObject({ unfinished: true, separator: null, lineCount: 5 });
      expect(rest).toBe(`${lines.slice(5).join('')}\nbody\n`);
    }
    expectSubmissionError(() => read(input, { limits: withLimits({ maxHeaderOctets: 100, strictMessageSyntax: true }) }), { outcome: 'over-limit', line: 6, detail: /header section larger than 100/ });
    // A field of 2 MB, read 1000 octets at a time: handed back once the limit and a line's first piece are held.
    const reader = new HeaderSectionReader({ dotEnds: true, limits: withLimits({ maxHeaderOctets: 10_240 }) });
    const big = Buffer.from(`A: b\nX-Long: ${'h'.repeat(2_000_000)}\n\nbody\n`);
    let writes = 0;
    let rest: Buffer | null = null;
    while (rest === null) rest = reader.write(big.subarray(writes * 1000, ++writes * 1000));
    expect(writes).toBeLessThanOrEqual(Math.ceil((10_240 + 2048) / 1000) + 1);
    expect(reader.section).toMatchObject({ unfinished: true, lineCount: 1 });
    expect(Buffer.concat([rest, big.subarray(writes * 1000)]).equals(big.subarray(5))).toBe(true);
  });

  it('looks at a line\'s first 2048 octets, as Postfix\'s sendmail reads it: From_ lines, dot lines, field names', () => {
    // A leading From_ line is dropped only when it fits, LF included, in 2048 octets, and only with its LF.
    expect(read(`From ${'f'.repeat(2042)}\nA: b\n\nbody\n`).section).toMatchObject({ droppedFromLines: 1, fields: [{ name: 'A' }] });
    const kept = read(`From ${'f'.repeat(2043)}\nA: b\n\nbody\n`);
    expect(kept.section).toMatchObject({ droppedFromLines: 0, fields: [], separatorAdded: true });
    expect(kept.rest).toBe(`From ${'f'.repeat(2043)}\nA: b\n\nbody\n`);
    expect(read('From someone').section).toMatchObject({ droppedFromLines: 0, separatorAdded: true });
    expect(read('From someone').rest).toBe('From someone');
    // A dot line: the dot and up to 2046 CRs before the LF.
    expect(read(`A: b\n.${'\r'.repeat(2046)}\nafter\n`).section.endedByDot).toBe(true);
    const long = read(`A: b\n.${'\r'.repeat(2047)}\nafter\n`);
    expect(long.section).toMatchObject({ endedByDot: false, separatorAdded: true });
    expect(long.rest).toBe(`.${'\r'.repeat(2047)}\nafter\n`);
    // A field's colon must be in the line's first 2048 octets.
    expect(read(`A: b\n${'N'.repeat(2047)}: v\n\nbody\n`).section.fields.map((f) => f.name.length)).toEqual([1, 2047]);
    const name = read(`A: b\n${'N'.repeat(2048)}: v\n\nbody\n`, { cuts: [1000, 2053, 2054] });
    expect(name.section).toMatchObject({ fields: [{ name: 'A' }], separatorAdded: true });
    expect(name.rest).toBe(`${'N'.repeat(2048)}: v\n\nbody\n`);
  });

  it('finds the same section however the input is cut', () => {
    const line = fc.constantFrom('To: a@x.example\n', ' b@x.example\r\n', 'Bcc: c@x.example\n', '\n', '.\n', 'body\n', 'Subject: s', 'From x\n', '>From y\n', 'A: b\r\r\n', '\r\r\n', '\rc\n', '.\r\r\n');
    fc.assert(
      fc.property(fc.array(line, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(120), { maxLength: 6 }), fc.boolean(), (lines, cuts, strict) => {
        const input = lines.join('');
        const limits = strict ? STRICT : withLimits({ maxHeaderOctets: 40 });
        let whole: unknown;
        let cut: unknown;
        try {
          const r = read(input, { limits });
          whole = { fields: r.section.fields.map((f) => [f.name, f.line, Buffer.concat(f.lines).toString()]), rest: r.rest, dot: r.section.endedByDot, unfinished: r.section.unfinished };
        } catch (error) {
          whole = (error as Error).message;
        }
        try {
          const r = read(input, { cuts, limits });
          cut = { fields: r.section.fields.map((f) => [f.name, f.line, Buffer.concat(f.lines).toString()]), rest: r.rest, dot: r.section.endedByDot, unfinished: r.section.unfinished };
        } catch (error) {
          cut = (error as Error).message;
        }
        expect(cut).toEqual(whole);
      }),
      { numRuns: 1000 },
    );
  });
});
