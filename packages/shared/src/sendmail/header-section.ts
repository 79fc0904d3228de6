/**
 * HeaderSectionReader: the header section of a sendmail-style message, read
 * before anything goes downstream, because -t takes recipients from it, Bcc
 * lines must leave it, and a missing From:, Date: or Message-ID: is added.
 *
 * Bounded: it holds at most limits.maxHeaderOctets of the header section
 * and one partial line (at most LINE_PIECE octets past the limit); the body
 * is never buffered, the caller streams it on from `rest`. A section that
 * goes on past the limit is, by default, not refused: the reader stops
 * there (`unfinished`), hands the fields read so far, and the caller
 * streams the rest of the section and the body (HeaderTail) without
 * holding it, as Postfix's sendmail, which has no limit on the section
 * (its header_size_limit is per field, and its cleanup cuts a field over
 * it whichever way the message came).
 *
 * By default it reads the section as Postfix's sendmail and cleanup do,
 * which read a line in pieces of LINE_PIECE octets (line_length_limit):
 * leading mbox lines (`From ` after any number of `>`) are dropped, as
 * Postfix's sendmail drops them, when the line with its LF fits in one
 * piece; CRs before the LF do not count (they leave with the line, and the
 * encoder makes one line end of them); the first line that is neither a
 * field nor a continuation after one (a field's colon must be in the line's
 * first piece) ends the section and is the body's first line, and the
 * section then gets the empty line Postfix's cleanup puts there
 * (`separatorAdded`). Nothing is refused. With limits.strictMessageSyntax each line is
 * checked with the message's own rules and the encoder's error functions
 * (NUL, bare CR, line length, header size, field or continuation), so an
 * error names the line as the caller wrote it, before any line was removed
 * or added.
 *
 * Without -i a line of a single dot ends the message, as in sendmail(1):
 * here it ends the header section and the message with it. As in Postfix's
 * sendmail, the dot and the CRs after it must fit in one piece with the LF.
 */
import { SubmissionError } from '../errors.ts';
import { DEFAULT_LIMITS, type Limits } from '../limits.ts';
import { IN_VALUE, LINE_PIECE, LINE_START, scanHeaderLine } from '../message/header-line.ts';
import { bareCr, continuationFirst, headerTooLarge, lineTooLong, notAHeaderLine, nulOctet } from '../message/message-errors.ts';

export interface HeaderField {
  /** Field name as written, without the colon or spaces before it. */
  readonly name: string;
  /** Input line number of the field's first line. */
  readonly line: number;
  /** The field's lines as written, line ends included (the last input line may have none). */
  readonly lines: readonly Buffer[];
}

export interface HeaderSection {
  readonly fields: readonly HeaderField[];
  /** Input lines of the header section. */
  readonly lineCount: number;
  /**
   * The empty line that ended the section, as written; an LF when a line
   * that is not a header line ended it (separatorAdded); null at end of
   * input or a dot line.
   */
  readonly separator: Buffer | null;
  /** The separator is not the caller's: the body started without an empty line (or the message without a header section). */
  readonly separatorAdded: boolean;
  /** Leading mbox `From ` (or `>From `) lines dropped, as Postfix's sendmail drops them; they count in lineCount. */
  readonly droppedFromLines: number;
  /** A single-dot line ended the message (not with -i). */
  readonly endedByDot: boolean;
  /**
   * Not strict: the section goes on past limits.maxHeaderOctets. `fields`
   * are those before the limit, `separator` is null, and the rest handed
   * back starts with the section's next line (HeaderTail reads it on).
   */
  readonly unfinished: boolean;
}

export interface HeaderSectionOptions {
  readonly limits?: Limits;
  /** Without -i: a line of a single dot ends the message. */
  readonly dotEnds: boolean;
}

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const TAB = 0x09;
const DOT = 0x2e;
const FROM_ = Buffer.from('From ');
const EMPTY = Buffer.alloc(0);

interface OpenField {
  name: string;
  line: number;
  lines: Buffer[];
}

export class HeaderSectionReader {
  readonly #limits: Limits;
  readonly #dotEnds: boolean;
  #partial: Buffer[] = [];
  #partialLength = 0;
  #line = 1;
  #octets = 0;
  readonly #fields: OpenField[] = [];
  #result: HeaderSection | null = null;
  readonly #strict: boolean;
  /** Still at the start, where Postfix's sendmail drops mbox `From ` lines. */
  #atStart = true;
  #droppedFromLines = 0;
  /** Not strict: a line handed back with the rest (the body's first, or the first past the header limit). */
  #firstBodyLine: Buffer | null = null;

