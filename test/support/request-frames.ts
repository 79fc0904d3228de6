/**
 * Request frames as the helper sends them, one builder a front door, for
 * tests that speak to the daemon without the helper (direct-client.ts).
 * argv[0] is the name the helper was started by; the rest is the test's.
 */
import { encodeRequest, MODE_NATIVE, MODE_QMAIL_QUEUE, MODE_SENDMAIL, REQUEST_FLAG_ENVELOPE_FD } from '@mailsubmit/shared';

/** `mailsubmit ARGS`: the native door. */
export function nativeRequest(...args: string[]): Uint8Array {
  return encodeRequest({ mode: MODE_NATIVE, argv: ['mailsubmit', ...args] });
}

/** `mailsubmit-sendmail ARGS`: the sendmail door. */
export function sendmailRequest(...args: string[]): Uint8Array {
  return encodeRequest({ mode: MODE_SENDMAIL, argv: ['mailsubmit-sendmail', ...args] });
}

/** `qmail-queue`: the qmail-queue door, its envelope on the second fd passed. */
export function qmailQueueRequest(): Uint8Array {
  return encodeRequest({ mode: MODE_QMAIL_QUEUE, flags: REQUEST_FLAG_ENVELOPE_FD, argv: ['qmail-queue'] });
}

/** A native request of exactly `octets` octets: one argument of x's fills it. */
export function nativeRequestOfLength(octets: number): Uint8Array {
  return nativeRequest('x'.repeat(octets - nativeRequest('').byteLength));
}
