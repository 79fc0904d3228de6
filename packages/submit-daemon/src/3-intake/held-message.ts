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
 *
 * Every octet is claimed from the spool's quotas and free-space reserve
 * before it is written (3-intake/spool-space.ts), and a failure is told
 * at once (onFailure): a message over limits.max_message_size, a full disk
 * (ENOSPC, EDQUOT, named in the error) or a refused claim ends the
 * submission while the caller is still writing, instead of leaving the
 * caller blocked on a pipe nobody reads until the input deadline blames it.
 */
import { randomBytes } from 'node:crypto';
import { close, createReadStream, open, unlink, write } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { SubmissionError } from '@mailsubmit/shared';
import type { SpoolClaim } from './spool-space.ts';

const openFile = promisify(open);
const unlinkFile = promisify(unlink);
const writeFile = promisify(write);

export interface HoldOptions {
  /** Where held octets go beyond `memoryOctets` (mailsubmit.conf: daemon.spool_directory). */
  readonly spoolDirectory: string;
  /** Octets kept in memory before the rest goes to the spool file. */
  readonly memoryOctets?: number;
  /** The message may not be longer (limits.max_message_size): one octet more ends the hold with over-limit. */
  readonly maxOctets?: number;
  /** Spool space for this message; released when the spool file is closed. Without it nothing is counted. */
  readonly claim?: SpoolClaim;
  /** Called once, at once, when the hold fails: the submission need not wait for the envelope to say so. */
  readonly onFailure?: (error: Error) => void;
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
  const maxOctets = options.maxOctets ?? Number.POSITIVE_INFINITY;
  const held: Buffer[] = [];
  let heldOctets = 0;
  let receivedOctets = 0;
  let spool: SpoolFile | null = null;
  // Spool writes run one after another; the input is paused while one is pending.
  let spooling: Promise<void> = Promise.resolve();
  let failure: Error | null = null;
  let ended = false;
  let taken = false;

  const fail = (err: Error) => {
    if (failure !== null) return;
    failure = err;
    // Once taken, the reader of take() meets the error itself.
    if (taken) return;
    stream.pause();
    // Nothing more is needed of what was held: free the memory and the file now.
    held.splice(0);
    heldOctets = 0;
    stream.off('data', onData);
    void spooling.then(() => spool?.close());
    options.onFailure?.(err);
  };
  const onData = (chunk: Buffer) => {
    receivedOctets += chunk.length;
    if (receivedOctets > maxOctets) {
      fail(new SubmissionError('over-limit', `the message is longer than limits.max_message_size (${maxOctets} octets)`));
      return;
    }
    if (spool === null && heldOctets + chunk.length <= memoryOctets) {
      held.push(chunk);
      heldOctets += chunk.length;
      return;
    }
    stream.pause();
    const first = spool === null ? held.splice(0) : [];
    heldOctets = 0;
    spooling = spooling
      .then(async () => {
        if (failure !== null) return;
        spool ??= await SpoolFile.create(options.spoolDirectory, options.claim ?? null);
        for (const buffer of [...first, chunk]) await spool.append(buffer);
        if (!taken && failure === null) stream.resume();
      })
      .catch(fail);
  };
  // Stays attached: an input error with nobody listening would be thrown at the process.
  stream.on('error', (err: Error) => fail(err));
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
      // After a pending write: the file may only be opened by it. Without a file, the claim is empty but still given back.
      void spooling.then(() => (spool !== null ? spool.close() : options.claim?.release()));
    },
  };
}

/** An unlinked, append-only file: written while held, read once from the start. */
class SpoolFile {
  private octets = 0;
  private closed = false;

  private constructor(
    private readonly fd: number,
    private readonly directory: string,
    private readonly claim: SpoolClaim | null,
  ) {}

  static async create(directory: string, claim: SpoolClaim | null): Promise<SpoolFile> {
    const path = join(directory, `.mailsubmit-held-${randomBytes(12).toString('hex')}`);
    let fd: number;
    try {
      fd = await openFile(path, 'wx+', 0o600);
    } catch (err) {
      claim?.release();
      throw spoolError(`cannot hold the message in ${directory}`, err);
    }
    await unlinkFile(path).catch(() => undefined);
    return new SpoolFile(fd, directory, claim);
  }

  async append(buffer: Buffer): Promise<void> {
    await this.claim?.grow(buffer.length);
    let at = 0;
    while (at < buffer.length) {
      let bytesWritten: number;
      try {
        ({ bytesWritten } = await writeFile(this.fd, buffer, at, buffer.length - at, this.octets));
      } catch (err) {
        throw spoolError(`writing the held message to ${this.directory} failed`, err);
      }
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
    // The file had no name: closing it frees its blocks, and only then is the space given back.
    close(this.fd, () => this.claim?.release());
  }
}

/** A full disk or quota is `spool-full` (qmail-queue 53), with the errno; anything else is internal. */
function spoolError(what: string, err: unknown): SubmissionError {
  const code = (err as NodeJS.ErrnoException).code;
  const words = code === 'ENOSPC' ? 'no space left on device' : code === 'EDQUOT' ? 'disk quota exceeded' : null;
  if (words !== null) return new SubmissionError('spool-full', `${what}: ${code} (${words}): try again later`);
  return new SubmissionError('internal', `${what}: ${code ?? String(err)}`);
}
