/**
 * Turns the fd a caller passed (its standard input) into a Readable, under a
 * byte cap and deadlines.
 *
 * Pipes and sockets are read through net.Socket, which is event-driven;
 * fs streams on a pipe would park a thread-pool thread per silent writer
 * (measured: four silent writers made an unrelated fs.readFile take 2.5 s).
 * Regular files are read with fs streams, a bounded number at a time, since
 * net.Socket refuses them and a FUSE or NFS file can block a thread.
 * Terminals, devices, directories and fds not open for reading are refused.
 *
 * The stream reads from a duplicate of the fd. O_NONBLOCK, which net.Socket
 * sets, lives on the open file description shared with the caller's shell,
 * so the original fd stays open until the caller's flags have been put back.
 */
import { createReadStream } from 'node:fs';
import { Socket } from 'node:net';
import { PassThrough, type Readable } from 'node:stream';
import { SubmissionError } from '@mailsubmit/shared';
import { closeFd, dupFd, fdKind, getFileStatusFlags, setFileStatusFlags } from '@mailsubmit/socket-addon';
import type { Semaphore } from '../util/semaphore.ts';

export interface InputLimits {
  /** Octets read before the input is refused (a backstop behind the parser's own limits). */
  readonly maxOctets: number;
  /** The whole input must have arrived by then. */
  readonly deadlineMs: number;
  /** Longest silence between two reads. */
  readonly idleMs: number;
}

export interface PassedInput {
  readonly stream: Readable;
  readonly kind: 'pipe' | 'file';
  /** Restores the caller's flags and closes both fds. Safe to call more than once. */
  release(): void;
}

const REFUSED_KINDS: Readonly<Record<string, string>> = {
  tty: 'is a terminal: pipe the submission in',
  chardev: 'is a device, not a message',
  blockdev: 'is a device, not a message',
  dir: 'is a directory',
  other: 'is not a pipe, socket or file',
};

/**
 * Takes ownership of `fd` (it is closed by release(), or here on refusal).
 * `name` says which of the caller's fds it is, in refusals and read errors.
 */
export async function openPassedInput(fd: number, limits: InputLimits, fileReads: Semaphore, name = 'standard input'): Promise<PassedInput> {
  let kind: string;
  let access: string;
  try {
    ({ kind, access } = fdKind(fd));
  } catch (err) {
    closeFd(fd);
    throw new SubmissionError('no-input', `cannot inspect ${name}: ${(err as Error).message}`);
  }
  const refused = REFUSED_KINDS[kind] ?? (access === 'read-only' || access === 'read-write' ? null : 'is not open for reading');
  if (refused !== null) {
    closeFd(fd);
    throw new SubmissionError('no-input', `${name} ${refused}`);
  }
  const releaseSlot = kind === 'file' ? await fileReads.acquire() : null;
  const savedFlags = getFileStatusFlags(fd);
  const readFd = dupFd(fd);
  const source: Readable =
    kind === 'file'
      ? createReadStream('', { fd: readFd, autoClose: true, highWaterMark: 64 * 1024 })
      : new Socket({ fd: readFd, readable: true, writable: false, allowHalfOpen: true });

  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    clearTimeout(deadline);
    clearTimeout(idle);
    source.destroy();
    try {
      setFileStatusFlags(fd, savedFlags);
    } finally {
      closeFd(fd);
      releaseSlot?.();
    }
  };

  const output = new PassThrough({ highWaterMark: 64 * 1024 });
  const fail = (error: SubmissionError) => {
    source.unpipe(output);
    output.destroy(error);
  };
  const deadline = setTimeout(() => fail(new SubmissionError('input-timeout', `the input was not complete after ${limits.deadlineMs / 1000} s`)), limits.deadlineMs);
  let idle = setTimeout(() => undefined, 0);
  const armIdle = () => {
    clearTimeout(idle);
    idle = setTimeout(() => fail(new SubmissionError('input-timeout', `nothing was written for ${limits.idleMs / 1000} s`)), limits.idleMs);
  };
  armIdle();

  let octets = 0;
  source.on('data', (chunk: Buffer) => {
    octets += chunk.length;
    if (octets > limits.maxOctets) {
      fail(new SubmissionError('over-limit', `the input is longer than ${limits.maxOctets} octets`));
      return;
    }
    armIdle();
  });
  source.once('end', () => {
    clearTimeout(deadline);
    clearTimeout(idle);
  });
  source.once('error', (err: NodeJS.ErrnoException) => fail(new SubmissionError('input-error', `reading ${name} failed: ${err.code ?? err.message}`)));
  source.pipe(output);
  return { stream: output, kind: kind === 'file' ? 'file' : 'pipe', release };
}
