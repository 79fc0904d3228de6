/** readSendmailInput: the header section read bounded, the envelope built from it, the message streamed on. */
import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, parseSendmailCommand, SubmissionError, withLimits } from '@mailsubmit/shared';
import { readSendmailInput } from '../../../src/3-intake/sendmail/sendmail-intake.ts';

const caller = { userName: 'alice', uid: 1000 };
const fixed = { now: new Date(Date.UTC(2026, 10, 24, 12, 0, 0)), hostName: 'host.example' };

async function collect(stream: Readable): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

describe('readSendmailInput', () => {
  it('reads recipients from the header with -t and streams the message with Bcc removed', async () => {
    const source = Readable.from([Buffer.from('To: a@x.example\nBcc: b@x.example,\n c@x.example\nFrom: f@x.example\n'), Buffer.from('Date: d\nMessage-ID: <m@x>\n\nbody\n')]);
    const intake = await readSendmailInput(source, { command: parseSendmailCommand(['-t', '-i']), caller, limits: DEFAULT_LIMITS, ...fixed });
    expect(intake.envelope.recipients.map((r) => r.address.text)).toEqual(['a@x.example', 'b@x.example', 'c@x.example']);
    expect(await collect(intake.message)).toBe('To: a@x.example\nFrom: f@x.example\nDate: d\nMessage-ID: <m@x>\n\nbody\n');
    expect(intake.addedOctets).toBe(0);
    // Sent line 6 ("body") is the caller's line 8: two Bcc lines went.
    expect(intake.callerLine(6)).toBe(8);
    expect(intake.callerLine(2)).toBe(2);
  });

  it('stops at the dot line without -i and reads no further', async () => {
    const source = new PassThrough();
    source.write('Subject: s\nFrom: f@x.example\nDate: d\nMessage-ID: <m@x>\n\nbefore\n');
    const pending = readSendmailInput(source, { command: parseSendmailCommand(['a@x.example']), caller, limits: DEFAULT_LIMITS, ...fixed });
    const intake = await pending;
    const text = collect(intake.message);
    source.write('.\nafter\n');
    expect(await text).toBe('Subject: s\nFrom: f@x.example\nDate: d\nMessage-ID: <m@x>\n\nbefore\n');
    expect(source.destroyed).toBe(true);
  });

  it('adds Message-Id, Date and From in Postfix\'s order and forms, and counts their octets', async () => {
    const intake = await readSendmailInput(Readable.from([Buffer.from('Subject: s\n\nbody\n')]), {
      command: parseSendmailCommand(['-F', 'Job', 'a@x.example']),
      caller,
      limits: DEFAULT_LIMITS,
      ...fixed,
    });
    const text = await collect(intake.message);
    // As Postfix's cleanup: Message-Id <UTC stamp.unique@host>, Date as mail_date() writes it, From last.
    expect(text).toMatch(
      /^Subject: s\nMessage-Id: <20261124120000\.[0-9A-F]{12}@host\.example>\nDate: [A-Z][a-z]{2}, [ \d]\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}( \([A-Z]+\))?\nFrom: Job <alice>\n\nbody\n$/,
    );
    expect(intake.addedOctets).toBe(Buffer.byteLength(text) - 'Subject: s\n\nbody\n'.length);
    expect(intake.callerLine(6)).toBe(3);
  });

  it('streams a header section past the limit on, Bcc removed and the fields added at its end; refuses it with -t or strict syntax', async () => {
    const filler = 'X-Filler: 0123456789\n'.repeat(20);
    const big = `${filler}Bcc: b@x.example\n c@x.example\nDate: d\n\nbody\n.\nafter\n`;
    const limits = withLimits({ maxHeaderOctets: 1024 });
    const small = withLimits({ maxHeaderOctets: 200 });
    const sent = async (l: typeof limits, args: string[]) => {
      const intake = await readSendmailInput(Readable.from([Buffer.from(big.slice(0, 150)), Buffer.from(big.slice(150))]), { command: parseSendmailCommand(args), caller, limits: l, ...fixed });
      return (await collect(intake.message)).replace(/<\d+\.[0-9A-Fa-f]+@host\.example>/, '<id>');
    };
    const expected = await sent(limits, ['a@x.example']);
    expect(expected).toBe(`${filler}Date: d\nMessage-Id: <id>\nFrom: alice\n\nbody\n`);
    expect(await sent(small, ['a@x.example'])).toBe(expected);
    expect(await sent(small, ['-i', 'a@x.example'])).toBe(`${filler}Date: d\nMessage-Id: <id>\nFrom: alice\n\nbody\n.\nafter\n`);
    await expect(sent(small, ['-t'])).rejects.toMatchObject({ outcome: 'over-limit', message: /header section larger than 200 octets .*-t/ });
    await expect(sent(withLimits({ maxHeaderOctets: 200, strictMessageSyntax: true }), ['a@x.example'])).rejects.toMatchObject({ outcome: 'over-limit' });
  });

  it('stops the header read when aborted', async () => {
    const source = new PassThrough();
    source.write('Subject: s\n');
    const aborted = new AbortController();
    const pending = readSendmailInput(source, { command: parseSendmailCommand(['a@x.example']), caller, limits: DEFAULT_LIMITS, signal: aborted.signal, ...fixed });
    aborted.abort(new SubmissionError('caller-gone', 'gone'));
    await expect(pending).rejects.toMatchObject({ outcome: 'caller-gone' });
  });
});
