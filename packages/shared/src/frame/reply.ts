/**
 * The reply frame, daemon to helper: the exit status the helper exits with,
 * the outcome key of the status table (for logs), and one line of text.
 *
 *   header (8)  status u8  outcome-length u8  text-length u16
 *   outcome     [a-z0-9-], 1..MAX_OUTCOME_OCTETS
 *   text        UTF-8, no control characters, 0..MAX_REPLY_TEXT_OCTETS
 *
 * The status is already the one for the caller's front door (a qmail-queue
 * code in qmail-queue mode): the helper does not interpret it.
 */
import { ByteBuilder } from './byte-builder.ts';
import { KIND_REPLY, MAX_OUTCOME_OCTETS, MAX_REPLY_TEXT_OCTETS, REPLY_FIXED_OCTETS } from './constants.ts';
import { FrameError } from './frame-error.ts';
import { readHeader, writeHeader } from './header.ts';
import { isPrintableReplyText, sanitizeReplyText } from './reply-text.ts';

export interface FrameReply {
  /** Process exit status, 0..255. */
  readonly status: number;
  readonly outcome: string;
  readonly text: string;
}

const OUTCOME = /^[a-z0-9-]+$/;
const encoder = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Encodes a reply; the text is sanitized (see reply-text.ts), the outcome must be well-formed. */
export function encodeReply(reply: FrameReply): Uint8Array {
  const { status, outcome } = reply;
  if (!Number.isInteger(status) || status < 0 || status > 255) {
    throw new FrameError('ERR_FRAME_FIELD', `exit status ${String(status)} is not an integer 0..255`);
  }
  checkOutcome(outcome);
  const text = encoder.encode(sanitizeReplyText(String(reply.text)));
  const builder = new ByteBuilder(REPLY_FIXED_OCTETS + outcome.length + text.byteLength);
  writeHeader(builder, KIND_REPLY);
  builder.u8(status).u8(outcome.length).u16(text.byteLength).put(encoder.encode(outcome)).put(text);
  return builder.finish();
}

export function decodeReply(bytes: Uint8Array): FrameReply {
  const cursor = readHeader(bytes, KIND_REPLY);
  const status = cursor.u8('the status');
  const outcomeLength = cursor.u8('the outcome length');
  const textLength = cursor.u16('the text length');
  if (textLength > MAX_REPLY_TEXT_OCTETS) {
    throw new FrameError('ERR_FRAME_LIMIT', `reply text of ${textLength} octets, the limit is ${MAX_REPLY_TEXT_OCTETS}`, cursor.offset - 2);
  }
  const outcomeAt = cursor.offset;
  const outcome = String.fromCharCode(...cursor.take(outcomeLength, 'the outcome'));
  checkOutcome(outcome, outcomeAt);
  const textAt = cursor.offset;
  const textOctets = cursor.take(textLength, 'the text');
  cursor.end();
  let text: string;
  try {
    text = strictUtf8.decode(textOctets);
  } catch {
    throw new FrameError('ERR_FRAME_FIELD', 'reply text is not UTF-8', textAt);
  }
  if (!isPrintableReplyText(text)) {
    throw new FrameError('ERR_FRAME_FIELD', 'reply text holds control characters', textAt);
  }
  return { status, outcome, text };
}

function checkOutcome(outcome: unknown, offset?: number): asserts outcome is string {
  if (typeof outcome !== 'string' || outcome.length === 0) {
    throw new FrameError('ERR_FRAME_FIELD', 'empty outcome', offset);
  }
  if (outcome.length > MAX_OUTCOME_OCTETS) {
    throw new FrameError('ERR_FRAME_LIMIT', `outcome of ${outcome.length} octets, the limit is ${MAX_OUTCOME_OCTETS}`, offset);
  }
  if (!OUTCOME.test(outcome)) {
    throw new FrameError('ERR_FRAME_FIELD', `outcome ${JSON.stringify(outcome)} is not [a-z0-9-]`, offset);
  }
}
