/**
 * Properties of the codec over generated input: whatever is encodable comes
 * back unchanged, and no sequence of octets makes a decoder throw anything
 * but a FrameError.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MAX_ENV_ENTRIES,
  MAX_ENV_VALUE_OCTETS,
  MAX_FRAME_OCTETS,
  MAX_REPLY_TEXT_OCTETS,
  MODE_NATIVE,
  MODE_QMAIL_QUEUE,
  MODE_SENDMAIL,
  REQUEST_FLAG_ENVELOPE_FD,
} from '../../src/frame/constants.ts';
import { FrameError } from '../../src/frame/frame-error.ts';
import { decodeReply, encodeReply } from '../../src/frame/reply.ts';
import { sanitizeReplyText } from '../../src/frame/reply-text.ts';
import { decodeRequest, encodeRequest } from '../../src/frame/request.ts';

const noNul = fc.uint8Array({ maxLength: 300 }).map((a) => a.map((b) => (b === 0 ? 1 : b)));
const envName = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/);
const envValue = fc.uint8Array({ maxLength: MAX_ENV_VALUE_OCTETS }).map((a) => a.map((b) => (b === 0 ? 0x20 : b)));

const request = fc.record({
  mode: fc.constantFrom(MODE_NATIVE, MODE_SENDMAIL, MODE_QMAIL_QUEUE),
  flags: fc.constantFrom(0, REQUEST_FLAG_ENVELOPE_FD),
  argv: fc.array(noNul, { maxLength: 40 }),
  env: fc.uniqueArray(fc.record({ name: envName, value: envValue }), { maxLength: MAX_ENV_ENTRIES, selector: (e) => e.name }),
});

const reply = fc.record({
  status: fc.integer({ min: 0, max: 255 }),
  outcome: fc.stringMatching(/^[a-z0-9-]{1,64}$/),
  text: fc.string({ unit: 'binary', maxLength: 1200 }),
});

/** Runs a decoder and lets only FrameError through; anything else fails the property. */
function onlyFrameErrors(decode: (bytes: Uint8Array) => unknown, bytes: Uint8Array): void {
  try {
    decode(bytes);
  } catch (error) {
    if (!(error instanceof FrameError)) throw error;
    expect(typeof error.code).toBe('string');
  }
}

/** Arbitrary octets, often behind a valid-looking header so the body parsers get exercised. */
const frameLike = fc.oneof(
  fc.uint8Array({ maxLength: 600 }),
  fc
    .tuple(fc.constantFrom(1, 2), fc.uint8Array({ maxLength: 600 }))
    .map(([kind, body]) => Uint8Array.from([0x4d, 0x53, 0x55, 0x42, 1, 0, kind, 0, ...body])),
);

describe('frame codec properties', () => {
  it('request: decode(encode(r)) equals r', () => {
    fc.assert(
      fc.property(request, (r) => {
        const decoded = decodeRequest(encodeRequest(r));
        expect(decoded).toEqual({ ...r, argv: r.argv.map((a) => Uint8Array.from(a)) });
      }),
    );
  });

  it('reply: decode(encode(r)) equals r with its text sanitized', () => {
    fc.assert(
      fc.property(reply, (r) => {
        const frame = encodeReply(r);
        expect(frame.byteLength).toBeLessThanOrEqual(MAX_FRAME_OCTETS);
        const decoded = decodeReply(frame);
        expect(decoded).toEqual({ ...r, text: sanitizeReplyText(r.text) });
        expect(Buffer.byteLength(decoded.text)).toBeLessThanOrEqual(MAX_REPLY_TEXT_OCTETS);
        expect(decoded.text).not.toMatch(/[\r\n]/);
      }),
    );
  });

  it('sanitizing is idempotent', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 1200 }), (text) => {
        const once = sanitizeReplyText(text);
        expect(sanitizeReplyText(once)).toBe(once);
      }),
    );
  });

  it('decodeRequest throws nothing but FrameError on arbitrary octets', () => {
    fc.assert(fc.property(frameLike, (bytes) => onlyFrameErrors(decodeRequest, bytes)), { numRuns: 3000 });
  });

  it('decodeReply throws nothing but FrameError on arbitrary octets', () => {
    fc.assert(fc.property(frameLike, (bytes) => onlyFrameErrors(decodeReply, bytes)), { numRuns: 3000 });
  });

  it('a single flipped octet in a valid request is decoded or refused, never anything else', () => {
    fc.assert(
      fc.property(request, fc.nat(), fc.integer({ min: 1, max: 255 }), (r, at, xor) => {
        const frame = encodeRequest(r);
        const i = at % frame.byteLength;
        frame[i] = (frame[i] ?? 0) ^ xor;
        onlyFrameErrors(decodeRequest, frame);
      }),
    );
  });
});
