/**
 * Turns the fd a caller passed (its standard input) into a Readable, under a
 * byte cap and deadlines.
 *
 * Pipes and sockets are read through net.Socket, which is event-driven;
 * fs streams on a pipe would park a thread-pool thread per silent writer
 * (measured: four silent writers made an unrelated fs.readFile take 2.5 s).
 * Regular files are read in libuv's thread pool (regular-file-reader.ts), a
 * bounded number at a time, since net.Socket refuses them and a FUSE or NFS
 * file can block a thread.
 * Terminals, devices, directories, datagram, seqpacket and listening
 * sockets, and fds not open for reading are refused (66, qmail 54).
 *
 * A pipe or socket is read from a duplicate of the fd. O_NONBLOCK, which net.Socket
 * sets, lives on the open file description shared with the caller's shell,
 * so the original fd stays open until the caller's flags have been put back.
 * Only that one bit is put back, against the flags as they are then: the
 * caller shares the description and may have changed others meanwhile, and
 * writing back its old set can be refused (EPERM: O_NOATIME, which only the
 * file's owner may set). Cleanup never throws: the fds are closed and the
 * slot returned whatever fails, and the failure is handed to `onCleanupError`.
 */
import { Socket } from 'node:net';
import { PassThrough, type Readable } from 'node:stream';
import { SubmissionError } from '@mailsubmit/shared';
import { closeFd, dupFd, fdKind, getFileStatusFlags, setFileStatusFlags, type FdInfo } from '@mailsubmit/socket-addon';
import { isResourceShortage } from '../util/resource-shortage.ts';
import type { Semaphore } from '../util/semaphore.ts';
import { RegularFileReader } from './regular-file-reader.ts';

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
  /** Restores the caller's O_NONBLOCK and closes both fds. Safe to call more than once; never throws. */
  release(): void;
}

/** Told about a failure while an input is put away (the submission's outcome stands). */
export type CleanupErrorHandler = (error: Error) => void;

let onCleanupError: CleanupErrorHandler = () => undefined;

/** Where cleanup failures go (the daemon logs them). */
export function setCleanupErrorHandler(handler: CleanupErrorHandler): void {
  onCleanupError = handler;
}

function quietly(what: string, action: () => void): void {
  try {
    action();
  } catch (err) {
    reportCleanupError(what, err);
  }
}

function reportCleanupError(what: string, err: unknown): void {
  const error = err instanceof Error ? err : new Error(String(err));
  try {
    onCleanupError(new Error(`${what}: ${error.message}`));
  } catch {
    // A failing reporter must not undo the cleanup either.
  }
}

const REFUSED_KINDS: Readonly<Record<string, string>> = {
  tty: 'is a terminal: pipe the submission in',
  chardev: 'is a device, not a message',
  blockdev: 'is a device, not a message',
  dir: 'is a directory',
  other: 'is not a pipe, socket or file',
};

const REFUSED_SOCKETS: Readonly<Record<string, string>> = {
  dgram: 'is a datagram socket: pass a pipe, a file or a stream socket',
  seqpacket: 'is a seqpacket socket: pass a pipe, a file or a stream socket',
  raw: 'is a raw socket: pass a pipe, a file or a stream socket',
  other: 'is a socket of an unknown type: pass a pipe, a file or a stream socket',
};

const O_NONBLOCK = 0o4000;

function refusal(info: FdInfo): string | null {
  const byKind = REFUSED_KINDS[info.kind];
  if (byKind !== undefined) return byKind;
  if (info.kind === 'socket') {
    const bySocket = REFUSED_SOCKETS[info.socketType ?? 'other'];
    if (bySocket !== undefined) return bySocket;
    if (info.listening === true) return 'is a listening socket, not a connection';
  }
  return info.access === 'read-only' || info.access === 'read-write' ? null : 'is not open for reading';
}

/**
 * Takes ownership of `fd` (it is closed by release(), or here on refusal).
 * `name` says which of the caller's fds it is, in refusals and read errors.
 */
export async function openPassedInput(fd: number, limits: InputLimits, fileReads: Semaphore, name = 'standard input'): Promise<PassedInput> {
  let info: FdInfo;
  try {
    info = fdKind(fd);
  } catch (err) {
    quietly(`closing ${name}`, () => closeFd(fd));
    throw new SubmissionError('no-input', `cannot inspect ${name}: ${(err as Error).message}`);
  }
  const refused = refusal(info);
  if (refused !== null) {
    quietly(`closing ${name}`, () => closeFd(fd));
    throw new SubmissionError('no-input', `${name} ${refused}`);
  }
  if (info.kind === 'file') return openRegularFile(fd, limits, fileReads, name);
  return openStream(fd, limits, name);
}

