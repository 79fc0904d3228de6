/**
 * Properties of the MessageEncoder over generated inputs and chunkings:
 * agreement with the reference models (strictMessageSyntax on, and the
 * default: the message as Postfix takes it), independence of chunking,
 * output safe for SMTP DATA, round trip, and no error type but
 * SubmissionError.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SubmissionError } from '../../src/errors.ts';
import { DEFAULT_LIMITS, withLimits, type Limits } from '../../src/limits.ts';
import { MessageEncoder } from '../../src/message/message-encoder.ts';
import { encodeChunks, octetByOctet, splitAt } from './encode-chunks.ts';
import { referenceEncode, referenceEncodeAsPostfix } from './reference-model.ts';

const RUNS = { numRuns: Number(process.env.MESSAGE_PROPERTY_RUNS ?? 400) };

const STRICT = withLimits({ strictMessageSyntax: true });

/** Octets that matter to some rule, plus ordinary text. */
const interestingOctet = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...Buffer.from('aZ-:. \t\r\n')) },
  { weight: 3, arbitrary: fc.constantFrom(...Buffer.from('Subject: hi')) },
  { weight: 1, arbitrary: fc.constantFrom(0x00, 0x7f, 0x80, 0xc3, 0xff, 0x01, 0x1f) },
);

const rawInput = fc.array(interestingOctet, { maxLength: 120 }).map((octets) => Uint8Array.from(octets));

/** Mostly well-formed messages with every kind of line end, so that the success path is exercised too. */
const lineEnd = fc.constantFrom('\n', '\r\n', '\n', '\r\n', '');
const headerLine = fc.oneof(
  fc.tuple(fc.constantFrom('Subject', 'From', 'X-a', '.dot', 'To '), fc.string({ maxLength: 12 })).map(([n, v]) => `${n}: ${v}`),
  fc.string({ maxLength: 10 }).map((v) => ` ${v}`),
  fc.string({ maxLength: 10 }),
);
const bodyLine = fc.oneof(fc.constantFrom('.', '..', '.x', '', 'text', '\u00e9t\u00e9', 'a\rb'), fc.string({ maxLength: 14 }));
const structuredInput = fc
  .tuple(
    fc.array(fc.tuple(headerLine, lineEnd), { maxLength: 6 }),
    fc.boolean(),
    fc.array(fc.tuple(bodyLine, lineEnd), { maxLength: 8 }),
  )
  .map(([header, separated, body]) => {
    const text = header.map(([l, e]) => l + e).join('') + (separated ? '\n' : '') + body.map(([l, e]) => l + e).join('');
    return Uint8Array.from(Buffer.from(text, 'utf8'));
  });

const anyInput = fc.oneof(rawInput, structuredInput);

/** Always valid: fields, the empty line, body lines; line ends LF or CRLF at random, the last one optional. */
const noLineBreak = (max: number) => fc.string({ maxLength: max }).map((v) => v.replace(/[\r\n\0]/g, ''));
const wellFormedInput = fc
  .tuple(
    fc.array(fc.tuple(fc.constantFrom('Subject', 'X-Y', 'From ', '.Dot'), noLineBreak(20)), { maxLength: 5 }),
    fc.array(noLineBreak(30), { maxLength: 8 }),
    fc.array(fc.constantFrom('\n', '\r\n'), { minLength: 16, maxLength: 16 }),
    fc.boolean(),
  )
  .map(([fields, body, ends, lastEnd]) => {
    let k = 0;
    const end = (): string => ends[k++ % ends.length] as string;
    let text = fields.map(([n, v]) => `${n}: ${v}${end()}`).join('') + end() + body.map((l) => l + end()).join('');
    if (!lastEnd && body.length > 0 && (body.at(-1) ?? '') !== '') text = text.replace(/\r?\n$/, '');
    return Uint8Array.from(Buffer.from(text, 'utf8'));
  });

