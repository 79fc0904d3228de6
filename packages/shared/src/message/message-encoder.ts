/**
 * MessageEncoder: checks the message part of a submission as it streams past
 * and turns it into what goes after SMTP DATA, one read at a time.
 *
 * What it does to the bytes (contract, section 1, "The message"):
 * LF and CRLF line ends both leave as CRLF, a line that starts with `.` gets
 * one more `.`. By default (the message as Postfix takes it) also: several
 * CRs before an LF are one line end, and any other CR (a stray CR, also one
 * at the very end of input) leaves as a space, which is what Postfix's smtpd
 * strips and its cleanup (cleanup_replace_stray_cr_lf) replaces. Nothing else
 * changes: NUL, lines of any length, a body without a header section or
 * without the empty line before it pass as written. The terminating `.` CRLF
 * is the caller's to send, and only after end() returned: nothing in the
 * output can end DATA early, and no CR or LF leaves except in a CRLF pair.
 *
 * What it refuses (SubmissionError): a message over its limit, a total
 * that differs from the envelope's `size`. With strictMessageSyntax also
 * (RFC 5322): NUL anywhere; a CR not followed by LF; a header section over
 * its limit; a header line that is neither a field nor a continuation; a
 * line over its limit; an empty message. Without it, a header section of
 * any size passes as written (Postfix's cleanup cuts a field over its own
 * header_size_limit, the same whoever hands it the message), and the first
 * line that is neither a field nor a continuation (after a field), or whose
 * name has no colon in its first LINE_PIECE octets, ends the header
 * section, as Postfix's cleanup reads it, and is the body's first line.
 *
 * It is a plain class so that the stream wrapper, tests and fuzzers drive the
 * same code with any chunking. It holds no input bytes: only counters, the
 * header line's state, and the number of CRs at the end of a read whose
 * meaning depends on the next read. Memory is flat whatever the message size.
 *
 * Which error wins, whatever the chunking: the one at the earliest input
 * octet. At the same octet: message limit, then NUL, then bare CR, then
 * header section size, then line length, then header syntax. A chunk is
 * therefore processed only up to a NUL or the message limit, and a trailing
 * CR is not looked at until the octet after it is known. At the end of
 * input: a held CR (bare), an empty message, the size attribute, then an
 * unfinished header line (a size mismatch explains a cut-off line better
 * than the line does).
 */

import { isAscii } from 'node:buffer';
import { isSubmissionError, SubmissionError } from '../errors.ts';
import { DEFAULT_LIMITS, type Limits } from '../limits.ts';
import { IN_VALUE, LINE_PIECE, LINE_START, scanHeaderLine, type HeaderLineState } from './header-line.ts';
import {
  bareCr,
  continuationFirst,
  emptyMessage,
  encoderMisuse,
  headerTooLarge,
  lineTooLong,
  messageTooLarge,
  notAHeaderLine,
  nulOctet,
  sizeMismatch,
} from './message-errors.ts';
import { ChunkOutput } from './chunk-output.ts';

export interface MessageStats {
  /** Octets as the caller wrote them: what `size` is checked against. */
  octets: number;
  /** Lines, counting a last line without a line end. */
  lines: number;
  /** Octets of the header section as written, line ends included, the empty line not. */
  headerOctets: number;
  headerLines: number;
  /** Some octet is 0x80 or above (BODY=8BITMIME). */
  eightBit: boolean;
}

export interface MessageEncoderOptions {
  limits?: Limits;
  /** Input line number of the message's first line (after the envelope block). Default 1. */
  firstLine?: number;
  /** The envelope's `size`: the message must have exactly this many octets. */
  declaredSize?: number;
}

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;
const SP = 0x20;
const TAB = 0x09;

const STOP_NONE = 0;
const STOP_LIMIT = 1;
const STOP_NUL = 2;

const EMPTY: Buffer = Buffer.alloc(0);
const CRLF: Buffer = Buffer.from([CR, LF]);
/** Stray CRs held over a read boundary are looked at as the spaces they become, this many at a time. */
const SPACES: Buffer = Buffer.alloc(64, SP);

