/**
 * A deliberately naive model of the message rules, for property tests: it
 * takes the whole input at once and walks it one octet at a time, so its
 * behaviour is easy to read off the contract. The streaming encoder must
 * agree with it on every input and every chunking (same octets, or the same
 * error). It shares nothing with the encoder but the status table.
 *
 * Error order, as the encoder documents it: the earliest offending octet
 * wins; at the same octet: message limit, NUL, bare CR, header section size,
 * line length, header syntax. End-of-input checks come last: empty message,
 * size mismatch, an unfinished header line.
 */

import { DEFAULT_LIMITS, type Limits } from '../../src/limits.ts';
import type { Outcome } from '../../src/status/outcomes.ts';

export interface ModelOptions {
  limits?: Limits;
  firstLine?: number;
  declaredSize?: number;
}

export interface ModelStats {
  octets: number;
  lines: number;
  headerOctets: number;
  headerLines: number;
  eightBit: boolean;
}

export type ModelResult =
  | { ok: true; output: Buffer; stats: ModelStats }
  | { ok: false; outcome: Outcome; message: string };

const LF = 10;
const CR = 13;

type NameState = 'start' | 'name' | 'space' | 'value';

export function referenceEncode(input: Uint8Array, options: ModelOptions = {}): ModelResult {
  const limits = options.limits ?? DEFAULT_LIMITS;
  const firstLine = options.firstLine ?? 1;
  const out: number[] = [];
  let line = 0;
  let content = 0;
  let inHeader = true;
  let state: NameState = 'start';
  let headerOctets = 0;
  let headerLines = 0;
  const at = (): string => `line ${firstLine + line}: `;
  const fail = (outcome: Outcome, text: string): ModelResult => ({ ok: false, outcome, message: text });
  const headerSyntax = (): ModelResult =>
    fail('message-syntax', `${at()}header line is neither a field ("name: value") nor a continuation (starting with space or tab)`);

  for (let i = 0; i < input.length; i++) {
    const b = input[i] as number;
    const lineEndCr = b === CR && input[i + 1] === LF;
    const isContent = b !== LF && !lineEndCr;
    const headerByte = inHeader && (isContent || content > 0);

    if (i === limits.maxMessageOctets) return fail('over-limit', `${at()}message larger than ${limits.maxMessageOctets} octets`);
    if (b === 0) return fail('message-syntax', `${at()}NUL octet in the message`);
    if (b === CR && !lineEndCr) return fail('message-syntax', `${at()}bare CR in the message (a CR must be followed by LF)`);
    if (headerByte && headerOctets + 1 > limits.maxHeaderOctets) {
      return fail('over-limit', `${at()}header section larger than ${limits.maxHeaderOctets} octets`);
    }
    if (isContent && content + 1 > limits.maxLineOctets) {
      return fail('over-limit', `${at()}line longer than ${limits.maxLineOctets} octets (not counting the line end)`);
    }
    if (inHeader && isContent) {
      const printable = b > 0x20 && b < 0x7f;
      const blank = b === 0x20 || b === 0x09;
      if (state === 'start') {
        if (blank && line === 0) {
          return fail('message-syntax', `${at()}header section starts with a continuation line (space or tab) instead of a field`);
        }
        if (blank) state = 'value';
        else if (printable && b !== 0x3a) state = 'name';
        else return headerSyntax();
      } else if (state === 'name') {
        if (b === 0x3a) state = 'value';
        else if (blank) state = 'space';
        else if (!printable) return headerSyntax();
      } else if (state === 'space') {
        if (b === 0x3a) state = 'value';
        else if (!blank) return headerSyntax();
      }
    }
    if (inHeader && b === LF && content > 0 && state !== 'value') return headerSyntax();

    if (headerByte) headerOctets++;
    if (isContent) {
      if (content === 0 && b === 0x2e) out.push(0x2e);
      out.push(b);
      content++;
    } else if (b === LF) {
      out.push(CR, LF);
      if (inHeader) {
        if (content === 0) inHeader = false;
        else {
          headerLines++;
          state = 'start';
        }
      }
      line++;
      content = 0;
    }
  }

  if (input.length === 0) return fail('message-syntax', 'no message after the envelope block');
  if (options.declaredSize !== undefined && options.declaredSize !== input.length) {
    return fail('size-mismatch', `attribute "size": declared ${options.declaredSize} octets, but the message has ${input.length} octets`);
  }
  if (content > 0) {
    if (inHeader) {
      if (state !== 'value') return headerSyntax();
      headerLines++;
    }
    out.push(CR, LF);
    line++;
  }
  return {
    ok: true,
    output: Buffer.from(out),
    stats: {
      octets: input.length,
      lines: line,
      headerOctets,
      headerLines,
      eightBit: input.some((b) => b >= 0x80),
    },
  };
}

