/**
 * The MessageEncoder rule by rule: exact output octets for each kind of line
 * end, dot-stuffing and a missing final line end; stats; and every refusal
 * with its outcome and words. Each case runs whole and octet by octet, since
 * the chunk boundaries must not matter.
 */

import { describe, expect, it } from 'vitest';
import { SubmissionError } from '../../src/errors.ts';
import { DEFAULT_LIMITS, withLimits } from '../../src/limits.ts';
import { MessageEncoder, type MessageEncoderOptions } from '../../src/message/message-encoder.ts';
import { encodeChunks, octetByOctet, splitAt } from './encode-chunks.ts';

/** Encodes whole and octet by octet; both must agree; returns the output as latin1 text. */
function encode(input: string | Buffer, options: MessageEncoderOptions = {}): string {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  const whole = encodeChunks([bytes], options);
  expect(encodeChunks(octetByOctet(bytes), options)).toEqual(whole);
  if (!whole.ok) throw new Error(`unexpected refusal: ${whole.message}`);
  return whole.output.toString('latin1');
}

/** strictMessageSyntax on, over the given limits. */
function strict(options: MessageEncoderOptions = {}): MessageEncoderOptions {
  return { ...options, limits: { ...(options.limits ?? DEFAULT_LIMITS), strictMessageSyntax: true } };
}

/** Expects a refusal with strictMessageSyntax, whole and octet by octet alike. */
function refuse(input: string | Buffer, outcome: string, message: string, strictOptions: MessageEncoderOptions = {}): void {
  const options = strict(strictOptions);
  const bytes = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  const expected = { ok: false, outcome, message };
  expect(encodeChunks([bytes], options)).toEqual(expected);
  expect(encodeChunks(octetByOctet(bytes), options)).toEqual(expected);
}

function stats(input: string | Buffer, options: MessageEncoderOptions = {}) {
  const encoder = new MessageEncoder(options);
  encoder.write(typeof input === 'string' ? Buffer.from(input, 'latin1') : input);
  encoder.end();
  return encoder.stats;
}

const NOT_A_HEADER = 'header line is neither a field ("name: value") nor a continuation (starting with space or tab)';

