/**
 * An independent check on the message bytes just before they go on the wire.
 *
 * The message encoder has already turned line ends into CRLF and dot-stuffed
 * every line that starts with '.'. This guard does not trust that: it checks
 * that every CR is followed by LF, every LF follows a CR, and every line that
 * starts with '.' starts with '..'. Together these mean the bytes cannot
 * contain the end-of-data sequence CRLF "." CRLF, nor any bare-LF or bare-CR
 * variant of it that some server might honour (SMTP smuggling). A violation
 * is an encoder bug; the transaction is abandoned without the final dot.
 *
 * Cost: two Buffer.indexOf scans per chunk (native), plus a look at the byte
 * after each line end.
 */

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

export class DataGuard {
  /** Octets checked so far. */
  octets = 0;
  private lastByte = -1;
  /** The next byte starts a line (true at the very start). */
  private atLineStart = true;
  /** The previous chunk ended with a '.' that started a line: the next byte must be '.'. */
  private pendingDot = false;

  /** Returns why `chunk` is unsafe, or null. */
  check(chunk: Uint8Array): string | null {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const n = buf.length;
    if (n === 0) return null;
    const base = this.octets;

    if (this.lastByte === CR && buf[0] !== LF) return `bare CR at octet ${base - 1}`;
    if (this.pendingDot) {
      if (buf[0] !== DOT) return `line at octet ${base - 1} starts with an unstuffed '.'`;
      this.pendingDot = false;
    } else if (this.atLineStart) {
      const problem = this.lineStart(buf, 0, base);
      if (problem !== null) return problem;
    }

    for (let cr = buf.indexOf(CR); cr >= 0 && cr + 1 < n; cr = buf.indexOf(CR, cr + 1)) {
      if (buf[cr + 1] !== LF) return `bare CR at octet ${base + cr}`;
    }
    for (let lf = buf.indexOf(LF); lf >= 0; lf = buf.indexOf(LF, lf + 1)) {
      const before = lf > 0 ? buf[lf - 1] : this.lastByte;
      if (before !== CR) return `bare LF at octet ${base + lf}`;
      if (lf + 1 < n) {
        const problem = this.lineStart(buf, lf + 1, base);
        if (problem !== null) return problem;
      }
    }

    this.lastByte = buf[n - 1] as number;
    this.atLineStart = this.lastByte === LF;
    this.octets += n;
    return null;
  }

  /** A line starts at `i`: a leading '.' must be doubled (possibly across the chunk end). */
  private lineStart(buf: Buffer, i: number, base: number): string | null {
    if (buf[i] !== DOT) return null;
    if (i + 1 >= buf.length) {
      this.pendingDot = true;
      return null;
    }
    return buf[i + 1] === DOT ? null : `line at octet ${base + i} starts with an unstuffed '.'`;
  }

  /** Checks the end of the message: nothing may be left half-way. */
  finish(): string | null {
    if (this.pendingDot) return 'the message ends with an unstuffed \'.\' line';
    if (this.lastByte === CR) return 'the message ends with a bare CR';
    return null;
  }

  /** True when the bytes so far end with CRLF (or there were none). */
  get endsWithLineEnd(): boolean {
    return this.octets === 0 || this.lastByte === LF;
  }
}
