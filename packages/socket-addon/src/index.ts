/**
 * Unix SOCK_SEQPACKET sockets for mailsubmitd: listen, accept, one frame per
 * recvmsg with the fds passed beside it, peer credentials from the kernel,
 * and the fd calls Node lacks. This file is the only importer of the native
 * addon: it validates every argument, so the C side only makes system calls,
 * and turns every errno into a SocketError.
 *
 * Ownership: fds delivered with a 'frame' event belong to the listener of
 * that event, which must close them (closeFd) or hand them to something that
 * will. A frame that arrives with no 'frame' listener has its fds closed here.
 */
import { EventEmitter } from 'node:events';
import { chmodSync, chownSync, existsSync, lstatSync, renameSync, unlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SocketError, toSocketError } from './socket-error.ts';

export { SocketError, errnoName } from './socket-error.ts';

export interface PeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

export type FdKindName = 'fifo' | 'socket' | 'file' | 'tty' | 'chardev' | 'blockdev' | 'dir' | 'other';
/** 'none' is an O_PATH descriptor, which can be neither read nor written. */
export type FdAccess = 'read-only' | 'write-only' | 'read-write' | 'none';

/** SO_TYPE of a socket: only a stream reads like a pipe. */
export type SocketTypeName = 'stream' | 'dgram' | 'seqpacket' | 'raw' | 'other';

export interface FdInfo {
  readonly kind: FdKindName;
  readonly access: FdAccess;
  /** Sockets only. */
  readonly socketType?: SocketTypeName;
  /** Sockets only: listen() was called on it (SO_ACCEPTCONN). */
  readonly listening?: boolean;
}

/** A passwd entry, with every group the user is in (getgrouplist). */
export interface UserEntry {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  /** The GECOS field as the user database has it (chfn lets the user set it); invalid UTF-8 becomes U+FFFD. */
  readonly gecos: string;
  readonly groupIds: readonly number[];
}

export interface FrameFlags {
  /** MSG_TRUNC: the frame was longer than maxFrameOctets; the data is its beginning. */
  readonly truncated: boolean;
  /** MSG_CTRUNC, or more fds than maxFds: every fd that came was closed. */
  readonly ctruncated: boolean;
  /**
   * Set with ctruncated when fewer fds came than there was room for: the
   * kernel could not install them here (EMFILE, ENFILE). The shortage is
   * this process's, not the peer's fault.
   */
  readonly fdsLost: boolean;
}

export interface ListenOptions {
  /** Filesystem path of the socket; an existing socket file nobody listens on is replaced. */
  readonly path: string;
  /** Permission bits of the socket file, e.g. 0o660. */
  readonly mode: number;
  readonly uid?: number;
  readonly gid?: number;
  readonly backlog?: number;
  /** Receive limit per frame (at most 65536); longer frames arrive flagged `truncated`. */
  readonly maxFrameOctets?: number;
  /** fds accepted per frame (at most 16); more arrive flagged `ctruncated`, all closed. */
  readonly maxFds?: number;
}

declare const handleBrand: unique symbol;
type NativeHandle = { readonly [handleBrand]: true };
type EventCallback = (kind: number, a?: unknown, b?: unknown, c?: unknown) => void;

interface Native {
  listen(path: string, mode: number, backlog: number, maxFrame: number, maxFds: number, bindPath: string): NativeHandle;
  adopt(fd: number, path: string, maxFrame: number, maxFds: number): NativeHandle;
  start(handle: NativeHandle, callback: EventCallback): void;
  stop(handle: NativeHandle): void;
  close(handle: NativeHandle): void;
  send(handle: NativeHandle, data: Uint8Array): number;
  peerCredentials(handle: NativeHandle): PeerCredentials;
  getFileStatusFlags(fd: number): number;
  setFileStatusFlags(fd: number, flags: number): void;
  fdKind(fd: number): FdInfo;
  closeFd(fd: number): void;
  dupFd(fd: number): number;
  lookupUserById(uid: number): UserEntry | null;
  lookupGroupById(gid: number): string | null;
  lookupGroupByName(name: string): number | null;
  limitMallocArenas(count: number): void;
}

