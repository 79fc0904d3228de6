/** Request frames: layout on the wire, and every way a decoder refuses one. */
import { describe, expect, it } from 'vitest';
import {
  FRAME_VERSION,
  MAX_ENV_ENTRIES,
  MAX_ENV_VALUE_OCTETS,
  MAX_FRAME_OCTETS,
  MAX_PACKET_OCTETS,
  MODE_NATIVE,
  MODE_QMAIL_QUEUE,
  MODE_SENDMAIL,
  REQUEST_FIXED_OCTETS,
  REQUEST_FLAG_ENVELOPE_FD,
} from '../../src/frame/constants.ts';
import type { FrameErrorCode } from '../../src/frame/frame-error.ts';
import { FrameError } from '../../src/frame/frame-error.ts';
import { decodeRequest, encodeRequest, requestLengthOf, requestModeOf, requestPackets } from '../../src/frame/request.ts';

const text = (octets: Uint8Array): string => Buffer.from(octets).toString('utf8');

function codeOf(action: () => unknown): FrameErrorCode | 'no error' {
  try {
    action();
  } catch (error) {
    if (error instanceof FrameError) return error.code;
    throw error;
  }
  return 'no error';
}

describe('encodeRequest', () => {
  it('lays out header, fixed fields, argv and env little-endian', () => {
    const frame = encodeRequest({
      mode: MODE_QMAIL_QUEUE,
      flags: REQUEST_FLAG_ENVELOPE_FD,
      argv: ['qmail-queue', 'x'],
      env: [{ name: 'TCPREMOTEIP', value: '192.0.2.1' }],
    });
    const expected = Buffer.concat([
      Buffer.from('MSUB'),
      Buffer.from([2, 0, 1, 0]),
      Buffer.from([63, 0, 0, 0]),
      Buffer.from([3, 1, 1, 0, 2, 0, 0, 0]),
      Buffer.from([11, 0, 0, 0]),
      Buffer.from('qmail-queue'),
      Buffer.from([1, 0, 0, 0]),
      Buffer.from('x'),
      Buffer.from([11]),
      Buffer.from('TCPREMOTEIP'),
      Buffer.from([9, 0]),
      Buffer.from('192.0.2.1'),
    ]);
    expect(Buffer.from(frame)).toEqual(expected);
    expect(expected.byteLength).toBe(63);
  });

  it('carries an argument of 128 KiB (MAX_ARG_STRLEN) and more than 65535 arguments', () => {
    const long = 'L'.repeat(128 * 1024 - 1);
    const many = Array.from({ length: 70_000 }, (_, i) => `r${i}@example.org`);
    const decoded = decodeRequest(encodeRequest({ mode: MODE_SENDMAIL, argv: ['sendmail', long, ...many] }));
    expect(decoded.argv.length).toBe(70_002);
    expect(text(decoded.argv[1] as Uint8Array)).toBe(long);
    expect(text(decoded.argv[70_001] as Uint8Array)).toBe('r69999@example.org');
  });

  it('round-trips through decodeRequest', () => {
    const decoded = decodeRequest(encodeRequest({ mode: MODE_SENDMAIL, argv: ['sendmail', '-f', 'a@b', '', 'ü'] }));
    expect(decoded.mode).toBe(MODE_SENDMAIL);
    expect(decoded.flags).toBe(0);
    expect(decoded.argv.map(text)).toEqual(['sendmail', '-f', 'a@b', '', 'ü']);
    expect(decoded.env).toEqual([]);
  });

  it('carries arguments as octets, not text', () => {
    const latin1 = Uint8Array.of(0x6d, 0xfc, 0x6c);
    const decoded = decodeRequest(encodeRequest({ mode: MODE_NATIVE, argv: [latin1] }));
    expect(decoded.argv[0]).toEqual(latin1);
  });

  it('accepts a request of exactly the maximum size and refuses one octet more', () => {
    expect(MAX_FRAME_OCTETS).toBe(8 * 1024 * 1024);
    const fill = MAX_FRAME_OCTETS - REQUEST_FIXED_OCTETS - 4;
    expect(encodeRequest({ mode: MODE_NATIVE, argv: ['a'.repeat(fill)] }).byteLength).toBe(MAX_FRAME_OCTETS);
    expect(codeOf(() => encodeRequest({ mode: MODE_NATIVE, argv: ['a'.repeat(fill + 1)] }))).toBe('ERR_FRAME_TOO_LARGE');
  });

  it.each([
    ['an unknown mode', { mode: 4 as 1, argv: [] }, 'ERR_FRAME_MODE'],
    ['an unknown flag', { mode: MODE_NATIVE, flags: 2, argv: [] }, 'ERR_FRAME_RESERVED'],
    ['a NUL in an argument', { mode: MODE_NATIVE, argv: ['a\0b'] }, 'ERR_FRAME_FIELD'],
    ['a bad environment name', { mode: MODE_QMAIL_QUEUE, argv: [], env: [{ name: 'A=B', value: '' }] }, 'ERR_FRAME_FIELD'],
    ['a duplicate environment name', { mode: MODE_QMAIL_QUEUE, argv: [], env: [{ name: 'A', value: '' }, { name: 'A', value: '' }] }, 'ERR_FRAME_FIELD'],
    ['a long environment value', { mode: MODE_QMAIL_QUEUE, argv: [], env: [{ name: 'A', value: 'x'.repeat(MAX_ENV_VALUE_OCTETS + 1) }] }, 'ERR_FRAME_LIMIT'],
    [
      'too many environment entries',
      { mode: MODE_QMAIL_QUEUE, argv: [], env: Array.from({ length: MAX_ENV_ENTRIES + 1 }, (_, i) => ({ name: `V${i}`, value: '' })) },
      'ERR_FRAME_LIMIT',
    ],
  ] as const)('refuses %s', (_name, input, code) => {
    expect(codeOf(() => encodeRequest(input))).toBe(code);
  });
});

