/**
 * Keeps reading the qmail-queue message while its envelope is still being
 * read. qmail's own callers (qmail.c) write the whole message to fd 0 and
 * only then the envelope to fd 1: a daemon that left fd 0 unread until the
 * envelope was complete would leave a message larger than a pipe buffer
 * stuck in the caller's write, and both sides would wait for the input
 * deadline.
 *
 * What arrives early is held in memory up to `memoryOctets`; beyond that it
 * goes to an unlinked file in the spool directory, so a large message costs
 * disk, not daemon memory (the daemon never holds a whole message). The file
 * is created 0600 with O_EXCL under a random name and unlinked at once: it
 * has no name anybody could open, and it disappears with its fd, whatever
 * happens to the daemon. take() replays what was held, in order, then the
 * rest of the stream as it arrives.
 */
import { randomBytes } from 'node:crypto';
import { close, createReadStream, open, unlink, write } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { SubmissionError } from '@mailsubmit/shared';

const openFile = promisify(open);
const unlinkFile = promisify(unlink);
const writeFile = promisify(write);

export interface HoldOptions {
  /** Where held octets go beyond `memoryOctets` (mailsubmit.conf: daemon.spool_directory). */
  readonly spoolDirectory: string;
  /** Octets kept in memory before the rest goes to the spool file. */
  readonly memoryOctets?: number;
}

export interface HeldMessage {
  /** Stops holding: what was held, then the rest of the stream as it arrives. */
  take(): Readable;
  /** Frees the spool file, whether or not take() was called or read to the end. Idempotent. */
  release(): void;
}

export const DEFAULT_MEMORY_OCTETS = 256 * 1024;

export function holdMessage(stream: Readable, options: HoldOptions): HeldMessage {
  const memoryOctets = options.memoryOctets ?? DEFAULT_MEMORY_OCTETS;
  const held: Buffer[] = [];
  let heldOctets = 0;
  let spool: SpoolFile | null = null;
  // Spool writes run one after another; the input is paused while one is pending.
  let spooling: Promise<void> = Promise.resolve();
  let failure: Error | null = null;
  let ended = false;
  let taken = false;

  const fail = (err: Error) => {
    failure ??= err;
    stream.pause();
  };
  const onData = (chunk: Buffer) => {
    if (spool === null && heldOctets + chunk.length <= memoryOctets) {
      held.push(chunk);
      heldOctets += chunk.length;
      return;
    }
    stream.pause();
    const first = spool === null ? held.splice(0) : [];
    spooling = spooling
      .then(async () => {
        if (failure !== null) return;
        spool ??= await SpoolFile.create(options.spoolDirectory);
        for (const buffer of [...first, chunk]) await spool.append(buffer);
        if (!taken) stream.resume();
      })
      .catch(fail);
  };
  // Stays attached: an input error with nobody listening would be thrown at the process.
  stream.on('error', (err: Error) => (failure ??= err));
  stream.once('end', () => (ended = true));
  stream.on('data', onData);

  return {
    take(): Readable {
      taken = true;
      stream.pause();
      stream.off('data', onData);
      async function* replay(): AsyncGenerator<Buffer> {
        await spooling;
        const file = spool;
        try {
          if (failure !== null) throw failure;
          if (file !== null) yield* file.readAll();
          while (held.length > 0) yield held.shift() as Buffer;
          if (failure !== null) throw failure;
          if (ended) return;
          for await (const chunk of stream) yield chunk as Buffer;
        } finally {
          file?.close();
        }
      }
      return Readable.from(replay(), { objectMode: false });
    },
    release(): void {
      taken = true;
      stream.off('data', onData);
      // After a pending write: the file may only be opened by it.
      void spooling.then(() => spool?.close());
    },
  };
}

/** An unlinked, append-only file: written while held, read once from the start. */
class SpoolFile {
  private octets = 0;
  private closed = false;

  private constructor(private readonly fd: number) {}

  static async create(directory: string): Promise<SpoolFile> {
    const path = join(directory, `.mailsubmit-held-${randomBytes(12).toString('hex')}`);
    let fd: number;
    try {
      fd = await openFile(path, 'wx+', 0o600);
    } catch (err) {
      throw new SubmissionError('internal', `cannot hold the message in ${directory}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    await unlinkFile(path).catch(() => undefined);
    return new SpoolFile(fd);
  }

  async append(buffer: Buffer): Promise<void> {
    let at = 0;
    while (at < buffer.length) {
      const { bytesWritten } = await writeFile(this.fd, buffer, at, buffer.length - at, this.octets);
      at += bytesWritten;
      this.octets += bytesWritten;
    }
  }

  async *readAll(): AsyncGenerator<Buffer> {
    if (this.octets === 0) return;
    const reader = createReadStream('', { fd: this.fd, start: 0, end: this.octets - 1, autoClose: false });
    for await (const chunk of reader) yield chunk as Buffer;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    close(this.fd, () => undefined);
  }
}