/** Limits that fall inside the input, where they can bite at every kind of octet. */
function limitsWithin(length: number): fc.Arbitrary<Limits> {
  const upTo = Math.max(1, length + 1);
  return fc.oneof(
    { weight: 1, arbitrary: fc.constant(STRICT) },
    {
      weight: 4,
      arbitrary: fc
        .record({
          maxLineOctets: fc.integer({ min: 1, max: Math.min(upTo, 20) }),
          maxHeaderOctets: fc.integer({ min: 1, max: upTo }),
          maxMessageOctets: fc.integer({ min: 1, max: upTo }),
        })
        .map((l) => withLimits({ ...l, strictMessageSyntax: true })),
    },
  );
}

const inputAndLimits = anyInput.chain((input) => fc.tuple(fc.constant(input), limitsWithin(input.length)));

const cuts = fc.array(fc.nat({ max: 130 }), { maxLength: 12 });

function normalizedLines(input: Uint8Array): string {
  let text = Buffer.from(input).toString('latin1').replace(/\r\n/g, '\n');
  if (!text.endsWith('\n')) text += '\n';
  return text;
}

function decodeData(output: Buffer): string {
  const text = output.toString('latin1');
  expect(text.endsWith('\r\n')).toBe(true);
  return text
    .slice(0, -2)
    .split('\r\n')
    .map((l) => (l.startsWith('.') ? l.slice(1) : l))
    .map((l) => `${l}\n`)
    .join('');
}

describe('MessageEncoder properties', () => {
  it('agrees with the reference model for any input, limits and chunking', () => {
    fc.assert(
      fc.property(inputAndLimits, cuts, fc.integer({ min: 1, max: 40 }), ([input, limits], at, firstLine) => {
        const expected = referenceEncode(input, { limits, firstLine });
        expect(encodeChunks(splitAt(input, at), { limits, firstLine })).toEqual(expected);
      }),
      RUNS,
    );
  });

  it('agrees with the reference model at every message and header limit (ties between rules)', () => {
    // Errors of different rules at the same octet are rare under random
    // limits; here every limit position is tried for a few inputs.
    fc.assert(
      fc.property(structuredInput.filter((i) => i.length <= 40), cuts, (input, at) => {
        const chunks = splitAt(input, at);
        for (let maxMessageOctets = 1; maxMessageOctets <= input.length; maxMessageOctets++) {
          for (let maxHeaderOctets = 1; maxHeaderOctets <= input.length; maxHeaderOctets++) {
            const limits = withLimits({ maxMessageOctets, maxHeaderOctets, maxLineOctets: 8, strictMessageSyntax: true });
            expect(encodeChunks(chunks, { limits })).toEqual(referenceEncode(input, { limits }));
          }
        }
      }),
      { numRuns: Math.ceil(RUNS.numRuns / 10) },
    );
  }, 600_000);

  it('gives the same octets or the same error whether written whole, in pieces, or octet by octet', () => {
    fc.assert(
      fc.property(inputAndLimits, cuts, ([input, limits], at) => {
        const whole = encodeChunks([input], { limits });
        expect(encodeChunks(splitAt(input, at), { limits })).toEqual(whole);
        expect(encodeChunks(octetByOctet(input), { limits })).toEqual(whole);
      }),
      RUNS,
    );
  });

  it('never outputs a bare CR, a bare LF, or a line that is a lone dot', () => {
    fc.assert(
      fc.property(anyInput, cuts, (input, at) => {
        const result = encodeChunks(splitAt(input, at), { limits: STRICT });
        if (!result.ok) return;
        // As sent after the 354 reply: the line before DATA's first line is
        // complete, so the message's first line counts as a line start too.
        const wire = `\r\n${result.output.toString('latin1')}`;
        expect(wire).not.toMatch(/\r(?!\n)/);
        expect(wire).not.toMatch(/(?<!\r)\n/);
        expect(wire.includes('\r\n.\r\n')).toBe(false);
        expect(wire).not.toMatch(/\r\n\.[^.]/);
      }),
      RUNS,
    );
  });

  it('decodes (undo dot-stuffing, CRLF to LF) back to the LF-normalized input', () => {
    fc.assert(
      fc.property(fc.oneof(anyInput, wellFormedInput), cuts, (input, at) => {
        const result = encodeChunks(splitAt(input, at), { limits: STRICT });
        if (!result.ok) return;
        expect(decodeData(result.output)).toBe(normalizedLines(input));
        expect(result.stats.octets).toBe(input.length);
      }),
      RUNS,
    );
  });

  it('accepts well-formed messages of every line-end mix', () => {
    fc.assert(
      fc.property(wellFormedInput, (input) => {
        const result = encodeChunks([input], { limits: STRICT });
        expect(result.ok).toBe(true);
        if (result.ok) expect(decodeData(result.output)).toBe(normalizedLines(input));
      }),
      RUNS,
    );
  });

  it('throws nothing but SubmissionError, for arbitrary octets and chunkings', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }).chain((input) => fc.tuple(fc.constant(input), limitsWithin(input.length))), cuts, fc.option(fc.nat({ max: 300 }), { nil: undefined }), ([input, limits], at, declaredSize) => {
        const encoder = new MessageEncoder({ limits, declaredSize });
        try {
          for (const chunk of splitAt(input, at)) encoder.write(chunk);
          encoder.end();
        } catch (error) {
          expect(error).toBeInstanceOf(SubmissionError);
          // The encoder stays failed with the same error.
          expect(() => encoder.write(Buffer.from('x'))).toThrow(error as Error);
        }
      }),
      RUNS,
    );
  });
});

