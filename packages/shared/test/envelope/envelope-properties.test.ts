/**
 * Properties of the parser and writer over arbitrary input: valid blocks
 * round-trip, hostile bytes only ever produce a SubmissionError, and no
 * accepted value carries a control character or breaks out of its address.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/envelope/envelope.ts';
import { parseEnvelopeBlock } from '../../src/envelope/envelope-parser.ts';
import { writeEnvelopeBlock } from '../../src/envelope/envelope-writer.ts';
import { SubmissionError } from '../../src/errors.ts';
import { validBlock } from './envelope-arbitraries.ts';

function withoutLines(envelope: Envelope): unknown {
  return { ...envelope, recipients: envelope.recipients.map(({ line: _line, ...rest }) => rest) };
}

/** Every string anywhere in the envelope. */
function stringsOf(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const item of value) stringsOf(item, out);
  else if (value !== null && typeof value === 'object') for (const item of Object.values(value)) stringsOf(item, out);
  return out;
}

/** Address texts (sender, recipients, sasl_sender): what goes between < and > on the wire. */
function addressTexts(envelope: Envelope): string[] {
  const texts = [envelope.sender.text, ...envelope.recipients.map((r) => r.address.text)];
  if (envelope.sasl.sender !== undefined) texts.push(envelope.sasl.sender.text);
  return texts;
}

/** The address with its quoted local part (if any) removed: what a naive server would scan. */
function outsideQuotes(text: string): string {
  return text.replace(/^"(?:[^"\\]|\\.)*"/u, '');
}

/** Parse, and return the envelope or the SubmissionError; anything else thrown fails the test. */
function tryParse(input: Buffer | string): Envelope | SubmissionError {
  try {
    return parseEnvelopeBlock(input);
  } catch (error) {
    if (error instanceof SubmissionError) return error;
    throw error;
  }
}

function checkAccepted(envelope: Envelope): void {
  for (const text of stringsOf(envelope)) {
    expect(text).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
  }
  for (const text of addressTexts(envelope)) {
    expect(text).not.toMatch(/[<>]/);
    expect(outsideQuotes(text)).not.toMatch(/ /);
    expect(outsideQuotes(text).split('@').length).toBeLessThanOrEqual(2);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(256);
  }
}

const NASTY = [
  '\r', '\n', '\r\n', '\u0000', '\t', '\u001b', '\u007f', '\u0085', ' ', '  ', '<', '>', '<>', '@', '"', '\\', ';', ',', ':',
  '=', '+', '[', ']', 'é', ' NOTIFY=NEVER', ' SIZE=1', '\rRCPT TO:<c@d>', 'recipient: x\n', '\n\n', 'IPv6:', '%eth0', '.',
].map((s) => Buffer.from(s, 'utf8'));
const RAW_BYTES = [0xff, 0xc3, 0x80, 0xed, 0xa0, 0xf4, 0x90].map((b) => Buffer.from([b]));

/** A valid block with a few insertions and deletions of troublesome bytes. */
const mutatedBlock = fc
  .tuple(
    validBlock,
    fc.array(
      fc.tuple(fc.nat(), fc.oneof(fc.constantFrom(...NASTY, ...RAW_BYTES), fc.constant(null)), fc.integer({ min: 1, max: 3 })),
      { minLength: 1, maxLength: 4 },
    ),
  )
  .map(([text, edits]) => {
    let bytes = Buffer.from(text, 'utf8');
    for (const [position, insert, removeCount] of edits) {
      const at = position % (bytes.length + 1);
      bytes =
        insert === null
          ? Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + removeCount)])
          : Buffer.concat([bytes.subarray(0, at), insert, bytes.subarray(at)]);
    }
    return bytes;
  });

describe('envelope properties', () => {
  it('every valid block drawn from the grammars parses', () => {
    fc.assert(
      fc.property(validBlock, (text) => {
        const result = tryParse(text);
        if (result instanceof SubmissionError) throw new Error(`refused ${JSON.stringify(text)}: ${result.message}`);
      }),
      { numRuns: 500 },
    );
  });

  it('round-trips through writeEnvelopeBlock and parseEnvelopeBlock, asserted order included', () => {
    fc.assert(
      fc.property(validBlock, (text) => {
        const envelope = parseEnvelopeBlock(text);
        const written = writeEnvelopeBlock(envelope);
        const reread = parseEnvelopeBlock(written);
        expect(withoutLines(reread)).toEqual(withoutLines(envelope));
        expect(reread.asserted).toEqual(envelope.asserted);
        expect(writeEnvelopeBlock(reread)).toBe(written);
      }),
      { numRuns: 500 },
    );
  });

  it('arbitrary bytes give an envelope or a SubmissionError, never another exception', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const result = tryParse(Buffer.from(bytes));
        if (!(result instanceof SubmissionError)) checkAccepted(result);
      }),
      { numRuns: 1000 },
    );
  });

  it('arbitrary text lines with a plausible shape give an envelope or a SubmissionError', () => {
    const line = fc
      .tuple(fc.constantFrom('sender', 'recipient', 'dsn-orig-rcpt', 'dsn-notify-options', 'size', 'client_address', 'helo_name'), fc.string({ unit: 'binary', maxLength: 40 }))
      .map(([name, value]) => `${name}: ${value}`);
    fc.assert(
      fc.property(fc.array(line, { maxLength: 6 }), (lines) => {
        const result = tryParse(`sender: <>\nrecipient: a@b\n${lines.join('\n')}\n\n`);
        if (!(result instanceof SubmissionError)) checkAccepted(result);
      }),
      { numRuns: 1000 },
    );
  });

  it('a valid block with troublesome bytes inserted or removed is refused cleanly, or accepted clean', () => {
    fc.assert(
      fc.property(mutatedBlock, (bytes) => {
        const result = tryParse(bytes);
        if (result instanceof SubmissionError) {
          expect(result.message).not.toMatch(/[\u0000-\u001f\u007f]/);
          expect(['envelope-syntax', 'sender-syntax', 'recipient-syntax', 'address-too-long', 'over-limit']).toContain(
            result.outcome,
          );
        } else {
          checkAccepted(result);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
