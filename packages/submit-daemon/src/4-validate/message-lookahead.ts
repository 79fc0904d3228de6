/**
 * Reads the first part of the encoded message before the MTA is contacted.
 *
 * MAIL FROM must say BODY=8BITMIME before the message is sent, but 8-bit
 * octets can be anywhere in it. Most messages are small: reading up to
 * LOOKAHEAD_OCTETS first means they are complete (and their 8-bit status
 * known) before MAIL. A longer one is declared 8BITMIME whatever the part
 * read shows, since the rest is unknown: declaring 8BITMIME for 7-bit text
 * is harmless, the reverse is not.
 *
 * It also makes sure the envelope is complete and valid before anything is
 * said to the MTA, so malformed input never opens a transaction.
 */
import type { Readable } from 'node:stream';

export const LOOKAHEAD_OCTETS = 256 * 1024;

export interface Lookahead {
  /** The whole encoded message has been read. */
  readonly complete: boolean;
  readonly octets: number;
  /** The message bytes: what was read ahead, then the rest as it arrives. */
  readonly body: AsyncIterable<Uint8Array>;
  /**
   * The whole message again, from what was read ahead: only when it was
   * complete (null otherwise). A delivery that failed after reading body
   * can still queue the message from this.
   */
  readonly replay: (() => AsyncIterable<Uint8Array>) | null;
}

export async function readAhead(encoded: Readable, limit = LOOKAHEAD_OCTETS): Promise<Lookahead> {
  const iterator = encoded[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head: Buffer[] = [];
  let octets = 0;
  let complete = false;
  while (octets < limit) {
    const next = await iterator.next();
    if (next.done === true) {
      complete = true;
      break;
    }
    head.push(next.value);
    octets += next.value.length;
  }
  async function* body(): AsyncGenerator<Uint8Array> {
    yield* head;
    if (complete) return;
    for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) yield next.value;
  }
  async function* again(): AsyncGenerator<Uint8Array> {
    yield* head;
  }
  return { complete, octets, body: body(), replay: complete ? again : null };
}
