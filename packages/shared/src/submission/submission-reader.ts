/**
 * SubmissionReader: the caller's whole input in, SMTP-ready message bytes out,
 * as a plain synchronous class so that a stream, a fuzzer and a test can all
 * drive it the same way.
 *
 * The input is an envelope block, an empty line, then the message. The reader
 * splits the block into lines for the EnvelopeParser; once the empty line is
 * seen, `envelope` is set (a transport can start MAIL/RCPT before the message
 * has arrived) and every later byte goes to the MessageEncoder. Memory is
 * bounded by the longest allowed line. Errors are thrown as SubmissionErrors.
 *
 * A front door whose envelope travels apart from the message (qmail-queue)
 * gives the reader its validated envelope up front; the input is then the
 * message alone, counted from line 1.
 */
import { EnvelopeParser } from '../envelope/envelope-parser.ts';
import type { Envelope } from '../envelope/envelope.ts';
import { SubmissionError } from '../errors.ts';
import { DEFAULT_LIMITS, type Limits } from '../limits.ts';
import { MessageEncoder, type MessageStats } from '../message/message-encoder.ts';

export interface SubmissionReaderOptions {
  /** An envelope validated elsewhere: the input is then the message alone. */
  readonly envelope?: Envelope;
}

const LF = 0x0a;
const CR = 0x0d;
const EMPTY = Buffer.alloc(0);

export class SubmissionReader {
  private readonly limits: Limits;
  private readonly envelopeParser: EnvelopeParser;
  private encoder: MessageEncoder | null = null;
  private parsedEnvelope: Envelope | null = null;
  /** Bytes of an envelope line not yet ended by LF. */
  private partialLine: Buffer[] = [];
  private partialLength = 0;
  private lineNumber = 1;
  private envelopeOctets = 0;
  private sawInput = false;

  constructor(limits: Limits = DEFAULT_LIMITS, options: SubmissionReaderOptions = {}) {
    this.limits = limits;
    this.envelopeParser = new EnvelopeParser(limits);
    if (options.envelope !== undefined) this.startMessage(options.envelope);
  }

  /** The validated envelope, once the empty line after it has been read. */
  get envelope(): Envelope | null {
    return this.parsedEnvelope;
  }

  /** Message statistics so far; final after end(). */
  get stats(): MessageStats | null {
    return this.encoder?.stats ?? null;
  }

  /** Takes the next bytes of input; returns the encoded message bytes now complete. */
  write(chunk: Buffer): Buffer {
    if (chunk.length > 0) this.sawInput = true;
    if (this.encoder !== null) return this.encoder.write(chunk);
    const rest = this.consumeEnvelope(chunk);
    return this.encoder !== null && rest.length > 0 ? (this.encoder as MessageEncoder).write(rest) : EMPTY;
  }

  /** End of input: returns the last encoded bytes (ending in CRLF, without the final dot). */
  end(): Buffer {
    if (this.encoder === null) {
      const detail = this.sawInput
        ? 'input ends inside the envelope block: an empty line must separate it from the message'
        : 'input is empty: expected an envelope block, an empty line and a message';
      throw new SubmissionError('envelope-syntax', detail, { line: this.lineNumber });
    }
    return this.encoder.end();
  }

  /** Feeds envelope lines to the parser; returns what follows the block. */
  private consumeEnvelope(chunk: Buffer): Buffer {
    let start = 0;
    while (start < chunk.length) {
      const lf = chunk.indexOf(LF, start);
      if (lf === -1) {
        this.holdPartial(chunk.subarray(start));
        return EMPTY;
      }
      this.holdPartial(chunk.subarray(start, lf));
      start = lf + 1;
      if (this.completeLine()) return chunk.subarray(start);
    }
    return EMPTY;
  }

  private holdPartial(piece: Buffer): void {
    if (piece.length === 0) return;
    this.partialLength += piece.length;
    // The CR of a CRLF may still be held: allow one octet for it.
    if (this.partialLength > this.limits.maxEnvelopeLineOctets + 1) this.lineTooLong();
    this.partialLine.push(piece);
  }

  /** A whole envelope line is held: parse it. True when it was the empty line. */
  private completeLine(): boolean {
    let line = this.partialLine.length === 1 ? (this.partialLine[0] as Buffer) : Buffer.concat(this.partialLine);
    const lineOctets = line.length;
    this.partialLine = [];
    this.partialLength = 0;
    if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
    if (line.length > this.limits.maxEnvelopeLineOctets) this.lineTooLong();
    // Counted per whole line, after the line-length check, so the verdict never depends on chunking.
    this.envelopeOctets += lineOctets + 1;
    if (this.envelopeOctets > this.limits.maxEnvelopeOctets) {
      throw new SubmissionError('over-limit', `envelope block is longer than ${this.limits.maxEnvelopeOctets} octets`, {
        line: this.lineNumber,
      });
    }
    const lineNumber = this.lineNumber++;
    if (line.length > 0) {
      this.envelopeParser.addLine(line, lineNumber);
      return false;
    }
    this.startMessage(this.envelopeParser.finish(lineNumber));
    return true;
  }

  /** Every later byte is the message. */
  private startMessage(envelope: Envelope): void {
    this.parsedEnvelope = envelope;
    this.encoder = new MessageEncoder({
      limits: this.limits,
      firstLine: this.lineNumber,
      ...(envelope.size !== undefined ? { declaredSize: envelope.size } : {}),
    });
  }

  private lineTooLong(): never {
    throw new SubmissionError('over-limit', `envelope line is longer than ${this.limits.maxEnvelopeLineOctets} octets`, {
      line: this.lineNumber,
    });
  }
}
