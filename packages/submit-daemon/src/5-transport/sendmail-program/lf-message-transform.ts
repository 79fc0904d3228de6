/**
 * LfDecoder and LfMessageTransform: turn the message as encoded for SMTP
 * DATA back into the plain text sendmail(1) reads on its standard input.
 *
 * The MessageEncoder (packages/shared/src/message/message-encoder.ts) makes
 * CRLF line ends and dot-stuffs every line that starts with `.`. This undoes
 * exactly that and nothing else: CR LF becomes LF, and a `..` at the start
 * of a line loses its first `.`. A CR not followed by LF, or a line starting
 * with a single `.`, passes through unchanged (the encoder never makes
 * either, and guessing would change bytes).
 *
 * Why not leave the CRs to sendmail: Postfix's sendmail strips them only
 * while sendmail_fix_line_endings says so, and nothing strips the stuffed
 * dots, which with `-i` would be delivered doubled.
 *
 * Chunks may split a CR LF pair or a leading `..` anywhere, so at most one
 * octet (a CR at the end of a chunk, or a `.` at the start of a line) is held
 * until the next chunk shows what it means. Nothing else is kept: memory is
 * flat whatever the message size.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { SubmissionError } from '@mailsubmit/shared';

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;

/**
 * The conversion itself, as a plain class so tests can drive it with any
 * chunking and see what each chunk gives.
 */
export class LfDecoder {
  /** The next octet starts a line (the stream's first octet does). */
  #atLineStart = true;
  /** A CR ended the last chunk: CR LF or a lone CR, depending on the next octet. */
  #heldCr = false;
  /** A `.` at a line start ended the last chunk: stuffing or content, depending on the next octet. */
  #heldDot = false;

  /** LF text for everything this chunk completes; at most one octet is held back. */
  write(c: Uint8Array): Buffer {
    const n = c.length;
    // Output is never longer than the input plus the one held octet.
    const out = Buffer.allocUnsafe(n + 1);
    let o = 0;
    let p = 0;
    if (n === 0) return out.subarray(0, 0);

    if (this.#heldCr) {
      this.#heldCr = false;
      if (c[0] === LF) {
        out[o++] = LF;
        p = 1;
        this.#atLineStart = true;
      } else {
        out[o++] = CR;
      }
    } else if (this.#heldDot) {
      this.#heldDot = false;
      // `..` is a stuffed `.`; a `.` followed by anything else is kept as is.
      out[o++] = DOT;
      if (c[0] === DOT) p = 1;
      this.#atLineStart = false;
    }

    while (p < n) {
      if (this.#atLineStart) {
        if (c[p] === DOT) {
          if (p + 1 === n) {
            this.#heldDot = true;
            return out.subarray(0, o);
          }
          if (c[p + 1] === DOT) p++;
        }
        this.#atLineStart = false;
      }
      const lf = c.indexOf(LF, p);
      if (lf === -1) {
        let end = n;
        if (c[n - 1] === CR) {
          this.#heldCr = true;
          end = n - 1;
        }
        out.set(c.subarray(p, end), o);
        o += end - p;
        break;
      }
      // The CR of a CR LF that straddled chunks was dealt with above, so a
      // CR belonging to this LF can only be inside [p, lf).
      const contentEnd = lf > p && c[lf - 1] === CR ? lf - 1 : lf;
      out.set(c.subarray(p, contentEnd), o);
      o += contentEnd - p;
      out[o++] = LF;
      p = lf + 1;
      this.#atLineStart = true;
    }
    return out.subarray(0, o);
  }

  /**
   * The held octet, if any. The encoder's output ends in CR LF, so nothing
   * is held then; a source that ends otherwise gets its last octet back
   * unchanged.
   */
  end(): Buffer {
    const held = this.#heldDot ? DOT : this.#heldCr ? CR : -1;
    this.#heldDot = false;
    this.#heldCr = false;
    return held === -1 ? Buffer.alloc(0) : Buffer.from([held]);
  }
}

/** LfDecoder as a stream stage. */
export class LfMessageTransform extends Transform {
  readonly #decoder = new LfDecoder();

  override _transform(chunk: unknown, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!(chunk instanceof Uint8Array)) {
      callback(new SubmissionError('internal', 'the message source produced something other than bytes'));
      return;
    }
    const out = this.#decoder.write(chunk);
    callback(null, out.length > 0 ? out : undefined);
  }

  override _flush(callback: TransformCallback): void {
    const out = this.#decoder.end();
    callback(null, out.length > 0 ? out : undefined);
  }
}