// Must match enum addon_event and FRAME_FLAG_* in src/addon.h.
const EVENT_CONNECTION = 1;
const EVENT_FRAME = 2;
const EVENT_END = 3;
const EVENT_ERROR = 4;
const FLAG_TRUNCATED = 1;
const FLAG_CTRUNCATED = 2;
const FLAG_FDS_LOST = 4;

const MAX_FRAME_LIMIT = 65536;
const MAX_FDS_LIMIT = 16;
/** Pause after EMFILE and friends before accepting again; polling on would spin. */
const ACCEPT_RETRY_MS = 100;

let native: Native | undefined;

/** Loads build/Release/socket_addon.node on first use, so importing this file never fails. */
function addon(): Native {
  if (native) return native;
  const require = createRequire(import.meta.url);
  // Beside this module in the source tree; beside the bundle when installed.
  for (const candidate of ['../build/Release/socket_addon.node', '../build/Debug/socket_addon.node', './socket_addon.node']) {
    const path = new URL(candidate, import.meta.url);
    if (existsSync(path)) {
      native = require(fileURLToPath(path)) as Native;
      return native;
    }
  }
  throw new SocketError(
    'ERR_ADDON_NOT_BUILT',
    'the socket addon is not built: run `npm run build` in packages/socket-addon',
  );
}

/** Runs a native call; system errors come out as SocketError. */
function call<T>(action: () => T, detail?: string): T {
  try {
    return action();
  } catch (error) {
    throw toSocketError(error, detail);
  }
}

