/**
 * The stream wrapper: chunks in, SMTP-ready octets out, a SubmissionError
 * ends the pipeline (so nothing downstream can send the final dot).
 */

import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { SubmissionError } from '../../src/errors.ts';
import { withLimits } from '../../src/limits.ts';
import { MessageEncoderTransform } from '../../src/message/index.ts';

const STRICT = withLimits({ strictMessageSyntax: true });

async function run(chunks: string[], transform = new MessageEncoderTransform()): Promise<string> {
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks.map((c) => Buffer.from(c, 'latin1'))),
    transform,
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        out.push(chunk);
        callback();
      },
    }),
  );
  return Buffer.concat(out).toString('latin1');
}

describe('MessageEncoderTransform', () => {
  it('encodes across chunk boundaries and closes the last line', async () => {
    const transform = new MessageEncoderTransform();
    expect(await run(['Subject: a\r', '\nTo: b\n', '\n.', 'dot\nlast'], transform)).toBe('Subject: a\r\nTo: b\r\n\r\n..dot\r\nlast\r\n');
    expect(transform.stats).toEqual({ octets: 28, lines: 5, headerOctets: 18, headerLines: 2, eightBit: false });
  });

  it('fails the pipeline with the SubmissionError of a bad chunk', async () => {
    const error = await run(['A: b\n\n', 'x\0y\n'], new MessageEncoderTransform({ limits: STRICT })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SubmissionError);
    expect((error as SubmissionError).message).toBe('line 3: NUL octet in the message');
  });

  it('fails the pipeline with the end checks (size attribute)', async () => {
    const error = await run(['A: b\n\nx\n'], new MessageEncoderTransform({ declaredSize: 100 })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SubmissionError);
    expect((error as SubmissionError).outcome).toBe('size-mismatch');
  });

  it('fails an empty input as "no message" with strictMessageSyntax, and passes it on empty by default', async () => {
    const error = await run([], new MessageEncoderTransform({ limits: STRICT })).catch((e: unknown) => e);
    expect((error as SubmissionError).message).toBe('no message after the envelope block');
    expect(await run([])).toBe('');
  });
});
