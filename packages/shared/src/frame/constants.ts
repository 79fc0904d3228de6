/**
 * Numbers of the wire frame between the set-gid helper and the daemon. The C
 * helper keeps its own copy in packages/submit-helper/src/frame.h, where every
 * name here appears with an `MSUB_` prefix; test/frame/c-header.test.ts fails
 * the build if the two ever disagree. Only plain constants live in this file,
 * so that test can compare all of them.
 *
 * Every integer on the wire is little-endian.
 */

/** First four octets of every frame. */
export const FRAME_MAGIC = 'MSUB';
/**
 * Bumped on any incompatible change; a peer refuses a version it does not know.
 * Version 2: 32-bit argument count and lengths, the request's own length in
 * its fixed part, and a request sent in several packets.
 */
export const FRAME_VERSION = 2;
/** magic (4), version (u16), kind (u8), reserved (u8, zero). */
export const FRAME_HEADER_OCTETS = 8;

export const KIND_REQUEST = 1;
export const KIND_REPLY = 2;

/** Front door the helper was started as (its argv[0] basename). */
export const MODE_NATIVE = 1;
export const MODE_SENDMAIL = 2;
export const MODE_QMAIL_QUEUE = 3;

/** Request flag: a second fd (the caller's fd 1, the qmail-queue envelope) follows fd 0. */
export const REQUEST_FLAG_ENVELOPE_FD = 0x01;
/** Every flag bit a version-1 peer knows; any other bit set is an error. */
export const REQUEST_FLAGS_KNOWN = 0x01;

/**
 * Largest frame in either direction: 8 MiB. A request carries the caller's
 * whole command line, and Linux lets argv and the environment together take
 * a quarter of the stack limit, never more than 6 MiB (fs/exec.c; getconf
 * ARG_MAX says 2 MiB with the default 8 MiB stack), one argument at most
 * 128 KiB (MAX_ARG_STRLEN). The kernel counts each argument with its NUL and
 * its 8-octet pointer, the frame with a 4-octet length, so every command
 * line exec(2) accepts fits, whatever the stack limit.
 */
export const MAX_FRAME_OCTETS = 8 * 1024 * 1024;
/**
 * Largest SOCK_SEQPACKET message. A request longer than this travels as
 * several messages in order, each full but the last, the fds with the
 * first: one message of any size would have to fit the sender's socket
 * buffer (net.core.wmem_default is 212992, and only root may go beyond
 * net.core.wmem_max). A reply is always one message.
 */
export const MAX_PACKET_OCTETS = 65536;
/** fds a request carries: fd 0, and fd 1 in qmail-queue mode. */
export const MAX_REQUEST_FDS = 2;

/** Request: header, length (u32, the whole frame), mode (u8), flags (u8), envc (u16), argc (u32). */
export const REQUEST_FIXED_OCTETS = 20;
/** Where the request's length sits: right after the header. */
export const REQUEST_LENGTH_OFFSET = 8;
/** Where the request's mode sits: right after its length. */
export const REQUEST_MODE_OFFSET = 12;
/** Environment entries carried for the qmail-queue mode (TCPREMOTEIP and friends). */
export const MAX_ENV_ENTRIES = 8;
export const MAX_ENV_NAME_OCTETS = 64;
export const MAX_ENV_VALUE_OCTETS = 255;

/** Reply: header, status (u8), outcome length (u8), text length (u16). */
export const REPLY_FIXED_OCTETS = 12;
/** Outcome keys of the status table are short kebab-case words. */
export const MAX_OUTCOME_OCTETS = 64;
/** The one line the helper prints; it ends up in logs and bounces, so it is capped. */
export const MAX_REPLY_TEXT_OCTETS = 1000;
/** The largest reply the encoder can produce; the helper's receive buffer is larger. */
export const MAX_REPLY_OCTETS = 1076;

export type FrameKind = typeof KIND_REQUEST | typeof KIND_REPLY;
export type RequestMode = typeof MODE_NATIVE | typeof MODE_SENDMAIL | typeof MODE_QMAIL_QUEUE;