/**
 * A regular file is read in place (RegularFileReader), a bounded number at
 * a time: reading with fs.read changes no flag on the caller's open file
 * description, so neither a copy of the fd nor a restore is needed.
 */
async function openRegularFile(fd: number, limits: InputLimits, fileReads: Semaphore, name: string): Promise<PassedInput> {
  let releaseSlot: () => void;
  try {
    releaseSlot = await fileReads.acquire();
  } catch (err) {
    quietly(`closing ${name}`, () => closeFd(fd));
    if (err instanceof SubmissionError) throw err;
    throw resourceError(err, name);
  }
  const watch = inputWatch(limits, (error) => reader.destroy(error));
  const reader = new RegularFileReader(fd, {
    check: (chunk) => watch.took(chunk),
    readFailed: (err) => new SubmissionError('input-error', `reading ${name} failed: ${err.code ?? err.message}`),
    closeFailed: (err) => reportCleanupError(`closing ${name}`, err),
  });
  reader.once('end', () => watch.stop());
  reader.once('error', () => watch.stop());
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    watch.stop();
    // Closes the fd once no read is in flight.
    quietly(`closing ${name}`, () => reader.destroy());
    releaseSlot();
  };
  return { stream: reader, kind: 'file', release };
}

/**
 * Pipes and sockets, through net.Socket on a copy of the fd; the caller's
 * O_NONBLOCK is put back at release.
 */
function openStream(fd: number, limits: InputLimits, name: string): PassedInput {
  let readFd = -1;
  let savedNonBlock = 0;
  let source: Readable;
  try {
    savedNonBlock = getFileStatusFlags(fd) & O_NONBLOCK;
    readFd = dupFd(fd);
    source = new Socket({ fd: readFd, readable: true, writable: false, allowHalfOpen: true });
  } catch (err) {
    // Whatever got as far as being opened is given back here: nothing else knows of it.
    if (readFd >= 0) quietly(`closing the copy of ${name}`, () => closeFd(readFd));
    quietly(`closing ${name}`, () => closeFd(fd));
    if (err instanceof SubmissionError) throw err;
    throw resourceError(err, name);
  }

  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    watch.stop();
    quietly(`closing the copy of ${name}`, () => source.destroy());
    quietly(`restoring the flags of ${name}`, () => {
      const now = getFileStatusFlags(fd);
      if ((now & O_NONBLOCK) !== savedNonBlock) setFileStatusFlags(fd, (now & ~O_NONBLOCK) | savedNonBlock);
    });
    quietly(`closing ${name}`, () => closeFd(fd));
  };

  const output = new PassThrough({ highWaterMark: 64 * 1024 });
  const fail = (error: SubmissionError) => {
    source.unpipe(output);
    output.destroy(error);
  };
  const watch = inputWatch(limits, fail);
  source.on('data', (chunk: Buffer) => {
    const error = watch.took(chunk.length);
    if (error !== null) fail(error);
  });
  source.once('end', () => watch.stop());
  source.once('error', (err: NodeJS.ErrnoException) => fail(new SubmissionError('input-error', `reading ${name} failed: ${err.code ?? err.message}`)));
  source.pipe(output);
  return { stream: output, kind: 'pipe', release };
}

interface InputWatch {
  /** `octets` more were read: the over-limit error once past the cap, else null (and the idle deadline starts again). */
  took(octets: number): SubmissionError | null;
  stop(): void;
}

/**
 * The input's limits, the same for a file and a pipe: its octets against the
 * cap, and the whole-input and idle deadlines, either of which ends the
 * input through `fail`.
 */
function inputWatch(limits: InputLimits, fail: (error: SubmissionError) => void): InputWatch {
  let total = 0;
  const deadline = setTimeout(() => fail(new SubmissionError('input-timeout', `the input was not complete after ${limits.deadlineMs / 1000} s`)), limits.deadlineMs);
  const onIdle = () => fail(new SubmissionError('input-timeout', `nothing was written for ${limits.idleMs / 1000} s`));
  const idle = setTimeout(onIdle, limits.idleMs);
  return {
    took: (octets) => {
      total += octets;
      if (total > limits.maxOctets) return new SubmissionError('over-limit', `the input is longer than ${limits.maxOctets} octets`);
      // refresh() re-arms the same timer: no new timer per chunk.
      idle.refresh();
      return null;
    },
    stop: () => {
      clearTimeout(deadline);
      clearTimeout(idle);
    },
  };
}

/** The daemon's own shortage is temporary (75); anything else here is too, as `input-error`. */
function resourceError(err: unknown, name: string): SubmissionError {
  const message = err instanceof Error ? err.message : String(err);
  if (isResourceShortage(err)) return new SubmissionError('overload', `mailsubmitd is short of resources for ${name} (${message}); try again shortly`);
  return new SubmissionError('input-error', `cannot read ${name}: ${message}`);
}
