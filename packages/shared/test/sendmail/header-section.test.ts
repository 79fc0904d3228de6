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
  return { section: reader.end(), rest: null };
}

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
    expectSubmissionError(() => read('Subject: x\n.\n', { dotEnds: false }), { outcome: 'message-syntax', line: 2 });
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
  ] as const)('refuses %j', (input, outcome, line, detail) => {
    expectSubmissionError(() => read(input), { outcome, line, detail });
  });

  it('holds no more than the header limit', () => {
    const limits = withLimits({ maxHeaderOctets: 100 });
    const lines = Array.from({ length: 20 }, (_, i) => `X-Line-${i}: filler\n`).join('');
    expectSubmissionError(() => read(lines, { limits }), { outcome: 'over-limit', detail: /header section larger than 100/ });
  });

  it('finds the same section however the input is cut', () => {
    const line = fc.constantFrom('To: a@x.example\n', ' b@x.example\r\n', 'Bcc: c@x.example\n', '\n', '.\n', 'body\n', 'Subject: s');
    fc.assert(
      fc.property(fc.array(line, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(120), { maxLength: 6 }), (lines, cuts) => {
        const input = lines.join('');
        let whole: unknown;
        let cut: unknown;
        try {
          const r = read(input);
          whole = { fields: r.section.fields.map((f) => [f.name, f.line, Buffer.concat(f.lines).toString()]), rest: r.rest, dot: r.section.endedByDot };
        } catch (error) {
          whole = (error as Error).message;
        }
        try {
          const r = read(input, { cuts });
          cut = { fields: r.section.fields.map((f) => [f.name, f.line, Buffer.concat(f.lines).toString()]), rest: r.rest, dot: r.section.endedByDot };
        } catch (error) {
          cut = (error as Error).message;
        }
        expect(cut).toEqual(whole);
      }),
      { numRuns: 1000 },
    );
  });
});
