/**
 * The original message as it goes back inside a delivery status notice:
 * its lines rewritten, one read at a time, so that the notice around it
 * stays a well-formed MIME message whatever the caller wrote.
 *
 * - Line ends leave as CRLF: an LF, or one or more CRs before an LF, is one
 *   line end; any other CR leaves as a space. These are the message
 *   encoder's rules for what goes after DATA, applied here already so that a
 *   stray CR cannot look like a line end to the notice's reader.
 * - A line longer than 998 octets (RFC 5322 2.1.1) is broken by inserting
 *   CRLF and a space, as Postfix's SMTP client does past
 *   smtp_line_length_limit; never inside a UTF-8 sequence.
 * - A line that starts with the notice's boundary delimiter would end the
 *   part early: the boundary is random and drawn after the message was
 *   written, so this is a 2^-128 chance, and it ends the notice with an
 *   error rather than let a malformed notice out.
 * - Input without a final line end gets one: the delimiter after the part
 *   must start a line.
 *
 * Memory: counters only; the output of a read is at most about twice its
 * input.
 */

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;

/** RFC 5322 2.1.1: octets in a line, CRLF not counted. */
export const MAX_LINE_OCTETS = 998;

export class BoundaryInContentError extends Error {
  constructor() {
    super('the returned message contains a line that starts with the notice\'s MIME boundary');
    this.name = 'BoundaryInContentError';
  }
}

/** Octets a UTF-8 sequence takes, from its lead octet; 1 for anything else. */
function sequenceLength(octet: number): number {
  if (octet >= 0xf0 && octet <= 0xf7) return 4;
  if (octet >= 0xe0) return octet <= 0xef ? 3 : 1;
  if (octet >= 0xc0) return 2;
  return 1;
}

export class ReturnedMessageLines {
  /** `--boundary`: no line may start with it. */
  private readonly delimiter: Buffer;
  /** Octets in the current output line. */
  private column = 0;
  /** How much of the delimiter the current line starts with; -1 once it differs. */
  private delimiterMatch = 0;
  /** CRs whose meaning depends on the next octet (line end before LF, else a space each). */
  private heldCrs = 0;

  constructor(boundary: string) {
    this.delimiter = Buffer.from(`--${boundary}`, 'latin1');
  }

  /** The rewritten form of `chunk`; throws BoundaryInContentError. */
  write(chunk: Uint8Array): Buffer {
    const out = Buffer.allocUnsafe(2 * (chunk.length + this.heldCrs) + 3 * Math.ceil((chunk.length + this.heldCrs) / 900) + 8);
    let at = 0;
    for (let i = 0; i < chunk.length; i += 1) {
      const octet = chunk[i] as number;
      if (octet === CR) {
        this.heldCrs += 1;
        continue;
      }
      if (octet === LF) {
        this.heldCrs = 0;
        at = this.lineEnd(out, at);
        continue;
      }
      at = this.releaseCrs(out, at);
      at = this.octet(out, at, octet);
    }
    return out.subarray(0, at);
  }

  /** What is left at the end of input: held CRs as spaces, and a final line end. */
  end(): Buffer {
    const out = Buffer.allocUnsafe(2 * this.heldCrs + 3 * Math.ceil(this.heldCrs / 900) + 8);
    let at = this.releaseCrs(out, 0);
    if (this.column > 0) at = this.lineEnd(out, at);
    return out.subarray(0, at);
  }

  private releaseCrs(out: Buffer, at: number): number {
    for (; this.heldCrs > 0; this.heldCrs -= 1) at = this.octet(out, at, SP);
    return at;
  }

  private lineEnd(out: Buffer, at: number): number {
    out[at] = CR;
    out[at + 1] = LF;
    this.column = 0;
    this.delimiterMatch = 0;
    return at + 2;
  }

  private octet(out: Buffer, at: number, octet: number): number {
    if (this.column + sequenceLength(octet) > MAX_LINE_OCTETS || this.column >= MAX_LINE_OCTETS) {
      at = this.lineEnd(out, at);
      out[at] = SP;
      at += 1;
      this.column = 1;
      this.delimiterMatch = -1;
    }
    out[at] = octet;
    this.column += 1;
    if (this.delimiterMatch >= 0) {
      if (this.delimiter[this.delimiterMatch] !== octet) this.delimiterMatch = -1;
      else if ((this.delimiterMatch += 1) === this.delimiter.length) throw new BoundaryInContentError();
    }
    return at + 1;
  }
}
