/**
 * Keeps reading the qmail-queue message while its envelope is still being
 * read. qmail's own callers (qmail.c) write the whole message to fd 0 and
 * only then the envelope to fd 1: a daemon that left fd 0 unread until the
 * envelope was complete would leave a message larger than a pipe buffer
 * stuck in the caller's write, and both sides would wait for the input
 * deadline. What arrives early is held in memory, bounded by the input's own
 * byte cap (the message limit), and replayed ahead of the rest.
 */
import { Readable } from 'node:stream';

export interface HeldMessage {
  /** Stops holding: what was held, then the rest of the stream as it arrives. */
  take(): Readable;
}

export function holdMessage(stream: Readable): HeldMessage {
  const held: Buffer[] = [];
  let failure: Error | null = null;
  let ended = false;
  const onData = (chunk: Buffer) => held.push(chunk);
  // Stays attached: an input error with nobody listening would be thrown at the process.
  stream.on('error', (err: Error) => (failure ??= err));
  stream.once('end', () => (ended = true));
  stream.on('data', onData);
  return {
    take(): Readable {
      stream.pause();
      stream.off('data', onData);
      async function* replay(): AsyncGenerator<Buffer> {
        while (held.length > 0) yield held.shift() as Buffer;
        if (failure !== null) throw failure;
        if (ended) return;
        for await (const chunk of stream) yield chunk as Buffer;
      }
      return Readable.from(replay(), { objectMode: false });
    },
  };
}