describe('MessageEncoder properties, the message as Postfix takes it (the default)', () => {
  /** Header limits that fall inside the input; the message limit stays out of reach (the strict tests cover its ties). */
  const headerLimitWithin = (length: number): fc.Arbitrary<Limits> =>
    fc.oneof(fc.constant(DEFAULT_LIMITS), fc.integer({ min: 1, max: Math.max(1, length + 1) }).map((maxHeaderOctets) => withLimits({ maxHeaderOctets })));

  it('agrees with its reference model for any input, header limit and chunking', () => {
    fc.assert(
      fc.property(
        anyInput.chain((input) => fc.tuple(fc.constant(input), headerLimitWithin(input.length))),
        cuts,
        fc.integer({ min: 1, max: 40 }),
        ([input, limits], at, firstLine) => {
          const expected = referenceEncodeAsPostfix(input, { limits, firstLine });
          expect(encodeChunks(splitAt(input, at), { limits, firstLine })).toEqual(expected);
          expect(encodeChunks(octetByOctet(input), { limits, firstLine })).toEqual(expected);
        },
      ),
      RUNS,
    );
  });

  it('takes every input within the limits, and sends no CR or LF but in CR LF pairs, and no line that is a lone dot', () => {
    fc.assert(
      fc.property(fc.oneof(anyInput, fc.uint8Array({ maxLength: 300 })), cuts, (input, at) => {
        const result = encodeChunks(splitAt(input, at));
        expect(result.ok).toBe(true);
        if (!result.ok) return;
        const wire = `\r\n${result.output.toString('latin1')}`;
        expect(wire).not.toMatch(/\r(?!\n)/);
        expect(wire).not.toMatch(/(?<!\r)\n/);
        expect(wire.includes('\r\n.\r\n')).toBe(false);
        expect(wire).not.toMatch(/\r\n\.[^.]/);
        expect(result.stats.octets).toBe(input.length);
      }),
      RUNS,
    );
  });

  it('decodes back to the input with CRs before an LF dropped and any other CR a space', () => {
    fc.assert(
      fc.property(fc.oneof(anyInput, wellFormedInput), cuts, (input, at) => {
        const result = encodeChunks(splitAt(input, at));
        expect(result.ok).toBe(true);
        if (!result.ok || input.length === 0) return;
        let text = Buffer.from(input).toString('latin1').replace(/\r+\n/g, '\n').replace(/\r/g, ' ');
        if (!text.endsWith('\n')) text += '\n';
        expect(decodeData(result.output)).toBe(text);
      }),
      RUNS,
    );
  });
});
