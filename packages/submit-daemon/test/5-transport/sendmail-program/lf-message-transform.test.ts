import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MessageEncoder } from '@mailsubmit/shared';
import { LfDecoder, LfMessageTransform } from '../../../src/5-transport/sendmail-program/lf-message-transform.ts';

/** The conversion written the slow, obvious way: per line, on the whole input. */
function reference(input: Buffer): Buffer {
  const lines = input.toString('latin1').split('\n');
  const out = lines.map((line, i) => {
    let text = i < lines.length - 1 && line.endsWith('\r') ? line.slice(0, -1) : line;
    if (text.startsWith('..')) text = text.slice(1);
    return text;
  });
  return Buffer.from(out.join('\n'), 'latin1');
}

/** Splits `data` at the given cut points (any numbers; taken modulo the length, sorted). */
function split(data: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => (data.length === 0 ? 0 : c % (data.length + 1))))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let start = 0;
  for (const point of points) {
    parts.push(data.subarray(start, point));
    start = point;
  }
  parts.push(data.subarray(start));
  return parts;
}

function decode(parts: readonly Buffer[]): Buffer {
  const decoder = new LfDecoder();
  return Buffer.concat([...parts.map((part) => decoder.write(part)), decoder.end()]);
}

function encode(text: string): Buffer {
  const encoder = new MessageEncoder();
  return Buffer.concat([encoder.write(Buffer.from(text, 'latin1')), encoder.end()]);
}

/** Bytes rich in the octets that matter here. */
const tricky = fc
  .array(fc.constantFrom('.', '..', '\r', '\n', '\r\n', 'a', ' ', '\u00e9'), { maxLength: 60 })
  .map((parts) => Buffer.from(parts.join(''), 'latin1'));
const cuts = fc.array(fc.nat(), { maxLength: 12 });

describe('LfDecoder', () => {
  it('turns CRLF into LF and removes the stuffed dot', () => {
    const input = Buffer.from('Subject: x\r\n\r\n..\r\n...two\r\n.\r\nplain.\r\n');
    expect(decode([input]).toString()).toBe('Subject: x\n\n.\n..two\n.\nplain.\n');
  });

  it('keeps a lone CR and an unstuffed leading dot as they are', () => {
    expect(decode([Buffer.from('a\rb\r\n.x\r\n')]).toString()).toBe('a\rb\n.x\n');
    expect(decode([Buffer.from('tail\r')]).toString()).toBe('tail\r');
    expect(decode([Buffer.from('x\n.')]).toString()).toBe('x\n.');
  });

  it('gives the same bytes as the obvious conversion, however the input is cut', () => {
    fc.assert(
      fc.property(tricky, cuts, (input, points) => {
        expect(decode(split(input, points))).toEqual(reference(input));
      }),
      { numRuns: 2000 },
    );
  });

  it('holds back at most one octet: what each chunk gives is the final output so far', () => {
    fc.assert(
      fc.property(tricky, cuts, (input, points) => {
        const expected = reference(input);
        const decoder = new LfDecoder();
        let emitted = Buffer.alloc(0);
        let read = 0;
        for (const part of split(input, points)) {
          const out = decoder.write(part);
          expect(out.length).toBeLessThanOrEqual(part.length + 1);
          emitted = Buffer.concat([emitted, out]);
          read += part.length;
          expect(expected.subarray(0, emitted.length)).toEqual(emitted);
          expect(emitted.length).toBeGreaterThanOrEqual(reference(input.subarray(0, read)).length - 1);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('undoes the MessageEncoder exactly, for any message and any chunking', () => {
    const line = fc.stringMatching(/^[ -~\u00a0-\u00ff]{0,40}$/);
    const body = fc.array(fc.oneof(line, fc.constantFrom('.', '..', '.x', '')), { maxLength: 20 });
    fc.assert(
      fc.property(body, fc.boolean(), cuts, (lines, finalNewline, points) => {
        const text = `Subject: t\n\n${lines.join('\n')}${finalNewline ? '\n' : ''}`;
        const encoded = encode(text);
        const expected = text.endsWith('\n') ? text : `${text}\n`;
        expect(decode(split(encoded, points)).toString('latin1')).toBe(expected);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('LfMessageTransform', () => {
  it('runs the decoder as a stream stage', async () => {
    const parts = ['Subject: x\r\n\r\n.', '.one\r', '\n..\r\n'].map((s) => Buffer.from(s));
    const out: Buffer[] = [];
    for await (const chunk of Readable.from(parts).pipe(new LfMessageTransform())) out.push(chunk as Buffer);
    expect(Buffer.concat(out).toString()).toBe('Subject: x\n\n.one\n.\n');
  });

  it('refuses a chunk that is not bytes with an internal SubmissionError', async () => {
    const transform = new LfMessageTransform({ objectMode: true });
    const failure = new Promise((resolve) => transform.once('error', resolve));
    transform.write(42);
    await expect(failure).resolves.toMatchObject({ name: 'SubmissionError', outcome: 'internal' });
  });
});