export class MessageEncoder {
  readonly #maxLine: number;
  readonly #maxHeader: number;
  readonly #maxMessage: number;
  readonly #firstLine: number;
  readonly #declaredSize: number | undefined;
  readonly #strict: boolean;

  #octets = 0;
  /** Completed lines so far; the current line's index. */
  #lines = 0;
  /** Content octets of the current line so far (no line end, no held CR). */
  #lineOctets = 0;
  /** The last octet seen was a CR, not yet emitted: its meaning depends on the next one. */
  #pendingCR = false;
  /** Not strict: CRs at the end of the last read, not yet emitted (a line end if an LF follows, else spaces). */
  #heldCRs = 0;
  /** Not strict: octets of the current header line so far, counted into the section once it is known to be one. */
  #headerLineOctets = 0;
  #inHeader = true;
  #headerState: HeaderLineState = LINE_START;
  #headerOctets = 0;
  #headerLines = 0;
  #eightBit = false;
  #ended = false;
  #failure: SubmissionError | undefined;

  readonly #w = new ChunkOutput();

  constructor(options: MessageEncoderOptions = {}) {
    const limits = options.limits ?? DEFAULT_LIMITS;
    this.#strict = limits.strictMessageSyntax;
    this.#maxLine = limits.maxLineOctets;
    this.#maxHeader = limits.maxHeaderOctets;
    this.#maxMessage = limits.maxMessageOctets;
    this.#firstLine = options.firstLine ?? 1;
    this.#declaredSize = options.declaredSize;
  }

  get stats(): MessageStats {
    return {
      octets: this.#octets,
      lines: this.#lines,
      headerOctets: this.#headerOctets,
      headerLines: this.#headerLines,
      eightBit: this.#eightBit,
    };
  }