/**
 * The message as Postfix takes it (strictMessageSyntax off), as naively:
 * split at LF; the CRs before an LF are the line end, any other CR is a
 * space; a line that starts with `.` gets one more; the header section is
 * the lines up to the first empty line or the first line that is neither a
 * field nor a continuation (looked at in its first 2048 octets). No header
 * limit; only the size attribute is checked (the caller keeps the message
 * limit out of reach).
 */
export function referenceEncodeAsPostfix(input: Uint8Array, options: ModelOptions = {}): ModelResult {
  const out: number[] = [];
  let line = 0;
  let inHeader = true;
  let headerOctets = 0;
  let headerLines = 0;
  let start = 0;
  while (start < input.length) {
    const lfAt = input.indexOf(LF, start);
    const hasLf = lfAt !== -1;
    const end = hasLf ? lfAt : input.length;
    let contentEnd = end;
    if (hasLf) while (contentEnd > start && input[contentEnd - 1] === CR) contentEnd--;
    const content = Array.from(input.subarray(start, contentEnd), (b) => (b === CR ? 0x20 : b));
    const endOctets = hasLf ? end - contentEnd + 1 : 0;
    if (inHeader) {
      if (content.length === 0) inHeader = false;
      else {
        // Postfix looks for the colon in the line's first 2048 octets only.
        const kind = headerKind(content.slice(0, 2048), headerLines === 0);
        if (kind !== 'yes') inHeader = false;
        else {
          headerOctets += content.length + endOctets;
          headerLines++;
        }
      }
    }
    if (content[0] === 0x2e) out.push(0x2e);
    out.push(...content);
    if (hasLf || content.length > 0) {
      out.push(CR, LF);
      line++;
    }
    start = end + 1;
  }
  if (options.declaredSize !== undefined && options.declaredSize !== input.length) {
    return { ok: false, outcome: 'size-mismatch', message: `attribute "size": declared ${options.declaredSize} octets, but the message has ${input.length} octets` };
  }
  return {
    ok: true,
    output: Buffer.from(out),
    stats: { octets: input.length, lines: line, headerOctets, headerLines, eightBit: input.some((b) => b >= 0x80) },
  };
}

/** Postfix's is_header on a line's first octets: a field or continuation, not one, or still open (in the name). */
function headerKind(octets: readonly number[], firstLine: boolean): 'yes' | 'no' | 'open' {
  let state: NameState = 'start';
  for (const b of octets) {
    const blank = b === 0x20 || b === 0x09;
    if (state === 'start') {
      if (blank) return firstLine ? 'no' : 'yes';
      if (b > 0x20 && b < 0x7f && b !== 0x3a) state = 'name';
      else return 'no';
    } else if (state === 'name') {
      if (b === 0x3a) return 'yes';
      if (blank) state = 'space';
      else if (!(b > 0x20 && b < 0x7f)) return 'no';
    } else if (state === 'space') {
      if (b === 0x3a) return 'yes';
      if (!blank) return 'no';
    }
  }
  return 'open';
}
