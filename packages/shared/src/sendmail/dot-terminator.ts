/**
 * DotTerminator: without -i, sendmail(1) takes a line of a single dot as the
 * end of the message, and so does this front door: `.` LF, or `.` and any
 * number of CRs and LF (Postfix's sendmail strips the CRs before it looks);
 * a last line `.` without a line end too, as Postfix reads it, but not `.` CR
 * without a line end (Postfix keeps that as data). What follows it is not
 * read. With -i the dot is data, and the encoder dot-stuffs it.
 *
 * It works on the body as it streams: a `.` and the CRs after it at the end
 * of a read are held until the next read says what they are, at most
 * MAX_DOT_LINE octets (Postfix's sendmail reads lines in pieces of
 * line_length_limit, 2048, LF included, and a longer line is no dot line:
 * `.` and up to 2046 CRs before the LF).
 */
import { LINE_PIECE } from '../message/header-line.ts';

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;
const LF_DOT = Buffer.from('\n.');
const EMPTY = Buffer.alloc(0);
const MAX_DOT_LINE = LINE_PIECE;

export interface DotScan {
  /** Message bytes before the dot line (or all of them). */
  readonly data: Buffer;
  /** The dot line was found: the message ends after `data`. */
  readonly ended: boolean;
}

export class DotTerminator {
  #lineStart: boolean;
  #held: Buffer = EMPTY;
  #ended = false;

  /** `atLineStart`: the first octet written starts a line (true for a body after the empty line). */
  constructor(atLineStart = true) {
    this.#lineStart = atLineStart;
  }

  get ended(): boolean {
    return this.#ended;
  }

  write(chunk: Buffer): DotScan {
    if (this.#ended) return { data: EMPTY, ended: true };
    const buf = this.#held.length > 0 ? Buffer.concat([this.#held, chunk]) : chunk;
    this.#held = EMPTY;
    if (buf.length === 0) return { data: EMPTY, ended: false };
    let s = this.#lineStart && buf[0] === DOT ? 0 : next(buf, 0);
    while (s !== -1) {
      let j = s + 1;
      while (buf[j] === CR && j - s < MAX_DOT_LINE) j++;
      const a = buf[j];
      if (a === undefined && j - s < MAX_DOT_LINE) {
        this.#held = buf.subarray(s);
        this.#lineStart = true;
        return { data: buf.subarray(0, s), ended: false };
      }
      // Postfix's sendmail sees the dot line only when it fits, LF included, in one piece.
      if (a === LF && j - s < MAX_DOT_LINE) {
        this.#ended = true;
        return { data: buf.subarray(0, s), ended: true };
      }
      s = next(buf, s);
    }
    this.#lineStart = buf[buf.length - 1] === LF;
    return { data: buf, ended: false };
  }

  /** End of input: a held `.` is a last dot line without a line end, and ends the message; a held `.` CR... is data. */
  end(): DotScan {
    const held = this.#held;
    this.#held = EMPTY;
    if (held.length === 1) this.#ended = true;
    return { data: held.length > 1 ? held : EMPTY, ended: this.#ended };
  }
}

/** Index of the dot that starts the next line after `from`, or -1. */
function next(buf: Buffer, from: number): number {
  const i = buf.indexOf(LF_DOT, from);
  return i === -1 ? -1 : i + 1;
}
