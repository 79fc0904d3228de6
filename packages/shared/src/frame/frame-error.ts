/**
 * The only error the frame codec throws. `code` is stable and meant for
 * programs (the daemon logs it and picks a status from it); the message is for
 * people. Whatever bytes arrive, a decoder throws this and nothing else.
 */

export type FrameErrorCode =
  /** A zero-length frame: on SOCK_SEQPACKET that is end-of-file, never a frame. */
  | 'ERR_FRAME_EMPTY'
  | 'ERR_FRAME_TOO_LARGE'
  | 'ERR_FRAME_MAGIC'
  | 'ERR_FRAME_VERSION'
  /** Not the kind the caller asked to decode (a reply where a request belongs), or unknown. */
  | 'ERR_FRAME_KIND'
  /** A reserved octet or an unknown flag bit is set. */
  | 'ERR_FRAME_RESERVED'
  | 'ERR_FRAME_MODE'
  /** The frame ends inside a field. */
  | 'ERR_FRAME_TRUNCATED'
  /** Octets after the last field. */
  | 'ERR_FRAME_TRAILING'
  /** A count or a length over its maximum. */
  | 'ERR_FRAME_LIMIT'
  /** A field whose content breaks its grammar (NUL in an argument, a bad name, control characters). */
  | 'ERR_FRAME_FIELD';

export class FrameError extends Error {
  readonly code: FrameErrorCode;
  /** Offset in the frame where the problem was found, when there is one. */
  readonly offset: number | undefined;

  constructor(code: FrameErrorCode, message: string, offset?: number) {
    super(offset === undefined ? message : `${message} (at octet ${offset})`);
    this.name = 'FrameError';
    this.code = code;
    this.offset = offset;
  }
}

export function isFrameError(value: unknown): value is FrameError {
  return value instanceof FrameError;
}