describe('MessageEncoder output', () => {
  it('turns LF line ends into CRLF', () => {
    expect(encode('Subject: x\n\nbody\nmore\n')).toBe('Subject: x\r\n\r\nbody\r\nmore\r\n');
  });

  it('leaves CRLF line ends as they are', () => {
    expect(encode('Subject: x\r\n\r\nbody\r\n')).toBe('Subject: x\r\n\r\nbody\r\n');
  });

  it('takes mixed LF and CRLF line ends', () => {
    expect(encode('A: 1\r\nB: 2\n\r\nbody\nline\r\n\n')).toBe('A: 1\r\nB: 2\r\n\r\nbody\r\nline\r\n\r\n');
  });

  it('dot-stuffs every line that starts with a dot, in header and body', () => {
    expect(encode('.X: y\n\n.\n..\n.text\na.b\n. \n')).toBe('..X: y\r\n\r\n..\r\n...\r\n..text\r\na.b\r\n.. \r\n');
  });

  it('adds CRLF after a last line without a line end', () => {
    expect(encode('Subject: x\n\nno end')).toBe('Subject: x\r\n\r\nno end\r\n');
    expect(encode('Subject: x\n\n.')).toBe('Subject: x\r\n\r\n..\r\n');
    expect(encode('Subject: no body')).toBe('Subject: no body\r\n');
  });

  it('does not add `.` CRLF at the end', () => {
    expect(encode('A: b\n\n.\n').endsWith('..\r\n')).toBe(true);
  });

  it('takes a message that is only a body (starts with the empty line)', () => {
    expect(encode('\nbody only\n')).toBe('\r\nbody only\r\n');
    expect(encode('\r\n')).toBe('\r\n');
  });

  it('takes a header section without a body', () => {
    expect(encode('A: 1\nB: 2\n')).toBe('A: 1\r\nB: 2\r\n');
  });

  it('takes continuation lines with space or tab', () => {
    expect(encode('Subject: a\n b\n\tc\n\nx\n')).toBe('Subject: a\r\n b\r\n\tc\r\n\r\nx\r\n');
  });

  it('takes the obsolete `Subject :` form (spaces or tabs before the colon)', () => {
    expect(encode('Subject : x\nX-Y\t \t: z\n\n')).toBe('Subject : x\r\nX-Y\t \t: z\r\n\r\n');
  });

  it('takes any printable US-ASCII field name except colon', () => {
    expect(encode("!#$%&'*+-/=?^_`{|}~.0Az: v\n")).toBe("!#$%&'*+-/=?^_`{|}~.0Az: v\r\n");
  });

  it('passes 8-bit octets through unchanged, in values and body', () => {
    const input = Buffer.concat([Buffer.from('Subject: '), Buffer.from([0xc3, 0xa9]), Buffer.from('\n\n'), Buffer.from([0xff, 0x80]), Buffer.from('\n')]);
    expect(Buffer.from(encode(input), 'latin1')).toEqual(
      Buffer.concat([Buffer.from('Subject: '), Buffer.from([0xc3, 0xa9]), Buffer.from('\r\n\r\n'), Buffer.from([0xff, 0x80]), Buffer.from('\r\n')]),
    );
  });

  it('allows any octet but NUL and bare CR in the body, and lines that look like headers or are blank', () => {
    expect(encode('A: b\n\nno colon here\n\n \x01\x7f\t\n')).toBe('A: b\r\n\r\nno colon here\r\n\r\n \x01\x7f\t\r\n');
  });

  it('hands back the input itself when a chunk needs no change', () => {
    const encoder = new MessageEncoder();
    const chunk = Buffer.from('Subject: x\r\n\r\nbody\r\nmore\r\n');
    const out = encoder.write(chunk);
    expect(out.buffer).toBe(chunk.buffer);
    expect(out.byteOffset).toBe(chunk.byteOffset);
    expect(out.length).toBe(chunk.length);
  });

  it('holds back a CR at the end of a chunk until the next one shows it is a line end', () => {
    const encoder = new MessageEncoder();
    expect(encoder.write(Buffer.from('A: b\r')).toString()).toBe('A: b');
    expect(encoder.write(Buffer.from('\n\r')).toString()).toBe('\r\n');
    expect(encoder.write(Buffer.from('\nx')).toString()).toBe('\r\nx');
    expect(encoder.end().toString()).toBe('\r\n');
  });

  it('keeps earlier outputs intact while later chunks and other encoders write', () => {
    const a = new MessageEncoder();
    const b = new MessageEncoder();
    const outputs: [Buffer, string][] = [];
    for (let i = 0; i < 2000; i++) {
      const line = `${i % 7 === 0 ? '.' : ''}line ${i} ${'x'.repeat(i % 90)}`;
      outputs.push([a.write(Buffer.from(`${i === 0 ? 'A: b\n\n' : ''}${line}\n`)), `${i === 0 ? 'A: b\r\n\r\n' : ''}${line.startsWith('.') ? '.' : ''}${line}\r\n`]);
      outputs.push([b.write(Buffer.from(`${i === 0 ? '\n' : ''}${line}\n`)), `${i === 0 ? '\r\n' : ''}${line.startsWith('.') ? '.' : ''}${line}\r\n`]);
    }
    for (const [out, expected] of outputs) expect(out.toString('latin1')).toBe(expected);
  });
});

describe('MessageEncoder stats', () => {
  it('counts octets as written, lines, the header section and 7bit', () => {
    expect(stats('Subject: x\nTo: y\n\nbody\nend')).toEqual({ octets: 26, lines: 5, headerOctets: 17, headerLines: 2, eightBit: false });
    expect(stats('Subject: x\r\n\r\nbody\r\n')).toEqual({ octets: 20, lines: 3, headerOctets: 12, headerLines: 1, eightBit: false });
  });

  it('counts a continuation as a header line, and a last header line without line end', () => {
    expect(stats('A: b\n c')).toEqual({ octets: 7, lines: 2, headerOctets: 7, headerLines: 2, eightBit: false });
  });

  it('has no header section for a body-only message', () => {
    expect(stats('\nbody\n')).toEqual({ octets: 6, lines: 2, headerOctets: 0, headerLines: 0, eightBit: false });
  });

  it('says 8bit for any octet at or above 0x80, in any chunk', () => {
    expect(stats(Buffer.from([0x41, 0x3a, 0x20, 0x80, 0x0a])).eightBit).toBe(true);
    const encoder = new MessageEncoder();
    encoder.write(Buffer.from('A: b\n\n'));
    expect(encoder.stats.eightBit).toBe(false);
    encoder.write(Buffer.from([0x61, 0xff, 0x0a]));
    encoder.write(Buffer.from('ascii again\n'));
    encoder.end();
    expect(encoder.stats.eightBit).toBe(true);
  });
});