  constructor(options: HeaderSectionOptions) {
    this.#limits = options.limits ?? DEFAULT_LIMITS;
    this.#dotEnds = options.dotEnds;
    this.#strict = this.#limits.strictMessageSyntax;
  }

  /** The section, once write() returned the rest or end() was called. */
  get section(): HeaderSection | null {
    return this.#result;
  }

  /**
   * Takes the next bytes. Returns null while the section goes on, and once
   * it is complete the bytes after it (the body, possibly empty). Throws
   * SubmissionError.
   */
  write(chunk: Buffer): Buffer | null {
    if (this.#result !== null) throw new SubmissionError('internal', 'HeaderSectionReader.write after the section ended');
    let start = 0;
    while (start < chunk.length) {
      const lf = chunk.indexOf(LF, start);
      if (lf === -1) {
        if (this.#hold(chunk.subarray(start))) return this.#bodyFrom(EMPTY);
        return null;
      }
      if (this.#hold(chunk.subarray(start, lf + 1))) return this.#bodyFrom(chunk.subarray(lf + 1));
      start = lf + 1;
      const line = this.#takeLine();
      if (this.#complete(line)) return this.#bodyFrom(chunk.subarray(start));
    }
    return null;
  }

  /** The rest after the section: the line that ended it without an empty line, if any, then `after`. */
  #bodyFrom(after: Buffer): Buffer {
    const first = this.#firstBodyLine;
    this.#firstBodyLine = null;
    return first === null ? after : Buffer.concat([first, after]);
  }

  /** End of input inside the section: the last line, if any, counts without a line end. */
  end(): HeaderSection {
    if (this.#result !== null) return this.#result;
    if (this.#partialLength > 0) this.#complete(this.#takeLine());
    return this.#result ?? this.#finish(null, false);
  }

  /**
   * The body's first line, when end() was called with the section ended by
   * a line that is not a header line and no line end after it (the caller
   * sends it on as the body).
   */
  takeBody(): Buffer {
    return this.#bodyFrom(EMPTY);
  }

  /** Holds a piece of the current line. True (not strict) when the line is too long to be a header line and is the body's first. */
  #hold(piece: Buffer): boolean {
    if (piece.length === 0) return false;
    if (!this.#strict) return this.#holdAsPostfix(piece);
    this.#partialLength += piece.length;
    // A line's content, its CR LF, and the bytes that tell "too long" from "just fits".
    if (this.#partialLength > this.#limits.maxLineOctets + 2) {
      const content = Buffer.concat([...this.#partial, piece]);
      this.#checkBytes(content.subarray(0, this.#limits.maxLineOctets + 1), false);
      throw lineTooLong(this.#line, this.#limits.maxLineOctets);
    }
    this.#partial.push(piece);
    return false;
  }

  /**
   * Not strict: a line is held up to the room left in the header section,
   * and at least its first piece (what Postfix's sendmail looks at for a
   * From_ line, a dot line and a field name). Past both, a header line is
   * the first the section goes on with past the limit (`unfinished`);
   * anything else is the body's first line. Either goes on unread.
   */
  #holdAsPostfix(piece: Buffer): boolean {
    this.#partial.push(piece);
    this.#partialLength += piece.length;
    const room = this.#limits.maxHeaderOctets - this.#octets;
    // Room for the line end's CR LF too, so that a line that just fits is read whole.
    if (this.#partialLength <= room + 2 || this.#partialLength < LINE_PIECE) return false;
    const line = this.#takeLine();
    this.#firstBodyLine = line;
    if (this.#isHeaderLine(line)) this.#finish(null, false, false, true);
    else this.#finish(Buffer.from('\n'), false, true);
    return true;
  }

  /** Postfix's sendmail drops leading `From ` lines, after any number of `>`, while nothing else came. */
  #startsMbox(line: Buffer): boolean {
    if (!this.#atStart) return false;
    let i = 0;
    while (line[i] === 0x3e) i++;
    return line.subarray(i, i + 5).equals(FROM_);
  }

  #takeLine(): Buffer {
    const line = this.#partial.length === 1 ? (this.#partial[0] as Buffer) : Buffer.concat(this.#partial);
    this.#partial = [];
    this.#partialLength = 0;
    return line;
  }

  /** One whole line (with its LF, or the last one without). True when the section is over. */
  #complete(line: Buffer): boolean {
    const hasLf = line.length > 0 && line[line.length - 1] === LF;
    let end = hasLf ? line.length - 1 : line.length;
    if (hasLf && end > 0 && line[end - 1] === CR) end--;
    if (!this.#strict && hasLf) while (end > 0 && line[end - 1] === CR) end--;
    const content = line.subarray(0, end);
    // Postfix's sendmail sees a From_ line, and a dot line, only in a line that fits in one piece.
    const onePiece = hasLf && line.length <= LINE_PIECE;
    if (!this.#strict && onePiece && this.#startsMbox(content)) {
      this.#droppedFromLines++;
      this.#line++;
      return false;
    }
    this.#atStart = false;
    if (this.#dotEnds && content.length === 1 && content[0] === DOT && (onePiece || this.#strict || !hasLf)) {
      this.#finish(null, true);
      return true;
    }
    if (content.length === 0 && hasLf) {
      this.#finish(line, false);
      return true;
    }
    if (!this.#strict && !this.#isHeaderLine(content)) {
      this.#firstBodyLine = line;
      this.#finish(Buffer.from('\n'), false, true);
      return true;
    }
    if (this.#strict) {
      this.#checkBytes(content, !hasLf);
      if (content.length > this.#limits.maxLineOctets) throw lineTooLong(this.#line, this.#limits.maxLineOctets);
    }
    this.#octets += line.length;
    if (this.#octets > this.#limits.maxHeaderOctets) {
      if (this.#strict) throw headerTooLarge(this.#line, this.#limits.maxHeaderOctets);
      this.#octets -= line.length;
      this.#firstBodyLine = line;
      this.#finish(null, false, false, true);
      return true;
    }
    this.#addLine(line, content);
    this.#line++;
    return false;
  }

  /** NUL and bare CR, whichever comes first; a CR at the very end of input is bare too. */
  #checkBytes(content: Buffer, last: boolean): void {
    const nul = content.indexOf(0);
    const cr = content.indexOf(CR);
    if (nul !== -1 && (cr === -1 || nul < cr)) throw nulOctet(this.#line);
    if (cr !== -1) throw bareCr(this.#line);
    if (last && content.length > 0 && content[content.length - 1] === CR) throw bareCr(this.#line);
  }

  /** Not strict: a field, or a continuation of one (a stray CR counts as the space it becomes), by its first piece. */
  #isHeaderLine(content: Buffer): boolean {
    return isHeaderLineStart(content, this.#fields.length === 0);
  }

  #addLine(line: Buffer, content: Buffer): void {
    const first = content[0];
    if (first === SP || first === TAB || (!this.#strict && first === CR)) {
      const field = this.#fields.at(-1);
      if (field === undefined) throw continuationFirst(this.#line);
      field.lines.push(line);
      return;
    }
    if (scanHeaderLine(content, 0, content.length, LINE_START, false) !== IN_VALUE) throw notAHeaderLine(this.#line);
    const colon = content.indexOf(0x3a);
    const name = content.subarray(0, colon).toString('latin1').replace(/[ \t]+$/, '');
    this.#fields.push({ name, line: this.#line, lines: [line] });
  }

  #finish(separator: Buffer | null, endedByDot: boolean, separatorAdded = false, unfinished = false): HeaderSection {
    this.#result = Object.freeze({
      fields: Object.freeze(this.#fields.map((f) => Object.freeze({ name: f.name, line: f.line, lines: Object.freeze(f.lines) }))),
      lineCount: this.#line - 1,
      separator,
      separatorAdded,
      droppedFromLines: this.#droppedFromLines,
      endedByDot,
      unfinished,
    });
    return this.#result;
  }
}

/**
 * Not strict: whether a line is a field or a continuation as Postfix's
 * cleanup tells (is_header on the line's first piece; a stray CR counts as
 * the space it becomes). `first`: no field came before it.
 */
export function isHeaderLineStart(line: Buffer, first: boolean): boolean {
  return scanHeaderLine(line, 0, Math.min(line.length, LINE_PIECE), LINE_START, first, true) === IN_VALUE;
}

/** A field's value with the lines unfolded (RFC 5322 2.2.3: only the line ends go). */
export function unfoldedValue(field: HeaderField): Buffer {
  const parts: Buffer[] = [];
  for (const [index, line] of field.lines.entries()) {
    let end = line.length;
    if (end > 0 && line[end - 1] === LF) end--;
    if (end > 0 && line[end - 1] === CR) end--;
    const from = index === 0 ? line.indexOf(0x3a) + 1 : 0;
    parts.push(line.subarray(from, end));
  }
  return Buffer.concat(parts);
}
