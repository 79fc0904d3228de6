import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MtaReplyReader } from '../../../src/5-transport/smtp/mta-reply-reader.ts';
import { SmtpError } from '../../../src/5-transport/smtp/smtp-error.ts';

const EHLO = Buffer.from('250-fake.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n220 next\r\n');

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SmtpError);
    return (err as SmtpError).code;
  }
  return undefined;
}

describe('MtaReplyReader', () => {
  it('assembles a multi-line reply and keeps the next one apart', () => {
    const replies = new MtaReplyReader().push(EHLO);
    expect(replies).toHaveLength(2);
    expect(replies[0]).toMatchObject({ code: 250, lines: ['fake.example', 'PIPELINING', '8BITMIME'] });
    expect(replies[1]).toMatchObject({ code: 220, lines: ['next'] });
  });

  it('gives the same replies however the bytes are split', () => {
    const whole = new MtaReplyReader().push(EHLO);
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: EHLO.length - 1 }), { maxLength: 8 }), (cuts) => {
        const points = [0, ...cuts.sort((a, b) => a - b), EHLO.length];
        const reader = new MtaReplyReader();
        const replies = points.slice(1).flatMap((end, i) => reader.push(EHLO.subarray(points[i], end)));
        expect(replies).toEqual(whole);
      }),
    );
  });

  it('extracts the enhanced status code', () => {
    const [reply] = new MtaReplyReader().push(Buffer.from('550-5.1.1 <a@b>: Recipient address rejected:\r\n550 5.1.1 User unknown\r\n'));
    expect(reply?.enhanced).toBe('5.1.1');
    expect(reply?.lines).toEqual(['5.1.1 <a@b>: Recipient address rejected:', '5.1.1 User unknown']);
  });

  it('tolerates bare LF line ends', () => {
    expect(new MtaReplyReader().push(Buffer.from('250-a\n250 b\n'))[0]?.lines).toEqual(['a', 'b']);
  });

  it('refuses a line that is not a reply', () => {
    expect(codeOf(() => new MtaReplyReader().push(Buffer.from('hello\r\n')))).toBe('ERR_SMTP_BAD_REPLY');
  });

  it('refuses a multi-line reply that changes its code', () => {
    expect(codeOf(() => new MtaReplyReader().push(Buffer.from('250-a\r\n251 b\r\n')))).toBe('ERR_SMTP_BAD_REPLY');
  });

  it('caps the line length, also for a line that has not ended yet', () => {
    const reader = new MtaReplyReader({ maxLineOctets: 20, maxLines: 10 });
    expect(codeOf(() => reader.push(Buffer.from(`250 ${'x'.repeat(30)}\r\n`)))).toBe('ERR_SMTP_REPLY_TOO_LONG');
    const partial = new MtaReplyReader({ maxLineOctets: 20, maxLines: 10 });
    expect(partial.push(Buffer.from('250 xxxxxxxx'))).toEqual([]);
    expect(codeOf(() => partial.push(Buffer.from('x'.repeat(20))))).toBe('ERR_SMTP_REPLY_TOO_LONG');
  });

  it('caps the number of lines in a reply', () => {
    const reader = new MtaReplyReader({ maxLineOctets: 100, maxLines: 3 });
    expect(codeOf(() => reader.push(Buffer.from('250-a\r\n250-b\r\n250-c\r\n250-d\r\n')))).toBe('ERR_SMTP_REPLY_TOO_LONG');
  });
});