describe('MessageEncoder refusals', () => {
  it('refuses an empty message', () => {
    refuse('', 'message-syntax', 'no message after the envelope block');
  });

  it('refuses NUL in the header section and in the body, naming the line', () => {
    refuse('Sub\0ject: x\n', 'message-syntax', 'line 1: NUL octet in the message');
    refuse('A: b\n\nok\nbad \0\n', 'message-syntax', 'line 4: NUL octet in the message');
    refuse('A: b\n\nbody\0', 'message-syntax', 'line 13: NUL octet in the message', { firstLine: 11 });
  });

  it('refuses a bare CR anywhere, also at the very end and across chunks', () => {
    const bare = 'bare CR in the message (a CR must be followed by LF)';
    refuse('A: b\rc\n', 'message-syntax', `line 1: ${bare}`);
    refuse('A: b\n\nx\ry\n', 'message-syntax', `line 3: ${bare}`);
    refuse('A: b\n\nx\r\r\n', 'message-syntax', `line 3: ${bare}`);
    refuse('A: b\n\nend\r', 'message-syntax', `line 3: ${bare}`);
    refuse('\r\r\n', 'message-syntax', `line 1: ${bare}`);
    const encoder = new MessageEncoder(strict());
    encoder.write(Buffer.from('A: b\n\nx\r'));
    expect(() => encoder.write(Buffer.from('y\n'))).toThrow(`line 3: ${bare}`);
  });

  it('refuses a header line that is neither a field nor a continuation', () => {
    refuse('From someone Tue Mar 12\nA: b\n', 'message-syntax', `line 1: ${NOT_A_HEADER}`);
    refuse('A: b\nno colon at all\n\nbody\n', 'message-syntax', `line 2: ${NOT_A_HEADER}`);
    refuse('A: b\nNoColon\n', 'message-syntax', `line 2: ${NOT_A_HEADER}`);
    refuse('A: b\nNoColon', 'message-syntax', `line 2: ${NOT_A_HEADER}`);
    refuse('A: b\nName x: y\n', 'message-syntax', `line 2: ${NOT_A_HEADER}`);
  });

  it('refuses an empty field name, a control octet, DEL or 8-bit in a name', () => {
    refuse(': value\n', 'message-syntax', `line 5: ${NOT_A_HEADER}`, { firstLine: 5 });
    refuse('A\x01B: v\n', 'message-syntax', `line 1: ${NOT_A_HEADER}`);
    refuse('A\x7fB: v\n', 'message-syntax', `line 1: ${NOT_A_HEADER}`);
    refuse(Buffer.from([0x53, 0xc3, 0xa9, 0x3a, 0x20, 0x76, 0x0a]), 'message-syntax', `line 1: ${NOT_A_HEADER}`);
  });

  it('refuses a continuation as the very first line', () => {
    refuse(' folded\nA: b\n', 'message-syntax', 'line 4: header section starts with a continuation line (space or tab) instead of a field', { firstLine: 4 });
    refuse('\tfolded\n', 'message-syntax', 'line 1: header section starts with a continuation line (space or tab) instead of a field');
  });

  it('refuses a line longer than the limit, not counting the line end', () => {
    const limit = 'line longer than 998 octets (not counting the line end)';
    expect(encode(`A: b\n\n${'x'.repeat(998)}\n`)).toBe(`A: b\r\n\r\n${'x'.repeat(998)}\r\n`);
    expect(encode(`A: b\r\n\r\n${'x'.repeat(998)}\r\n`)).toBe(`A: b\r\n\r\n${'x'.repeat(998)}\r\n`);
    refuse(`A: b\n\n${'x'.repeat(999)}\n`, 'over-limit', `line 3: ${limit}`);
    refuse(`A: b\n\n${'x'.repeat(999)}`, 'over-limit', `line 3: ${limit}`);
    refuse(`A: ${'v'.repeat(996)}\n`, 'over-limit', `line 1: ${limit}`);
    refuse('A: b\n\n123456\n', 'over-limit', 'line 3: line longer than 5 octets (not counting the line end)', { limits: withLimits({ maxLineOctets: 5 }) });
  });

  it('refuses a message over the size limit as soon as it is exceeded', () => {
    const limits = withLimits({ maxMessageOctets: 10 });
    expect(encode('A: b\n\n1234', { limits })).toBe('A: b\r\n\r\n1234\r\n');
    refuse('A: b\n\n12345', 'over-limit', 'line 3: message larger than 10 octets', { limits });
    const encoder = new MessageEncoder({ limits });
    encoder.write(Buffer.from('A: b\n\n'));
    expect(() => encoder.write(Buffer.from('12345'))).toThrow('line 3: message larger than 10 octets');
  });

  it('refuses a header section over its limit, counting line ends but not the empty line', () => {
    const limits = withLimits({ maxHeaderOctets: 10 });
    expect(encode('A: 12345\n\nlong body line\n', { limits })).toBe('A: 12345\r\n\r\nlong body line\r\n');
    expect(encode('A: 1234\r\n\r\n', { limits })).toBe('A: 1234\r\n\r\n');
    expect(encode('A: 123456\n\nx\n', { limits })).toBe('A: 123456\r\n\r\nx\r\n');
    refuse('A: 1234567\n\n', 'over-limit', 'line 1: header section larger than 10 octets', { limits });
    refuse('A: 1\nB: 234\n', 'over-limit', 'line 2: header section larger than 10 octets', { limits });
  });

  it('checks the size attribute against the octets as written', () => {
    expect(encode('A: b\n\nx\n', { declaredSize: 8 })).toBe('A: b\r\n\r\nx\r\n');
    expect(encode('A: b\r\n\r\nx\r\n', { declaredSize: 11 })).toBe('A: b\r\n\r\nx\r\n');
    refuse('A: b\n\nx\n', 'size-mismatch', 'attribute "size": declared 9 octets, but the message has 8 octets', { declaredSize: 9 });
    refuse('A: b\n\nx\n', 'size-mismatch', 'attribute "size": declared 7 octets, but the message has 8 octets', { declaredSize: 7 });
  });

  it('reports the earliest problem when a line has several', () => {
    refuse('A: b\n\nx\ry\0\n', 'message-syntax', 'line 3: bare CR in the message (a CR must be followed by LF)');
    refuse('A: b\n\nx\0y\rz\n', 'message-syntax', 'line 3: NUL octet in the message');
    refuse('No colon\0\n', 'message-syntax', `line 1: ${NOT_A_HEADER}`);
  });
});

