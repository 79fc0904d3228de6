/*
 * frame.h: numbers of the wire frame between mailsubmit and mailsubmitd.
 *
 * The daemon's copy is packages/shared/src/frame/constants.ts, where each
 * MSUB_X below is the constant X. packages/shared/test/frame/c-header.test.ts
 * parses this file and fails if any value differs, so keep every #define here
 * a plain literal on one line.
 *
 * MSUB_OUTCOME_<KEY>_EXIT and _QMAIL are the status table's rows
 * (packages/shared/src/status/outcomes.ts) for the failures the helper
 * reports by itself, before or instead of a reply; the same test checks them.
 *
 * All integers on the wire are little-endian. A request longer than
 * MSUB_MAX_PACKET_OCTETS is sent as several SOCK_SEQPACKET messages in order,
 * each full but the last, the fds with the first; its fixed part carries the
 * whole request's length (constants.ts has the layout).
 */
#ifndef MAILSUBMIT_FRAME_H
#define MAILSUBMIT_FRAME_H

#define MSUB_FRAME_MAGIC "MSUB"
#define MSUB_FRAME_VERSION 2
#define MSUB_FRAME_HEADER_OCTETS 8

#define MSUB_KIND_REQUEST 1
#define MSUB_KIND_REPLY 2

#define MSUB_MODE_NATIVE 1
#define MSUB_MODE_SENDMAIL 2
#define MSUB_MODE_QMAIL_QUEUE 3

#define MSUB_REQUEST_FLAG_ENVELOPE_FD 0x01
#define MSUB_REQUEST_FLAGS_KNOWN 0x01

#define MSUB_MAX_FRAME_OCTETS 8388608
#define MSUB_MAX_PACKET_OCTETS 65536
#define MSUB_MAX_REQUEST_FDS 2

#define MSUB_REQUEST_FIXED_OCTETS 20
#define MSUB_REQUEST_LENGTH_OFFSET 8
#define MSUB_REQUEST_MODE_OFFSET 12
#define MSUB_MAX_ENV_ENTRIES 8
#define MSUB_MAX_ENV_NAME_OCTETS 64
#define MSUB_MAX_ENV_VALUE_OCTETS 255

#define MSUB_REPLY_FIXED_OCTETS 12
#define MSUB_MAX_OUTCOME_OCTETS 64
#define MSUB_MAX_REPLY_TEXT_OCTETS 1000
#define MSUB_MAX_REPLY_OCTETS 1076

#define MSUB_OUTCOME_USAGE_EXIT 64
#define MSUB_OUTCOME_USAGE_QMAIL 81
#define MSUB_OUTCOME_NO_INPUT_EXIT 66
#define MSUB_OUTCOME_NO_INPUT_QMAIL 54
#define MSUB_OUTCOME_NOT_AUTHORIZED_EXIT 77
#define MSUB_OUTCOME_NOT_AUTHORIZED_QMAIL 81
#define MSUB_OUTCOME_CONFIG_EXIT 78
#define MSUB_OUTCOME_CONFIG_QMAIL 55
#define MSUB_OUTCOME_DAEMON_UNAVAILABLE_EXIT 75
#define MSUB_OUTCOME_DAEMON_UNAVAILABLE_QMAIL 73
#define MSUB_OUTCOME_INTERNAL_EXIT 75
#define MSUB_OUTCOME_INTERNAL_QMAIL 81

#endif
