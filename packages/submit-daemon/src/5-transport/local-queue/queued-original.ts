/**
 * A queued message as its sender wrote it, for the copy a delivery status
 * notice returns: the queue keeps the SMTP DATA form (CRLF lines,
 * dot-stuffed), so each line that starts with a dot loses the one the
 * encoder added. Line ends stay CRLF, which the notice keeps.
 */
import { Readable, Transform, type TransformCallback } from 'node:stream';
import type { OriginalMessage } from './delivery-status-notice.ts';
import type { QueuedMessage } from './queued-message.ts';

const DOT = 0x2e;
const LF = 0x0a;

/** Undoes dot-stuffing, one chunk at a time. */
export class DotUnstuffer extends Transform {
  private atLineStart = true;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    const kept: Buffer[] = [];
    let from = 0;
    for (let i = 0; i < chunk.length; i++) {
      if (this.atLineStart && chunk[i] === DOT) {
        kept.push(chunk.subarray(from, i));
        from = i + 1;
      }
      this.atLineStart = chunk[i] === LF;
    }
    kept.push(chunk.subarray(from));
    done(null, Buffer.concat(kept));
  }
}

/**
 * The header section (up to `maxHeaderOctets`) of one open queued message,
 * read from its stream, which is then destroyed; and a function that opens
 * the whole message again for a notice that returns it.
 */
export async function originalOf(
  opened: QueuedMessage,
  reopen: () => Promise<QueuedMessage>,
  maxHeaderOctets: number,
): Promise<{ readonly original: OriginalMessage; readonly wholeMessage: () => Promise<Readable> }> {
  const unstuffed = opened.message.pipe(new DotUnstuffer());
  let seen = Buffer.alloc(0);
  let end = -1;
  try {
    for await (const chunk of unstuffed as AsyncIterable<Buffer>) {
      seen = Buffer.concat([seen, chunk]);
      end = seen.subarray(0, 2).toString('latin1') === '\r\n' ? 0 : seen.indexOf('\r\n\r\n');
      if (end >= 0 || seen.length >= maxHeaderOctets) break;
    }
  } finally {
    opened.message.destroy();
    unstuffed.destroy();
  }
  const headerSection = end >= 0 ? seen.subarray(0, end) : seen.subarray(0, Math.min(seen.length, maxHeaderOctets));
  return {
    original: { headerSection, eightBit: opened.eightBit },
    wholeMessage: async () => (await reopen()).message.pipe(new DotUnstuffer()),
  };
}