describe('decodeRequest', () => {
  const good = (): Buffer => Buffer.from(encodeRequest({ mode: MODE_NATIVE, argv: ['mailsubmit', 'x'] }));

  it('refuses an empty frame as end-of-file', () => {
    expect(codeOf(() => decodeRequest(new Uint8Array(0)))).toBe('ERR_FRAME_EMPTY');
  });

  it('refuses a frame over the maximum before looking at it', () => {
    expect(codeOf(() => decodeRequest(new Uint8Array(MAX_FRAME_OCTETS + 1)))).toBe('ERR_FRAME_TOO_LARGE');
  });

  it('refuses a wrong magic, even in a short prefix', () => {
    expect(codeOf(() => decodeRequest(Buffer.from('XSUB')))).toBe('ERR_FRAME_MAGIC');
    expect(codeOf(() => decodeRequest(Buffer.from('MSX')))).toBe('ERR_FRAME_MAGIC');
    expect(codeOf(() => decodeRequest(Buffer.from('MS')))).toBe('ERR_FRAME_TRUNCATED');
  });

  it('refuses another version before anything after it', () => {
    const frame = good();
    frame.writeUInt16LE(FRAME_VERSION + 1, 4);
    frame[6] = 9;
    expect(codeOf(() => decodeRequest(frame))).toBe('ERR_FRAME_VERSION');
  });

  it('refuses a reply where a request belongs', () => {
    const frame = good();
    frame[6] = 2;
    expect(codeOf(() => decodeRequest(frame))).toBe('ERR_FRAME_KIND');
  });

  it.each([
    ['the reserved header octet', 7, 1, 'ERR_FRAME_RESERVED'],
    ['the mode', 12, 0, 'ERR_FRAME_MODE'],
    ['the flags', 13, 0x80, 'ERR_FRAME_RESERVED'],
    ['the environment count', 14, MAX_ENV_ENTRIES + 1, 'ERR_FRAME_LIMIT'],
    ['the argument count', 16, 200, 'ERR_FRAME_TRUNCATED'],
  ] as const)('refuses a bad value in %s', (_name, offset, value, code) => {
    const frame = good();
    frame[offset] = value;
    expect(codeOf(() => decodeRequest(frame))).toBe(code);
  });

  it('refuses every truncation of a valid frame', () => {
    const frame = Buffer.from(
      encodeRequest({ mode: MODE_QMAIL_QUEUE, argv: ['q', 'r'], env: [{ name: 'TCPREMOTEHOST', value: 'h.example' }] }),
    );
    for (let length = 1; length < frame.byteLength; length++) {
      expect(codeOf(() => decodeRequest(frame.subarray(0, length))), `length ${length}`).toBe('ERR_FRAME_TRUNCATED');
    }
  });

  it('refuses trailing octets', () => {
    expect(codeOf(() => decodeRequest(Buffer.concat([good(), Buffer.from([0])])))).toBe('ERR_FRAME_TRAILING');
  });

  it('refuses a length field that does not match the frame', () => {
    const longer = good();
    longer.writeUInt32LE(longer.byteLength + 1, 8);
    expect(codeOf(() => decodeRequest(longer))).toBe('ERR_FRAME_TRUNCATED');
    const shorter = good();
    shorter.writeUInt32LE(shorter.byteLength - 1, 8);
    expect(codeOf(() => decodeRequest(shorter))).toBe('ERR_FRAME_TRAILING');
  });

  it('refuses a NUL inside an argument and reports where', () => {
    const frame = good();
    const at = REQUEST_FIXED_OCTETS + 4 + 3;
    frame[at] = 0;
    let caught: unknown;
    try {
      decodeRequest(frame);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(FrameError);
    expect((caught as FrameError).offset).toBe(at);
  });

  it('refuses an environment name with a non-ASCII octet', () => {
    const frame = Buffer.from(encodeRequest({ mode: MODE_QMAIL_QUEUE, argv: [], env: [{ name: 'AB', value: '' }] }));
    frame[REQUEST_FIXED_OCTETS + 1] = 0xc1;
    expect(codeOf(() => decodeRequest(frame))).toBe('ERR_FRAME_FIELD');
  });

  it('decodes a copy that does not alias the received buffer', () => {
    const frame = good();
    const decoded = decodeRequest(frame);
    frame.fill(0x41);
    expect(decoded.argv.map(text)).toEqual(['mailsubmit', 'x']);
  });
});

describe('packets', () => {
  const frame = encodeRequest({ mode: MODE_SENDMAIL, argv: ['sendmail', ...Array.from({ length: 10_000 }, (_, i) => `recipient-${i}@example.org`)] });

  it('cut a request into full packets but the last, joined back into the same octets', () => {
    const packets = requestPackets(frame);
    expect(frame.byteLength).toBeGreaterThan(4 * MAX_PACKET_OCTETS);
    expect(packets.length).toBe(Math.ceil(frame.byteLength / MAX_PACKET_OCTETS));
    expect(packets.slice(0, -1).map((p) => p.byteLength)).toEqual(Array(packets.length - 1).fill(MAX_PACKET_OCTETS));
    expect(Buffer.concat(packets)).toEqual(Buffer.from(frame));
  });

  it('leave a request of one packet whole', () => {
    const small = encodeRequest({ mode: MODE_NATIVE, argv: ['mailsubmit'] });
    expect(requestPackets(small)).toEqual([small]);
  });

  it('tell the whole length and the mode from the first packet alone', () => {
    const first = requestPackets(frame)[0] as Uint8Array;
    expect(requestLengthOf(first)).toBe(frame.byteLength);
    expect(requestModeOf(first)).toBe(MODE_SENDMAIL);
  });

  it('tell nothing from what is not a request of this version', () => {
    const other = Buffer.from(frame.subarray(0, 100));
    other.writeUInt16LE(FRAME_VERSION - 1, 4);
    expect(requestLengthOf(other)).toBeNull();
    expect(requestModeOf(other)).toBeNull();
    expect(requestLengthOf(frame.subarray(0, 11))).toBeNull();
    expect(requestModeOf(frame.subarray(0, 12))).toBeNull();
    expect(requestLengthOf(Buffer.from('XSUB\u0002\u0000\u0001\u0000\u0010\u0000\u0000\u0000'))).toBeNull();
  });
});