describe('MessageEncoder, the message as Postfix takes it (strictMessageSyntax off, the default)', () => {
  it('takes lines of any length, in the header section and the body', () => {
    for (const length of [999, 2048, 5000, 100_000]) {
      const long = 'x'.repeat(length);
      expect(encode(`X-Long: ${long}\nA: b\n\n${long}\n.${long}\n`)).toBe(`X-Long: ${long}\r\nA: b\r\n\r\n${long}\r\n..${long}\r\n`);
    }
    expect(stats(`X-Long: ${'h'.repeat(5000)}\n\nbody\n`)).toMatchObject({ headerLines: 1, headerOctets: 5009 });
  });

  it('passes NUL as written', () => {
    expect(encode('Subject: a\0b\n\nx\0\0y\n\0')).toBe('Subject: a\0b\r\n\r\nx\0\0y\r\n\0\r\n');
  });

  it('takes several CRs before an LF as one line end, as Postfix\'s smtpd and sendmail do', () => {
    expect(encode('A: b\r\r\n\r\r\r\nline\r\r\nnext\r\n')).toBe('A: b\r\n\r\nline\r\nnext\r\n');
    expect(stats('A: b\r\r\n\r\r\nbody\n')).toMatchObject({ headerLines: 1, headerOctets: 7, lines: 3 });
  });

  it('sends any other CR as a space, as Postfix\'s cleanup queues it: mid-line, at the very end, across chunks', () => {
    expect(encode('Subject: a\rb\n\nx\ry\r\rz\n')).toBe('Subject: a b\r\n\r\nx y  z\r\n');
    expect(encode('A: b\n\nlast\r')).toBe('A: b\r\n\r\nlast \r\n');
    expect(encode('A: b\n\n\r.\r\n\r\r.\r\r\n')).toBe('A: b\r\n\r\n .\r\n  .\r\n');
    const encoder = new MessageEncoder();
    const out = [encoder.write(Buffer.from('A: b\n\nx\r\r')), encoder.write(Buffer.from('\r')), encoder.write(Buffer.from('y\r')), encoder.write(Buffer.from('\r\n')), encoder.end()];
    expect(Buffer.concat(out).toString('latin1')).toBe('A: b\r\n\r\nx   y\r\n');
  });

  it('ends the header section at the first line that is neither a field nor a continuation, which is the first body line', () => {
    expect(encode('From someone Tue Mar 12\nA: b\n\nbody\n')).toBe('From someone Tue Mar 12\r\nA: b\r\n\r\nbody\r\n');
    expect(stats('From someone Tue Mar 12\nA: b\n\nbody\n')).toMatchObject({ headerLines: 0, headerOctets: 0, lines: 4 });
    expect(stats('A: b\n c\nno blank line\nD: e\n')).toMatchObject({ headerLines: 2, headerOctets: 8 });
    expect(stats(' continued first\nA: b\n')).toMatchObject({ headerLines: 0 });
    expect(stats('just a body\n')).toMatchObject({ headerLines: 0 });
    expect(stats('Subject\nA: b\n')).toMatchObject({ headerLines: 0 });
    // A stray CR counts as the space it becomes: here a continuation.
    expect(stats('A: b\n\rc\n\nbody\n')).toMatchObject({ headerLines: 2 });
  });

  it('takes an empty message', () => {
    expect(encode('')).toBe('');
    expect(stats('')).toMatchObject({ octets: 0, lines: 0, headerLines: 0 });
  });

  it('takes a header section of any size as written, max_header_size or not (Postfix\'s cleanup cuts a field over its own limit)', () => {
    const limits = withLimits({ maxHeaderOctets: 10 });
    expect(encode('Subject: 0123456789\nA: b\n\nbody\n', { limits })).toBe('Subject: 0123456789\r\nA: b\r\n\r\nbody\r\n');
    expect(stats('Subject: 0123456789\nA: b\n\nbody\n', { limits })).toMatchObject({ headerLines: 2, headerOctets: 25 });
    const field = `X-Long: ${'h'.repeat(150_000)}\n`;
    const many = Array.from({ length: 3000 }, (_, i) => `X-F${i}: ${'v'.repeat(70)}\n`).join('');
    for (const header of [field, many]) {
      const message = `${header}X-After: 1\n\nbody\n`;
      const bytes = Buffer.from(message, 'latin1');
      const whole = encodeChunks([bytes]);
      expect(whole).toMatchObject({ ok: true, stats: { headerOctets: header.length + 11, headerLines: header.split('\n').length } });
      if (whole.ok) expect(whole.output.toString('latin1')).toBe(message.replace(/\n/g, '\r\n'));
      // Chunked anywhere, the same.
      expect(encodeChunks(splitAt(bytes, [1, 4096, 102_399, 102_400, 102_401, 150_003]))).toEqual(whole);
    }
  });

  it('takes a line for a field only when its colon is in the first 2048 octets, as Postfix\'s cleanup', () => {
    for (const [length, headerLines] of [[2046, 3], [2047, 3], [2048, 1], [2500, 1]] as const) {
      const message = `A: b\n${'N'.repeat(length)}: v\nX-After: 1\n\nbody\n`;
      expect(stats(message)).toMatchObject({ headerLines });
      const bytes = Buffer.from(message, 'latin1');
      expect(encodeChunks(splitAt(bytes, [1000, 2000, 2050, 2053, 2054, 2055]))).toEqual(encodeChunks([bytes]));
    }
  });

  it('still refuses a message over its limit', () => {
    expect(encodeChunks([Buffer.from('A: b\n\n12345')], { limits: withLimits({ maxMessageOctets: 8 }) })).toMatchObject({ ok: false, message: 'line 3: message larger than 8 octets' });
  });
});

