/**
 * The last line of defence between a validated envelope and the SMTP wire.
 *
 * Every command builder in this directory passes its finished line through
 * `assertSafeCommandLine` before returning it. The envelope validator is
 * supposed to make a failure here impossible; if one happens anyway, the
 * line is refused rather than sent, because a CR or LF in a command line
 * would let caller data start a new SMTP command (command injection), and
 * a NUL or other control octet is handled differently by every server.
 *
 * A failure is a programming error, not something a caller did, so it is a
 * plain Error with a stable code rather than a SubmissionError. The daemon
 * treats any non-SubmissionError as `internal` (a temporary failure).
 */

/**
 * Longest command line this client sends, without the CRLF. RFC 5321 allows
 * 512 octets and lets each extension add to it (RFC 3461 adds up to 500 for
 * NOTIFY and ORCPT); Postfix's smtpd reads lines of up to line_length_limit
 * (2048) octets.
 */
export const MAX_COMMAND_LINE_OCTETS = 2048;

export class UnsafeCommandLineError extends Error {
  readonly code = 'ERR_UNSAFE_COMMAND';

  constructor(reason: string) {
    super(`refusing to send an unsafe SMTP command line: ${reason}`);
    this.name = 'UnsafeCommandLineError';
  }
}

// C0 controls (which include CR, LF and NUL) and DEL.
const CONTROL = /[\u0000-\u001f\u007f]/;
// With the `u` flag a well-formed surrogate pair is one code point and does
// not match; only an unpaired half does. An unpaired half would be sent as
// U+FFFD, so the wire would differ from what was validated.
const LONE_SURROGATE = /[\ud800-\udfff]/u;

/** Throws UnsafeCommandLineError unless `line` can go on the wire as one command. */
export function assertSafeCommandLine(line: string): void {
  if (typeof line !== 'string') throw new UnsafeCommandLineError('not a string');
  const control = CONTROL.exec(line);
  if (control !== null) {
    const hex = control[0].charCodeAt(0).toString(16).toUpperCase().padStart(2, '0');
    throw new UnsafeCommandLineError(`control character 0x${hex} at offset ${control.index}`);
  }
  if (LONE_SURROGATE.test(line)) throw new UnsafeCommandLineError('not well-formed Unicode');
  const octets = Buffer.byteLength(line, 'utf8');
  if (octets > MAX_COMMAND_LINE_OCTETS) {
    throw new UnsafeCommandLineError(`${octets} octets, more than ${MAX_COMMAND_LINE_OCTETS}`);
  }
}
