/**
 * SubmissionParser: SubmissionReader as a Transform stream. Emits 'envelope'
 * as soon as the envelope block has been read and validated, so a transport
 * can open the downstream transaction while the message is still arriving.
 *
 * Errors are SubmissionErrors: a consumer that sees 'error' must abandon the
 * downstream transaction without the final dot.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { Envelope } from '../envelope/envelope.ts';
import type { Limits } from '../limits.ts';
import type { MessageStats } from '../message/message-encoder.ts';
import { SubmissionReader } from './submission-reader.ts';

export interface SubmissionParserOptions {
  readonly limits?: Limits;
  /** An envelope validated elsewhere (qmail-queue): the input is then the message alone. */
  readonly envelope?: Envelope;
}

export class SubmissionParser extends Transform {
  private readonly reader: SubmissionReader;
  private envelopeAnnounced = false;

  constructor(options: SubmissionParserOptions = {}) {
    super();
    this.reader = new SubmissionReader(options.limits, options.envelope !== undefined ? { envelope: options.envelope } : {});
  }

  get parsedEnvelope(): Envelope | null {
    return this.reader.envelope;
  }

  get stats(): MessageStats | null {
    return this.reader.stats;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    let encoded: Buffer;
    try {
      encoded = this.reader.write(chunk);
    } catch (err) {
      callback(err as Error);
      return;
    }
    this.announceEnvelope();
    if (encoded.length > 0) this.push(encoded);
    callback();
  }

  override _flush(callback: TransformCallback): void {
    let encoded: Buffer;
    try {
      encoded = this.reader.end();
    } catch (err) {
      callback(err as Error);
      return;
    }
    if (encoded.length > 0) this.push(encoded);
    callback();
  }

  private announceEnvelope(): void {
    if (this.envelopeAnnounced || this.reader.envelope === null) return;
    this.envelopeAnnounced = true;
    this.emit('envelope', this.reader.envelope);
  }
}