function checkInteger(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new TypeError(`${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

function checkFd(fd: unknown): number {
  return checkInteger('fd', fd, 0, 0x7fffffff);
}

interface ListenerEvents {
  connection: [connection: SeqpacketConnection];
  /** accept failed (EMFILE, ENFILE, ...): accepting pauses and resumes by itself. */
  acceptError: [error: SocketError];
  error: [error: SocketError];
}

export class SeqpacketListener extends EventEmitter<ListenerEvents> {
  readonly path: string;
  #handle: NativeHandle;
  #identity: { dev: number; ino: number } | null;
  #closed = false;
  #retry: NodeJS.Timeout | undefined;
  // Kept as a field: the native side holds it only while polling.
  readonly #onEvent: EventCallback = (kind, a, b, c) => this.#event(kind, a, b, c);

  /**
   * Use listenSeqpacket() or adoptSeqpacketListener(). `owned`: this
   * listener made the socket file and removes it on close; an adopted
   * socket's file is its giver's.
   */
  constructor(handle: NativeHandle, path: string, owned = true) {
    super();
    this.#handle = handle;
    this.path = path;
    this.#identity = owned ? (({ dev, ino }) => ({ dev, ino }))(lstatSync(path)) : null;
    call(() => addon().start(this.#handle, this.#onEvent));
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Stops accepting and removes the socket file if it is still the one this listener made (never an adopted one's). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retry);
    addon().close(this.#handle);
    if (this.#identity === null) return;
    try {
      const { dev, ino } = lstatSync(this.path);
      if (dev === this.#identity.dev && ino === this.#identity.ino) unlinkSync(this.path);
    } catch {
      // Already gone, or replaced by someone else: not ours to remove.
    }
  }

  #event(kind: number, a: unknown, b: unknown, c: unknown): void {
    if (kind === EVENT_CONNECTION) {
      this.emit('connection', new SeqpacketConnection(a as NativeHandle));
    } else if (kind === EVENT_ERROR) {
      const error = SocketError.fromErrno(a as number, b as string, this.path);
      if (b === 'accept' && !this.#closed) {
        this.#retry = setTimeout(() => {
          if (!this.#closed) call(() => addon().start(this.#handle, this.#onEvent));
        }, ACCEPT_RETRY_MS);
        this.emit('acceptError', error);
      } else {
        this.emit('error', error);
      }
    }
  }
}

interface ConnectionEvents {
  /** One recvmsg: the frame, the fds that came with it (now the listener's), and what was cut. */
  frame: [data: Buffer, fds: number[], flags: FrameFlags];
  /** The peer closed its end (a zero-length read). No more events follow. */
  end: [];
  error: [error: SocketError];
}

export class SeqpacketConnection extends EventEmitter<ConnectionEvents> {
  #handle: NativeHandle;
  #closed = false;
  readonly #onEvent: EventCallback = (kind, a, b, c) => this.#event(kind, a, b, c);

  /** Made by the listener; reading starts at once (events come on later loop turns). */
  constructor(handle: NativeHandle) {
    super();
    this.#handle = handle;
    call(() => addon().start(this.#handle, this.#onEvent));
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Sends one frame without blocking; a full socket buffer is SocketError EAGAIN. */
  send(data: Uint8Array): void {
    if (!(data instanceof Uint8Array) || data.byteLength === 0) {
      throw new TypeError('send() takes a non-empty Uint8Array (an empty frame reads as end-of-file)');
    }
    const sent = call(() => addon().send(this.#handle, data));
    if (sent !== data.byteLength) {
      throw new SocketError('ESHORTSEND', `send: ${sent} of ${data.byteLength} octets sent`, 0, 'send');
    }
  }

  /** The peer's pid, uid and gid as the kernel recorded them at connect(). */
  peerCredentials(): PeerCredentials {
    return call(() => addon().peerCredentials(this.#handle));
  }

  /** Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    addon().close(this.#handle);
  }

  #event(kind: number, a: unknown, b: unknown, c: unknown): void {
    if (kind === EVENT_FRAME) {
      const fds = b as number[];
      const bits = c as number;
      if (this.listenerCount('frame') === 0) {
        for (const fd of fds) closeFd(fd);
        return;
      }
      this.emit('frame', a as Buffer, fds, {
        truncated: (bits & FLAG_TRUNCATED) !== 0,
        ctruncated: (bits & FLAG_CTRUNCATED) !== 0,
        fdsLost: (bits & FLAG_FDS_LOST) !== 0,
      });
    } else if (kind === EVENT_END) {
      this.emit('end');
    } else if (kind === EVENT_ERROR) {
      this.emit('error', SocketError.fromErrno(a as number, b as string));
    }
  }
}

/**
 * Listens on a Unix SOCK_SEQPACKET socket. The file is created under a
 * private name beside `path` with at most `mode`'s permissions (never wider,
 * not even for an instant), set to exactly `mode`, chowned to uid/gid if
 * given, and only then renamed to `path`: a client connecting while a daemon
 * starts finds either no socket (ECONNREFUSED or ENOENT: "try again later")
 * or the finished one, never one it may not open.
 */
export function listenSeqpacket(options: ListenOptions): SeqpacketListener {
  const { path } = options;
  if (typeof path !== 'string' || path.length === 0 || path.includes('\0')) {
    throw new TypeError('path must be a non-empty string without NUL');
  }
  if (Buffer.byteLength(path) > 107) throw SocketError.fromErrno(36, 'bind', `${path} is longer than 107 octets`);
  const mode = checkInteger('mode', options.mode, 0, 0o777);
  const backlog = checkInteger('backlog', options.backlog ?? 128, 1, 65535);
  const maxFrame = checkInteger('maxFrameOctets', options.maxFrameOctets ?? MAX_FRAME_LIMIT, 1, MAX_FRAME_LIMIT);
  const maxFds = checkInteger('maxFds', options.maxFds ?? 2, 0, MAX_FDS_LIMIT);
  const uid = options.uid === undefined ? -1 : checkInteger('uid', options.uid, 0, 0xfffffffe);
  const gid = options.gid === undefined ? -1 : checkInteger('gid', options.gid, 0, 0xfffffffe);

  const bindPath = join(dirname(path), `.${basename(path)}.${process.pid}`);
  if (Buffer.byteLength(bindPath) > 107) throw SocketError.fromErrno(36, 'bind', `${bindPath} is longer than 107 octets`);

  const handle = call(() => addon().listen(path, mode, backlog, maxFrame, maxFds, bindPath), path);
  let published = false;
  try {
    chmodSync(bindPath, mode);
    if (uid !== -1 || gid !== -1) chownSync(bindPath, uid, gid);
    renameSync(bindPath, path);
    published = true;
    return new SeqpacketListener(handle, path);
  } catch (error) {
    addon().close(handle);
    try {
      unlinkSync(published ? path : bindPath);
    } catch {
      // nothing left to clean
    }
    throw toSocketError(error, path);
  }
}

export interface AdoptOptions {
  /** The listening socket's fd, as its giver passed it (systemd: 3 onwards). */
  readonly fd: number;
  /** Where it must be bound: anything else is refused. */
  readonly path: string;
  readonly maxFrameOctets?: number;
  readonly maxFds?: number;
}

/**
 * A listening SOCK_SEQPACKET socket that was given to this process (systemd's
 * socket activation) rather than made by it: refused with EINVAL unless it
 * is one, listening, bound at `path`. Closing the listener closes the fd and
 * leaves the socket file to its giver.
 */
export function adoptSeqpacketListener(options: AdoptOptions): SeqpacketListener {
  const fd = checkFd(options.fd);
  const maxFrame = checkInteger('maxFrameOctets', options.maxFrameOctets ?? MAX_FRAME_LIMIT, 1, MAX_FRAME_LIMIT);
  const maxFds = checkInteger('maxFds', options.maxFds ?? 2, 0, MAX_FDS_LIMIT);
  const handle = call(() => addon().adopt(fd, options.path, maxFrame, maxFds), `fd ${fd}, which should be a listening SOCK_SEQPACKET socket at ${options.path}`);
  return new SeqpacketListener(handle, options.path, false);
}

/** fcntl(F_GETFL): to save the caller's flags (O_NONBLOCK) before reading their fd. */
export function getFileStatusFlags(fd: number): number {
  return call(() => addon().getFileStatusFlags(checkFd(fd)));
}

/** fcntl(F_SETFL): to restore them before closing. */
export function setFileStatusFlags(fd: number, flags: number): void {
  const value = checkInteger('flags', flags, 0, 0x7fffffff);
  call(() => addon().setFileStatusFlags(checkFd(fd), value));
}

/** What kind of file an fd is, and whether it was opened for reading, writing or both. */
export function fdKind(fd: number): FdInfo {
  return call(() => addon().fdKind(checkFd(fd)));
}

/** close(2) of an fd received in a frame. */
export function closeFd(fd: number): void {
  call(() => addon().closeFd(checkFd(fd)));
}

/** A close-on-exec duplicate sharing the open file description (and so its status flags). */
export function dupFd(fd: number): number {
  return call(() => addon().dupFd(checkFd(fd)));
}

/** Caps glibc's malloc arenas (mallopt M_ARENA_MAX); why: src/malloc-arenas.c. Call before threads start. */
export function limitMallocArenas(count: number): void {
  call(() => addon().limitMallocArenas(checkInteger('count', count, 1, 64)));
}

/**
 * The system's user and group databases (getpwuid_r, getgrouplist,
 * getgrgid_r, getgrnam_r), NSS included. null means "no such entry"; a
 * failing lookup (an unreachable directory server) is a SocketError.
 * These block while NSS answers.
 */
export function lookupUserById(uid: number): UserEntry | null {
  return call(() => addon().lookupUserById(checkInteger('uid', uid, 0, 0xfffffffe)));
}

export function lookupGroupById(gid: number): string | null {
  return call(() => addon().lookupGroupById(checkInteger('gid', gid, 0, 0xfffffffe)));
}

export function lookupGroupByName(name: string): number | null {
  if (typeof name !== 'string' || name.length === 0 || name.includes('\0') || Buffer.byteLength(name) > 254) {
    throw new TypeError('a group name is 1 to 254 octets without NUL');
  }
  return call(() => addon().lookupGroupByName(name));
}
