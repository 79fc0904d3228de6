/**
 * MessageEncoderTransform: the MessageEncoder as a stream, for piping the
 * caller's fd into the SMTP DATA phase. All the rules live in the encoder;
 * this only moves chunks and turns a thrown SubmissionError into a stream
 * error, so a pipeline stops before anything can send the final dot.
 */

import { Transform, type TransformCallback } from 'node:stream';
import { isSubmissionError, SubmissionError } from '../errors.ts';
import { MessageEncoder, type MessageEncoderOptions, type MessageStats } from './message-encoder.ts';

export class MessageEncoderTransform extends Transform {
  readonly #encoder: MessageEncoder;

  constructor(options: MessageEncoderOptions = {}) {
    super();
    this.#encoder = new MessageEncoder(options);
  }

  /** Counts so far; final once the stream has ended without error. */
  get stats(): MessageStats {
    return this.#encoder.stats;
  }

  override _transform(chunk: unknown, _encoding: BufferEncoding, callback: TransformCallback): void {
    let out: Buffer;
    try {
      out = this.#encoder.write(chunk as Buffer);
    } catch (error) {
      callback(asSubmissionError(error));
      return;
    }
    callback(null, out.length > 0 ? out : undefined);
  }

  override _flush(callback: TransformCallback): void {
    let out: Buffer;
    try {
      out = this.#encoder.end();
    } catch (error) {
      callback(asSubmissionError(error));
      return;
    }
    callback(null, out.length > 0 ? out : undefined);
  }
}

function asSubmissionError(error: unknown): SubmissionError {
  return isSubmissionError(error) ? error : new SubmissionError('internal', `message encoder: ${String(error)}`);
}
