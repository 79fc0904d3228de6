/** Reply frames: layout, text sanitizing, and every way a decoder refuses one. */
import { describe, expect, it } from 'vitest';
import { MAX_REPLY_OCTETS, MAX_REPLY_TEXT_OCTETS, REPLY_FIXED_OCTETS } from '../../src/frame/constants.ts';
import type { FrameErrorCode } from '../../src/frame/frame-error.ts';
import { FrameError } from '../../src/frame/frame-error.ts';
import { decodeReply, encodeReply } from '../../src/frame/reply.ts';
import { encodeRequest } from '../../src/frame/request.ts';

function codeOf(action: () => unknown): FrameErrorCode | 'no error' {
  try {
    action();
  } catch (error) {
    if (error instanceof FrameError) return error.code;
    throw error;
  }
  return 'no error';
}

/** A reply frame built by hand, to reach states the encoder never produces. */
function rawReply(status: number, outcome: Buffer, text: Buffer): Buffer {
  const fixed = Buffer.from([0x4d, 0x53, 0x55, 0x42, 2, 0, 2, 0, status, outcome.length, 0, 0]);
  fixed.writeUInt16LE(text.length, 10);
  return Buffer.concat([fixed, outcome, text]);
}

describe('encodeReply', () => {
  it('lays out header, status, lengths, outcome and text', () => {
    const frame = encodeReply({ status: 65, outcome: 'sender-syntax', text: 'line 1: bad' });
    expect(Buffer.from(frame)).toEqual(rawReply(65, Buffer.from('sender-syntax'), Buffer.from('line 1: bad')));
  });

  it('round-trips', () => {
    const reply = { status: 75, outcome: 'mta-tempfail', text: 'the MTA said: 451 4.3.0 Try again — später' };
    expect(decodeReply(encodeReply(reply))).toEqual(reply);
  });

  it('turns line breaks and other controls into spaces and trims the ends', () => {
    const frame = encodeReply({ status: 69, outcome: 'message-refused', text: '554 5.7.1 no\r\n554 5.7.1 really\tnot\u009b2J\x1b[0m\r\n' });
    expect(decodeReply(frame).text).toBe('554 5.7.1 no  554 5.7.1 really not 2J [0m');
  });

  it('shows a lone surrogate as an escape instead of sending it', () => {
    expect(decodeReply(encodeReply({ status: 75, outcome: 'internal', text: 'a\ud800b' })).text).toBe('a\\ud800b');
  });

  it('shows bidi and other format characters as escapes, so a terminal never reorders the line', () => {
    const text = 'sender not permitted: user\u202egro.elpmaxe@evil.example \u2066x\u2069 \u200b\ufeff\u2028';
    const decoded = decodeReply(encodeReply({ status: 77, outcome: 'attribute-not-permitted', text })).text;
    expect(decoded).toBe('sender not permitted: user\\u202egro.elpmaxe@evil.example \\u2066x\\u2069 \\u200b\\ufeff\\u2028');
    expect(decoded).not.toMatch(/[\p{Cf}\p{Zl}\p{Zp}]/u);
  });

  it('cuts a long text at a character boundary within the cap', () => {
    const text = 'é'.repeat(MAX_REPLY_TEXT_OCTETS);
    const frame = encodeReply({ status: 75, outcome: 'internal', text });
    const decoded = decodeReply(frame).text;
    expect(Buffer.byteLength(decoded)).toBeLessThanOrEqual(MAX_REPLY_TEXT_OCTETS);
    expect(decoded.endsWith('é...')).toBe(true);
    expect(frame.byteLength).toBeLessThanOrEqual(MAX_REPLY_OCTETS);
  });

  it('keeps a text of exactly the cap unchanged', () => {
    const text = 'x'.repeat(MAX_REPLY_TEXT_OCTETS);
    expect(decodeReply(encodeReply({ status: 0, outcome: 'ok', text })).text).toBe(text);
  });

  it.each([
    ['a status over 255', { status: 256, outcome: 'ok', text: '' }, 'ERR_FRAME_FIELD'],
    ['a fractional status', { status: 1.5, outcome: 'ok', text: '' }, 'ERR_FRAME_FIELD'],
    ['an empty outcome', { status: 0, outcome: '', text: '' }, 'ERR_FRAME_FIELD'],
    ['an outcome with capitals', { status: 0, outcome: 'OK', text: '' }, 'ERR_FRAME_FIELD'],
    ['a long outcome', { status: 0, outcome: 'a'.repeat(65), text: '' }, 'ERR_FRAME_LIMIT'],
  ] as const)('refuses %s', (_name, reply, code) => {
    expect(codeOf(() => encodeReply(reply))).toBe(code);
  });
});

describe('decodeReply', () => {
  it('refuses a request where a reply belongs', () => {
    expect(codeOf(() => decodeReply(encodeRequest({ mode: 1, argv: [] })))).toBe('ERR_FRAME_KIND');
  });

  it('refuses an unknown kind', () => {
    const frame = rawReply(0, Buffer.from('ok'), Buffer.alloc(0));
    frame[6] = 7;
    expect(codeOf(() => decodeReply(frame))).toBe('ERR_FRAME_KIND');
  });

  it.each([
    ['a CR', Buffer.from('a\rb')],
    ['an LF', Buffer.from('a\nb')],
    ['a NUL', Buffer.from('a\0b')],
    ['a DEL', Buffer.from('a\x7fb')],
    ['a C1 control', Buffer.from([0x61, 0xc2, 0x9b, 0x62])],
    ['invalid UTF-8', Buffer.from([0x61, 0xff, 0x62])],
  ])('refuses text with %s', (_name, text) => {
    expect(codeOf(() => decodeReply(rawReply(75, Buffer.from('internal'), text)))).toBe('ERR_FRAME_FIELD');
  });

  it('refuses a text length over the cap', () => {
    const frame = rawReply(75, Buffer.from('internal'), Buffer.alloc(MAX_REPLY_TEXT_OCTETS + 1, 0x61));
    expect(codeOf(() => decodeReply(frame))).toBe('ERR_FRAME_LIMIT');
  });

  it('refuses an empty or malformed outcome', () => {
    expect(codeOf(() => decodeReply(rawReply(0, Buffer.alloc(0), Buffer.alloc(0))))).toBe('ERR_FRAME_FIELD');
    expect(codeOf(() => decodeReply(rawReply(0, Buffer.from('o k'), Buffer.alloc(0))))).toBe('ERR_FRAME_FIELD');
  });

  it('refuses every truncation and any trailing octet', () => {
    const frame = Buffer.from(encodeReply({ status: 65, outcome: 'size-mismatch', text: 'expected 10, read 9' }));
    for (let length = 1; length < frame.byteLength; length++) {
      expect(codeOf(() => decodeReply(frame.subarray(0, length))), `length ${length}`).toBe('ERR_FRAME_TRUNCATED');
    }
    expect(codeOf(() => decodeReply(Buffer.concat([frame, Buffer.from('x')])))).toBe('ERR_FRAME_TRAILING');
  });

  it('reads the fixed part at its documented size', () => {
    const frame = encodeReply({ status: 0, outcome: 'ok', text: '' });
    expect(frame.byteLength).toBe(REPLY_FIXED_OCTETS + 2);
  });
});
