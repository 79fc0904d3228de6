/**
 * Test helper: runs the MessageEncoder over a list of chunks and reports the
 * result in the reference model's shape, so the two can be compared with one
 * toEqual. Outputs are concatenated only after the last write, so an output
 * buffer that a later write overwrote would show.
 */

import { SubmissionError } from '../../src/errors.ts';
import { MessageEncoder, type MessageEncoderOptions } from '../../src/message/message-encoder.ts';
import type { ModelResult } from './reference-model.ts';

export function encodeChunks(chunks: readonly Uint8Array[], options: MessageEncoderOptions = {}): ModelResult {
  const encoder = new MessageEncoder(options);
  const parts: Buffer[] = [];
  try {
    for (const chunk of chunks) parts.push(encoder.write(Buffer.from(chunk)));
    parts.push(encoder.end());
  } catch (error) {
    if (!(error instanceof SubmissionError)) throw error;
    return { ok: false, outcome: error.outcome, message: error.message };
  }
  return { ok: true, output: Buffer.concat(parts), stats: encoder.stats };
}

/** Cuts `input` at the given offsets (any order, out-of-range ignored) into copies. */
export function splitAt(input: Uint8Array, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.filter((c) => c > 0 && c < input.length))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const point of [...points, input.length]) {
    chunks.push(Buffer.from(input.subarray(from, point)));
    from = point;
  }
  return chunks;
}

/** One-octet chunks: every boundary case at once. */
export function octetByOctet(input: Uint8Array): Buffer[] {
  return Array.from(input, (b) => Buffer.from([b]));
}
