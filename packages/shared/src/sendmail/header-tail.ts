/**
 * HeaderTail: the rest of a sendmail-door header section that goes on past
 * limits.maxHeaderOctets (HeaderSection.unfinished), streamed as it comes
 * instead of held, and the body after it passed on untouched. Postfix's
 * sendmail has no limit on the header section (its header_size_limit is
 * per field, and its cleanup cuts a field over it whichever way the
 * message came, so the MTA downstream cuts the same), and neither does
 * this door but for -t, whose recipients must be known before the message
 * goes on.
 *
 * It does to the rest of the section what rewriteHeader does to the first
 * part: Bcc, Resent-Bcc, Content-Length and Return-Path fields leave, with
 * their continuation lines; at the end of the section (an empty line, the
 * first line that is no header line, or the end of the message) the
 * missing fields are added, given the names of the whole section, and,
 * before a line that is no header line, the empty line Postfix's cleanup
 * puts there. It holds the first piece of the current line (LINE_PIECE
 * octets, where Postfix's cleanup looks for a field's name) and the names
 * that decide the added fields, nothing else.
 */
import { LINE_PIECE } from '../message/header-line.ts';
import type { Address } from '../envelope/envelope.ts';
import { isHeaderLineStart, type HeaderSection } from './header-section.ts';
import { DROPPED_FIELDS, RESENT_FIELDS, rewriteHeader, type AddedHeaderFacts } from './sendmail-message.ts';
import type { SendmailCommand } from './sendmail-command.ts';

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const TAB = 0x09;
const COLON = 0x3a;
const NEWLINE = Buffer.from('\n');
/** The fields whose absence rewriteHeader makes up for. */
const COMPLETED_FIELDS: ReadonlySet<string> = new Set(['message-id', 'date', 'from']);

/** Whether a field's name (lower case) decides what rewriteHeader removes or adds. */
function counts(name: string): boolean {
  return DROPPED_FIELDS.has(name) || RESENT_FIELDS.has(name) || COMPLETED_FIELDS.has(name);
}

export interface ContinuedHeader {
  /** The first part of the section as it goes downstream: dropped fields gone, nothing added yet. */
  readonly head: Buffer;
  /** Lines in `head`. */
  readonly headLines: number;
  /** Reads the rest of the section and the body. */
  readonly tail: HeaderTail;
}

/** The header of an unfinished section: its first part now, the rest and the added fields through the tail. */
export function continueHeader(section: HeaderSection, command: SendmailCommand, sender: Address, facts: AddedHeaderFacts): ContinuedHeader {
  const first = rewriteHeader(section, command, sender, facts);
  // Unfinished: no separator, every line read ends with its LF, so what rewriteHeader added is at the end.
  const head = first.bytes.subarray(0, first.bytes.length - first.addedOctets);
  const names = new Set(section.fields.map((field) => field.name.toLowerCase()).filter(counts));
  const additions = (seen: ReadonlySet<string>): Buffer => {
    const fields = [...seen].map((name) => ({ name, line: 0, lines: [] }));
    const summary: HeaderSection = { fields, lineCount: 0, separator: null, separatorAdded: false, droppedFromLines: 0, endedByDot: false, unfinished: false };
    return rewriteHeader(summary, command, sender, facts).bytes;
  };
  const last = section.fields.at(-1);
  const dropping = last !== undefined && DROPPED_FIELDS.has(last.name.toLowerCase());
  return { head, headLines: first.lineCount - first.added.length, tail: new HeaderTail(names, last !== undefined, dropping, additions) };
}

export class HeaderTail {
  readonly #names: Set<string>;
  readonly #additions: (names: ReadonlySet<string>) => Buffer;
  #anyField: boolean;
  #inSection = true;
  /** The current line's first octets, until they tell what the line is. */
  #head: Buffer[] = [];
  #headLength = 0;
  /** The current line is told: the rest of it passes, or leaves with its field. */
  #told = false;
  #dropping = false;
  /** The last octet kept is an LF (or nothing was kept). */
  #keptLineEnd = true;

  /** `anyField`: the section's first part has a field; `dropping`: its last one leaves (its continuation lines with it). */
  constructor(names: Set<string>, anyField: boolean, dropping: boolean, additions: (names: ReadonlySet<string>) => Buffer) {
    this.#names = names;
    this.#anyField = anyField;
    this.#dropping = dropping;
    this.#additions = additions;
  }

  /** The section has ended: what comes now is the body. */
  get inSection(): boolean {
    return this.#inSection;
  }

  /** What goes downstream for `chunk`, in order. */
  write(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let p = 0;
    while (p < chunk.length && this.#inSection) {
      const lf = chunk.indexOf(LF, p);
      const lineEnd = lf === -1 ? chunk.length : lf + 1;
      if (this.#told) {
        if (!this.#dropping) this.#keep(out, chunk.subarray(p, lineEnd));
        this.#told = lf === -1;
        p = lineEnd;
        continue;
      }
      const take = Math.min(lineEnd - p, LINE_PIECE - this.#headLength);
      this.#head.push(chunk.subarray(p, p + take));
      this.#headLength += take;
      p += take;
      const whole = p === lineEnd && lf !== -1;
      if (whole || this.#headLength >= LINE_PIECE) this.#tell(out, whole);
    }
    if (p < chunk.length) out.push(chunk.subarray(p));
    return out;
  }

  /** End of input: a last line without a line end, then the added fields if the section is still open. */
  end(): Buffer[] {
    const out: Buffer[] = [];
    if (!this.#inSection) return out;
    if (this.#headLength > 0) this.#tell(out, false);
    if (this.#inSection) this.#close(out, null);
    return out;
  }

  /** Tells what the held line is (`whole`: it ended with its LF) and sends it on accordingly. */
  #tell(out: Buffer[], whole: boolean): void {
    const line = this.#head.length === 1 ? (this.#head[0] as Buffer) : Buffer.concat(this.#head);
    this.#head = [];
    this.#headLength = 0;
    this.#told = !whole;
    let end = whole ? line.length - 1 : line.length;
    if (whole) while (end > 0 && line[end - 1] === CR) end--;
    if (whole && end === 0) {
      this.#close(out, line);
      return;
    }
    if (!isHeaderLineStart(line, !this.#anyField)) {
      this.#close(out, NEWLINE);
      this.#told = false;
      out.push(line);
      return;
    }
    const first = line[0];
    if (first !== SP && first !== TAB && first !== CR) {
      const colon = line.indexOf(COLON);
      const name = line.subarray(0, colon).toString('latin1').replace(/[ \t\r]+$/, '').toLowerCase();
      this.#anyField = true;
      this.#dropping = DROPPED_FIELDS.has(name);
      if (counts(name)) this.#names.add(name);
    }
    if (!this.#dropping) this.#keep(out, line);
  }

  #keep(out: Buffer[], bytes: Buffer): void {
    if (bytes.length === 0) return;
    out.push(bytes);
    this.#keptLineEnd = bytes[bytes.length - 1] === LF;
  }

  /** The section ends: the added fields, then `separator` (the caller's empty line, or the one Postfix's cleanup adds). */
  #close(out: Buffer[], separator: Buffer | null): void {
    this.#inSection = false;
    const added = this.#additions(this.#names);
    if (!this.#keptLineEnd && (added.length > 0 || separator !== null)) out.push(NEWLINE);
    if (added.length > 0) out.push(added);
    if (separator !== null) out.push(separator);
  }
}
