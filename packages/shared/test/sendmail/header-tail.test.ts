import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseAddress } from '../../src/envelope/address.ts';
import { DEFAULT_LIMITS, withLimits, type Limits } from '../../src/limits.ts';
import { HeaderSectionReader, type HeaderSection } from '../../src/sendmail/header-section.ts';
import { continueHeader } from '../../src/sendmail/header-tail.ts';
import { parseSendmailCommand } from '../../src/sendmail/sendmail-command.ts';
import { rewriteHeader } from '../../src/sendmail/sendmail-message.ts';

const sender = parseAddress('alice@x.example', 'sender');
const facts = { now: new Date(Date.UTC(2026, 10, 24, 12, 0, 0)), hostName: 'host.example', unique: 'abc123' };
const command = parseSendmailCommand(['-i', 'a@x.example']);

/** Reads the section in `cuts`, as the intake does: the section, and the rest after it. */
function readSection(bytes: Buffer, limits: Limits, cuts: readonly number[]): { section: HeaderSection; rest: Buffer } {
  const reader = new HeaderSectionReader({ dotEnds: false, limits });
  let from = 0;
  for (const cut of [...cuts.filter((c) => c > 0 && c < bytes.length)].sort((a, b) => a - b).concat(bytes.length)) {
    const rest = reader.write(bytes.subarray(from, cut));
    if (rest !== null) return { section: reader.section as HeaderSection, rest: Buffer.concat([rest, bytes.subarray(cut)]) };
    from = cut;
  }
  const section = reader.end();
  return { section, rest: reader.takeBody() };
}

/** What the sendmail door sends for `input` under `limits`, the rest fed in `cuts`. */
function sent(input: string, limits: Limits, cuts: readonly number[] = []): string {
  const { section, rest } = readSection(Buffer.from(input, 'latin1'), limits, cuts);
  if (!section.unfinished) return Buffer.concat([rewriteHeader(section, command, sender, facts).bytes, rest]).toString('latin1');
  const { head, tail } = continueHeader(section, command, sender, facts);
  const out = [head];
  let from = 0;
  for (const cut of [...cuts.filter((c) => c > 0 && c < rest.length)].sort((a, b) => a - b).concat(rest.length)) {
    out.push(...tail.write(rest.subarray(from, cut)));
    from = cut;
  }
  out.push(...tail.end());
  return Buffer.concat(out).toString('latin1');
}

describe('HeaderTail: the header section past the header limit, streamed', () => {
  it('sends what the door sends when the section fits: dropped fields gone, missing fields added at the section\'s end', () => {
    const input = 'Subject: s\nX-A: 1\nBcc: hidden@x.example,\n more@x.example\nDate: d\nX-B: 2\n\nbody\nBcc: in body\n';
    const small = withLimits({ maxHeaderOctets: 20 });
    expect(readSection(Buffer.from(input), small, []).section.unfinished).toBe(true);
    const expected = 'Subject: s\nX-A: 1\nDate: d\nX-B: 2\nMessage-Id: <20261124120000.ABC123@host.example>\nFrom: alice@x.example\n\nbody\nBcc: in body\n';
    expect(sent(input, DEFAULT_LIMITS)).toBe(expected);
    expect(sent(input, small)).toBe(expected);
    expect(sent(input, small, [3, 25, 40, 41, 60])).toBe(expected);
  });

  it('puts the empty line before a line that is no header line, and closes a last line without a line end', () => {
    const small = withLimits({ maxHeaderOctets: 12 });
    for (const input of ['Subject: s\nX-A: 1\nno header line\nX-B: 2\n', 'Subject: s\nX-A: 1\nX-B: 2', 'Subject: s\nX-A: 1\nBcc: b']) {
      expect(sent(input, small)).toBe(sent(input, DEFAULT_LIMITS));
    }
    expect(sent('Subject: s\nX-A: 1\nno header line\n', small)).toContain('X-A: 1\nMessage-Id: <20261124120000.ABC123@host.example>\nDate: ');
    expect(sent('Subject: s\nX-A: 1\nno header line\n', small)).toMatch(/From: alice@x\.example\n\nno header line\n$/);
  });

  it('takes Resent- fields anywhere in the section, as rewriteHeader does', () => {
    const input = 'From: a@x\nDate: d\nMessage-Id: <m@x>\nX-Fill: 0123456789\nResent-To: c@x\n\nbody\n';
    const small = withLimits({ maxHeaderOctets: 40 });
    expect(sent(input, small)).toBe(sent(input, DEFAULT_LIMITS));
    expect(sent(input, small)).toContain('Resent-Message-Id: ');
  });

  it('sends the same as with a limit the section fits in, for any section and any cuts', () => {
    const line = fc.constantFrom('To: a@x.example\n', ' b@x.example\r\n', 'Bcc: c@x.example\n', '\tfolded\n', 'Date: d\n', 'Resent-From: r\n', 'Return-Path: <p>\n', '\n', 'body\n', 'Subject: s', 'X-Long: 0123456789abcdef\n', 'A: b\r\r\n', '\r\r\n', '\rc\n', 'From: f\n');
    fc.assert(
      fc.property(fc.array(line, { minLength: 1, maxLength: 10 }), fc.array(fc.nat(200), { maxLength: 6 }), fc.integer({ min: 1, max: 80 }), (lines, cuts, limit) => {
        const input = lines.join('');
        expect(sent(input, withLimits({ maxHeaderOctets: limit }), cuts)).toBe(sent(input, DEFAULT_LIMITS));
      }),
      { numRuns: 1500 },
    );
  });

  it('holds a line\'s first 2048 octets at most: a long field streams through in pieces', () => {
    const small = withLimits({ maxHeaderOctets: 10 });
    const input = `Subject: s\nX-Long: ${'h'.repeat(100_000)}\nBcc: ${'b'.repeat(50_000)}\n ${'c'.repeat(5000)}\nX-After: 1\n\nbody\n`;
    const { section, rest } = readSection(Buffer.from(input), small, []);
    const { tail } = continueHeader(section, command, sender, facts);
    const pieces: Buffer[] = [];
    for (let at = 0; at < rest.length; at += 1000) pieces.push(...tail.write(rest.subarray(at, at + 1000)));
    pieces.push(...tail.end());
    // Nothing held past a line's first piece: every write gives back what it got but at most 2048 octets.
    expect(Math.max(...pieces.map((p) => p.length))).toBeLessThanOrEqual(2048 + 1000);
    expect(sent(input, small, [500, 5000, 100_010])).toBe(sent(input, DEFAULT_LIMITS));
    expect(sent(input, small)).not.toContain('bbb');
  });
});