  /** SMTP-ready octets for everything complete so far; may be empty. */
  write(chunk: Buffer): Buffer {
    if (this.#failure) throw this.#failure;
    if (this.#ended) throw this.#fail(encoderMisuse('write after end'));
    try {
      const input: unknown = chunk;
      if (!(input instanceof Uint8Array)) throw encoderMisuse('write of something other than a Buffer');
      return this.#write(Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength));
    } catch (error) {
      throw this.#fail(error);
    }
  }

  /**
   * Closes the last line (CRLF if the input did not end with a line end) and
   * runs the checks that need the whole message. Does not add `.` CRLF.
   */
  end(): Buffer {
    if (this.#failure) throw this.#failure;
    if (this.#ended) throw this.#fail(encoderMisuse('end after end'));
    this.#ended = true;
    try {
      return this.#end();
    } catch (error) {
      throw this.#fail(error);
    }
  }

  #fail(error: unknown): SubmissionError {
    this.#w.release();
    this.#failure = isSubmissionError(error)
      ? error
      : new SubmissionError('internal', `message encoder: ${error instanceof Error ? error.message : String(error)}`);
    return this.#failure;
  }

  #line(): number {
    return this.#firstLine + this.#lines;
  }

  #write(chunk: Buffer): Buffer {
    const n = chunk.length;
    if (n === 0) return EMPTY;
    // Find where this chunk must stop before encoding any of it, so that an
    // error earlier in the chunk still wins (see the header comment). Both
    // whole-chunk scans are SIMD/memchr-fast: indexOf(0) ran at ~60 GB/s and
    // isAscii (only until the first 8-bit octet) at ~50 GB/s on 64 KiB
    // chunks, against ~4.8 GB/s for the per-line LF scan. On a chunk not
    // yet in cache the first scan also pays the memory fetch (a quarter of
    // the encoder's time on a prebuilt 10 MB message); a chunk just read
    // from a pipe is in cache.
    let stop = n;
    let stopKind = STOP_NONE;
    const room = this.#maxMessage - this.#octets;
    if (n > room) {
      stop = room;
      stopKind = STOP_LIMIT;
    }
    const nul = this.#strict ? chunk.indexOf(0) : -1;
    if (nul !== -1 && nul < stop) {
      stop = nul;
      stopKind = STOP_NUL;
    }
    if (!this.#eightBit && !isAscii(chunk)) this.#eightBit = true;
    const out = stop > 0 ? (this.#strict ? this.#encode(chunk, stop) : this.#encodeAsPostfix(chunk, stop)) : EMPTY;
    this.#octets += stop;
    if (stopKind !== STOP_NONE) this.#failAtStop(chunk, stop, stopKind);
    return out;
  }

  #failAtStop(c: Buffer, stop: number, kind: number): never {
    if (this.#pendingCR) {
      if (c[stop] !== LF) throw bareCr(this.#line());
      // The held CR ends its line, but the LF is past the limit. The CR itself
      // is within it and counts towards the header section.
      if (this.#inHeader && this.#lineOctets > 0 && this.#headerOctets + 1 > this.#maxHeader) {
        throw headerTooLarge(this.#line(), this.#maxHeader);
      }
    }
    throw kind === STOP_LIMIT ? messageTooLarge(this.#line(), this.#maxMessage) : nulOctet(this.#line());
  }

  #end(): Buffer {
    if (!this.#strict) return this.#endAsPostfix();
    if (this.#pendingCR) throw bareCr(this.#line());
    if (this.#octets === 0) throw emptyMessage();
    if (this.#declaredSize !== undefined && this.#declaredSize !== this.#octets) {
      throw sizeMismatch(this.#declaredSize, this.#octets);
    }
    if (this.#lineOctets === 0) return EMPTY;
    if (this.#inHeader) {
      if (this.#headerState !== IN_VALUE) throw notAHeaderLine(this.#line());
      this.#headerLines++;
    }
    this.#lines++;
    this.#lineOctets = 0;
    return Buffer.from([CR, LF]);
  }

  /** Encodes c[0, to): no NUL in it and within the message limit. */
  #encode(c: Buffer, to: number): Buffer {
    this.#w.begin(c, to);
    let p = 0;
    if (this.#pendingCR) {
      if (c[0] !== LF) throw bareCr(this.#line());
      this.#pendingCR = false;
      // The CR held back from the last chunk goes out before this LF.
      this.#w.insert(0, CR);
      if (this.#inHeader) this.#headerLineEnd(2);
      this.#lines++;
      this.#lineOctets = 0;
      p = 1;
    }
    if (p < to) this.#scan(c, p, to);
    return this.#w.finish(this.#pendingCR ? to - 1 : to);
  }

  /**
   * The hot loop, one pass per line: an indexOf for the LF, and one for the
   * next CR only once the last one is passed (so LF-only input pays one
   * memchr per chunk for the bare-CR rule, CRLF input one per line). Lines
   * are not looked at octet by octet: only their first octet (dot-stuffing)
   * and the one before the LF (CRLF or bare LF). Header lines take one more
   * call, which looks at the field name; that is at most maxHeaderOctets.
   */
  #scan(c: Buffer, start: number, to: number): void {
    const maxLine = this.#maxLine;
    const ab = c.buffer;
    const bo = c.byteOffset;
    let p = start;
    let lines = this.#lines;
    let lineOctets = this.#lineOctets;
    let inHeader = this.#inHeader;
    const w = this.#w;
    let out = w.buffer;
    let o = w.o;
    let cap = w.cap;
    let copyFrom = w.copyFrom;
    let cr = c.indexOf(CR, p);
    while (p < to) {
      let lf = c.indexOf(LF, p);
      if (lf >= to) lf = -1;
      const e = lf === -1 ? to : lf;
      const ce = e > p && c[e - 1] === CR ? e - 1 : e;
      const len = ce - p;
      if ((cr !== -1 && cr < ce) || lineOctets + len > maxLine || inHeader) {
        this.#lines = lines;
        this.#lineOctets = lineOctets;
        if (inHeader) this.#headerContent(c, p, ce, cr);
        else this.#contentError(c, p, ce, cr);
      }
      // Copies go through TypedArray#set with a plain Uint8Array view:
      // measured on 64 KiB LF chunks, ~900 MB/s against ~550-600 MB/s for
      // Buffer#copy (argument checks) and ~400 MB/s for a JS octet loop;
      // copyWithin inside one buffer was slower still (~200 MB/s). The
      // copy is written out here, on locals, rather than as calls to
      // ChunkOutput#insert: with calls, LF-only input ran 25-30 % slower
      // (bench/validate: 10 MB 1,570 against 1,074 MB/s, 4 KB 1,126 against
      // 768), since an LF-only line pays one such copy for its CR.
      if (lineOctets === 0 && len > 0 && c[p] === DOT) {
        const n = p - copyFrom;
        if (out === undefined || o + n + 1 > cap) {
          w.o = o;
          w.copyFrom = copyFrom;
          out = w.makeRoom(n + 1);
          o = w.o;
          cap = w.cap;
        }
        if (n > 0) out.set(new Uint8Array(ab, bo + copyFrom, n), o);
        o += n;
        out[o++] = DOT;
        copyFrom = p;
      }
      lineOctets += len;
      if (lf === -1) {
        if (ce < to) this.#pendingCR = true;
        break;
      }
      if (ce === lf) {
        const n = lf - copyFrom;
        if (out === undefined || o + n + 1 > cap) {
          w.o = o;
          w.copyFrom = copyFrom;
          out = w.makeRoom(n + 1);
          o = w.o;
          cap = w.cap;
        }
        if (n > 0) out.set(new Uint8Array(ab, bo + copyFrom, n), o);
        o += n;
        out[o++] = CR;
        copyFrom = lf;
      }
      if (inHeader) {
        this.#lines = lines;
        this.#lineOctets = lineOctets;
        inHeader = this.#headerLineEnd(lf - ce + 1);
      }
      lines++;
      lineOctets = 0;
      p = lf + 1;
      if (cr !== -1 && cr < p) cr = c.indexOf(CR, p);
    }
    this.#lines = lines;
    this.#lineOctets = lineOctets;
    w.buffer = out;
    w.o = o;
    w.cap = cap;
    w.copyFrom = copyFrom;
  }

  /** Checks c[p, ce), content of a header line: size, then the field name. */
  #headerContent(c: Buffer, p: number, ce: number, cr: number): void {
    const len = ce - p;
    if ((cr !== -1 && cr < ce) || this.#headerOctets + len > this.#maxHeader || this.#lineOctets + len > this.#maxLine) {
      this.#contentError(c, p, ce, cr);
    }
    if (this.#headerState !== IN_VALUE) {
      const state = scanHeaderLine(c, p, ce, this.#headerState, this.#lines === 0);
      if (state < 0) throw this.#headerSyntaxError(c, p, -1 - state);
      this.#headerState = state as HeaderLineState;
    }
    this.#headerOctets += len;
  }

  /**
   * Some rule fails in c[p, ce), content of the current line: the earliest
   * failing octet decides, and at the same octet the rule checked first here.
   */
  #contentError(c: Buffer, p: number, ce: number, cr: number): never {
    const line = this.#line();
    let at = cr !== -1 && cr < ce ? cr : Infinity;
    let error: SubmissionError | undefined = at === Infinity ? undefined : bareCr(line);
    if (this.#inHeader) {
      const over = p + (this.#maxHeader - this.#headerOctets);
      if (over < ce && over < at) {
        at = over;
        error = headerTooLarge(line, this.#maxHeader);
      }
    }
    const over = p + (this.#maxLine - this.#lineOctets);
    if (over < ce && over < at) {
      at = over;
      error = lineTooLong(line, this.#maxLine);
    }
    if (this.#inHeader && this.#headerState !== IN_VALUE) {
      const state = scanHeaderLine(c, p, Math.min(ce, at), this.#headerState, this.#lines === 0);
      if (state < 0) error = this.#headerSyntaxError(c, p, -1 - state);
    }
    throw error ?? new SubmissionError('internal', 'message encoder: a line check found no error');
  }

  #headerSyntaxError(c: Buffer, p: number, bad: number): SubmissionError {
    const byte = c[bad];
    const first = this.#lines === 0 && this.#lineOctets === 0 && bad === p;
    return first && (byte === SP || byte === TAB) ? continuationFirst(this.#line()) : notAHeaderLine(this.#line());
  }

  /**
   * A header line ended with `endOctets` of line end (1 for LF, 2 for CRLF);
   * returns whether the header section goes on. Size before syntax: an
   * overrun at the CR or LF is at or before the LF where a missing colon is
   * noticed.
   */
  #headerLineEnd(endOctets: number): boolean {
    if (this.#lineOctets === 0) {
      this.#inHeader = false;
      return false;
    }
    if (this.#headerOctets + endOctets > this.#maxHeader) throw headerTooLarge(this.#line(), this.#maxHeader);
    if (this.#headerState !== IN_VALUE) throw notAHeaderLine(this.#line());
    this.#headerOctets += endOctets;
    this.#headerLines++;
    this.#headerState = LINE_START;
    return true;
  }

  // The message as Postfix takes it (not strict). Same shape as #encode,
  // #scan and #end; no refusal but the message limit and the size attribute.

  #endAsPostfix(): Buffer {
    const held = this.#heldCRs;
    this.#heldCRs = 0;
    if (held > 0) this.#strayCrs(held);
    if (this.#declaredSize !== undefined && this.#declaredSize !== this.#octets) {
      throw sizeMismatch(this.#declaredSize, this.#octets);
    }
    if (this.#lineOctets === 0) return EMPTY;
    if (this.#inHeader) this.#headerLineEndAsPostfix(0);
    this.#lines++;
    this.#lineOctets = 0;
    return held > 0 ? Buffer.concat([Buffer.alloc(held, SP), CRLF]) : CRLF;
  }

  /** Encodes c[0, to): within the message limit. */
  #encodeAsPostfix(c: Buffer, to: number): Buffer {
    const w = this.#w;
    w.begin(c, to);
    let p = 0;
    const held = this.#heldCRs;
    if (held > 0) {
      let q = 0;
      while (q < to && c[q] === CR) q++;
      if (q === to) {
        this.#heldCRs = held + to;
        return w.finish(0);
      }
      this.#heldCRs = 0;
      if (c[q] === LF) {
        // CRs, then LF: one line end, whatever the number of CRs.
        w.insert(0, CR);
        w.copyFrom = q;
        if (this.#inHeader) this.#headerLineEndAsPostfix(held + q + 1);
        this.#lines++;
        this.#lineOctets = 0;
        p = q + 1;
      } else {
        // Stray: spaces. Those in this read ([0, q)) the scan replaces.
        for (let i = 0; i < held; i++) w.insert(0, SP);
        this.#strayCrs(held);
      }
    }
    if (p < to) this.#scanAsPostfix(c, p, to);
    return w.finish(to - this.#heldCRs);
  }

  /** `n` CRs held over a read boundary turned out stray: they count as the spaces they leave as. */
  #strayCrs(n: number): void {
    for (let left = n; left > 0 && this.#inHeader; left -= SPACES.length) {
      this.#headerContentAsPostfix(SPACES, 0, Math.min(left, SPACES.length));
    }
    this.#lineOctets += n;
  }

  /**
   * The hot loop of #scan without the refusals: LF-only text pays one
   * indexOf for the LF a line and one for CR a read, as there. A line with
   * a CR in it (CRLF text: every line) takes the slower branch: the CRs
   * before the LF are the line end, any other leaves as a space.
   */
  #scanAsPostfix(c: Buffer, start: number, to: number): void {
    const ab = c.buffer;
    const bo = c.byteOffset;
    let p = start;
    let lines = this.#lines;
    let lineOctets = this.#lineOctets;
    let inHeader = this.#inHeader;
    const w = this.#w;
    let out = w.buffer;
    let o = w.o;
    let cap = w.cap;
    let copyFrom = w.copyFrom;
    let cr = c.indexOf(CR, p);
    while (p < to) {
      let lf = c.indexOf(LF, p);
      if (lf >= to) lf = -1;
      const e = lf === -1 ? to : lf;
      let ce = e;
      if (cr !== -1 && cr < e) while (ce > p && c[ce - 1] === CR) ce--;
      const len = ce - p;
      if (inHeader) {
        this.#lines = lines;
        this.#lineOctets = lineOctets;
        inHeader = this.#headerContentAsPostfix(c, p, ce);
      }
      if (lineOctets === 0 && len > 0 && c[p] === DOT) {
        const n = p - copyFrom;
        if (out === undefined || o + n + 1 > cap) {
          w.o = o;
          w.copyFrom = copyFrom;
          out = w.makeRoom(n + 1);
          o = w.o;
          cap = w.cap;
        }
        if (n > 0) out.set(new Uint8Array(ab, bo + copyFrom, n), o);
        o += n;
        out[o++] = DOT;
        copyFrom = p;
      }
      // A stray CR leaves as a space (and so can neither end a line nor DATA downstream).
      while (cr !== -1 && cr < ce) {
        const n = cr - copyFrom;
        if (out === undefined || o + n + 1 > cap) {
          w.o = o;
          w.copyFrom = copyFrom;
          out = w.makeRoom(n + 1);
          o = w.o;
          cap = w.cap;
        }
        if (n > 0) out.set(new Uint8Array(ab, bo + copyFrom, n), o);
        o += n;
        out[o++] = SP;
        copyFrom = cr + 1;
        cr = c.indexOf(CR, cr + 1);
      }
      lineOctets += len;
      if (lf === -1) {
        this.#heldCRs = to - ce;
        break;
      }
      if (ce !== lf - 1) {
        // A bare LF, or several CRs before it: one CR LF.
        const n = ce - copyFrom;
        if (out === undefined || o + n + 1 > cap) {
          w.o = o;
          w.copyFrom = copyFrom;
          out = w.makeRoom(n + 1);
          o = w.o;
          cap = w.cap;
        }
        if (n > 0) out.set(new Uint8Array(ab, bo + copyFrom, n), o);
        o += n;
        out[o++] = CR;
        copyFrom = lf;
      }
      if (inHeader) {
        this.#lines = lines;
        this.#lineOctets = lineOctets;
        inHeader = this.#headerLineEndAsPostfix(lf - ce + 1);
      }
      lines++;
      lineOctets = 0;
      p = lf + 1;
      if (cr !== -1 && cr < p) cr = c.indexOf(CR, p);
    }
    this.#lines = lines;
    this.#lineOctets = lineOctets;
    w.buffer = out;
    w.o = o;
    w.cap = cap;
    w.copyFrom = copyFrom;
  }

  /**
   * c[p, ce) is content of a line in the header section. Returns whether
   * the section goes on: a line that cannot be a field or a continuation
   * (Postfix's is_header) is the body's first line. A stray CR counts as
   * the space it becomes. Postfix looks for the name's colon only in a
   * line's first piece (LINE_PIECE octets): a name still open there is no
   * field, whatever comes after.
   */
  #headerContentAsPostfix(c: Buffer, p: number, ce: number): boolean {
    if (this.#headerState !== IN_VALUE) {
      const window = p + (LINE_PIECE - this.#lineOctets);
      const end = window < ce ? window : ce;
      const state = scanHeaderLine(c, p, end, this.#headerState, this.#headerLines === 0, true);
      if (state < 0) return this.#bodyStartsHere();
      this.#headerState = state as HeaderLineState;
      if (end < ce && state !== IN_VALUE) return this.#bodyStartsHere();
    }
    this.#headerLineOctets += ce - p;
    return true;
  }

  /** A line in the header section ended with `endOctets` of line end as written. Returns whether the section goes on. */
  #headerLineEndAsPostfix(endOctets: number): boolean {
    if (this.#lineOctets === 0) {
      this.#inHeader = false;
      return false;
    }
    if (this.#headerState !== IN_VALUE) return this.#bodyStartsHere();
    this.#headerOctets += this.#headerLineOctets + endOctets;
    this.#headerLineOctets = 0;
    this.#headerLines++;
    this.#headerState = LINE_START;
    return true;
  }

  /** The current line is not a header line: the header section ended before it. */
  #bodyStartsHere(): false {
    this.#inHeader = false;
    this.#headerLineOctets = 0;
    this.#headerState = LINE_START;
    return false;
  }
}
