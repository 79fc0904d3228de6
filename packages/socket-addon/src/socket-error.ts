/**
 * The one error type of the socket addon. The native side throws plain
 * errors carrying `errno` and `syscall`; they become a SocketError here, with
 * the symbolic `code` ('EADDRINUSE', 'EAGAIN', ...) callers switch on, the
 * same way Node names its own system errors.
 */
import { constants } from 'node:os';

const ERRNO_NAMES: ReadonlyMap<number, string> = (() => {
  const names = new Map<number, string>();
  // First name wins: EAGAIN before EWOULDBLOCK, ENOTSUP before EOPNOTSUPP.
  for (const [name, number] of Object.entries(constants.errno)) {
    if (!names.has(number)) names.set(number, name);
  }
  return names;
})();

export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `ERRNO_${errno}`;
}

export class SocketError extends Error {
  /** Symbolic errno ('EADDRINUSE'), or 'ERR_ADDON_NOT_BUILT' when the addon is missing. */
  readonly code: string;
  /** Positive errno, 0 when the error did not come from a system call. */
  readonly errno: number;
  /** The failing system call ('bind', 'recvmsg', ...), or '' . */
  readonly syscall: string;

  constructor(code: string, message: string, errno = 0, syscall = '') {
    super(message);
    this.name = 'SocketError';
    this.code = code;
    this.errno = errno;
    this.syscall = syscall;
  }

  static fromErrno(errno: number, syscall: string, detail?: string): SocketError {
    const code = errnoName(errno);
    return new SocketError(code, `${syscall} ${code}${detail ? `: ${detail}` : ''}`, errno, syscall);
  }
}

/**
 * Turns whatever the native side or fs threw into a SocketError; a TypeError
 * from the native argument checks means the wrapper itself has a bug, so it
 * passes through unchanged.
 */
export function toSocketError(error: unknown, detail?: string): unknown {
  if (error instanceof SocketError || error instanceof TypeError) return error;
  if (error instanceof Error) {
    const { errno, syscall } = error as Error & { errno?: unknown; syscall?: unknown };
    if (typeof errno === 'number' && typeof syscall === 'string') {
      // Node's fs errors carry a negative errno, the addon's a positive one.
      return SocketError.fromErrno(Math.abs(errno), syscall, detail);
    }
  }
  return error;
}