describe('MessageEncoder misuse', () => {
  it('keeps failing with the same error after a refusal', () => {
    const encoder = new MessageEncoder(strict());
    let first: unknown;
    try {
      encoder.write(Buffer.from('\0'));
    } catch (error) {
      first = error;
    }
    expect(first).toBeInstanceOf(SubmissionError);
    expect(() => encoder.write(Buffer.from('A: b\n'))).toThrow(first as Error);
    expect(() => encoder.end()).toThrow(first as Error);
  });

  it('refuses write after end as an internal (temporary) error', () => {
    const encoder = new MessageEncoder();
    encoder.write(Buffer.from('A: b\n'));
    encoder.end();
    try {
      encoder.write(Buffer.from('more'));
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(SubmissionError);
      expect((error as SubmissionError).outcome).toBe('internal');
    }
  });

  it('takes a plain Uint8Array and refuses anything else as internal', () => {
    const encoder = new MessageEncoder();
    expect(encoder.write(new Uint8Array(Buffer.from('A: b\n')) as unknown as Buffer).toString()).toBe('A: b\r\n');
    expect(() => new MessageEncoder().write('text' as unknown as Buffer)).toThrow(SubmissionError);
  });

  it('returns an empty buffer for an empty chunk', () => {
    const encoder = new MessageEncoder();
    expect(encoder.write(Buffer.alloc(0)).length).toBe(0);
    expect(encoder.stats.octets).toBe(0);
  });
});
