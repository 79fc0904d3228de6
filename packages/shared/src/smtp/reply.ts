/**
 * One SMTP reply as the client sees it, and the pure parts of reading one:
 * the line grammar (RFC 5321 section 4.2) and the RFC 2034 enhanced status
 * code. The byte-level reader that assembles lines into replies lives with
 * the connection; this file has no I/O so both sides of the tests can use it.
 */

export interface SmtpReply {
  /** Three-digit reply code. */
  readonly code: number;
  /** RFC 3463 `class.subject.detail` from the first line, or null. */
  readonly enhanced: string | null;
  /** Text of each line after the code and separator, control characters replaced by '?'. */
  readonly lines: readonly string[];
}

export interface ReplyLine {
  readonly code: number;
  /** True for `250 text` (or a bare `250`), false for `250-text`. */
  readonly last: boolean;
  readonly text: string;
}

const LINE = /^(\d{3})(?:([ -])(.*))?$/s;
// Control characters in reply text would reach logs and the caller's one-line
// message; a hostile or broken server must not be able to inject them there.
const CONTROL = /[\u0000-\u001f\u007f]/g;

/** Parses one reply line without its line end; null when it is not a reply line. */
export function parseReplyLine(line: string): ReplyLine | null {
  const match = LINE.exec(line);
  if (match === null) return null;
  return {
    code: Number(match[1]),
    last: match[2] !== '-',
    text: (match[3] ?? '').replace(CONTROL, '?'),
  };
}

const ENHANCED = /^([245])\.(\d{1,3})\.(\d{1,3})(?=\s|$)/;

/** The enhanced status code at the start of `text` when its class agrees with `code`. */
export function enhancedStatusOf(code: number, text: string): string | null {
  const match = ENHANCED.exec(text);
  if (match === null) return null;
  const [whole, klass] = match;
  return Number(klass) === Math.floor(code / 100) ? whole : null;
}

/** Builds a reply from its lines; the enhanced code is taken from the first line. */
export function makeReply(code: number, lines: readonly string[]): SmtpReply {
  return Object.freeze({ code, enhanced: enhancedStatusOf(code, lines[0] ?? ''), lines: Object.freeze([...lines]) });
}

/** The reply on one line for messages and logs: `550 5.1.1 text / more text`, at most `max` characters. */
export function describeReply(reply: SmtpReply, max = 300): string {
  const text = `${reply.code} ${reply.lines.join(' / ')}`.trim();
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

const QUEUED_AS = /\bqueued as ([A-Za-z0-9]+)\b/i;
/** OpenSMTPD: `250 2.0.0 3c2f7f02 Message accepted for delivery`; its log names the message `msgid=3c2f7f02`. */
const OPENSMTPD_ACCEPTED = /^(?:2\.\d{1,3}\.\d{1,3} )?([0-9a-f]{8}) Message accepted for delivery$/;

/** The queue id from Postfix's `250 2.0.0 Ok: queued as 4Xyz...` (or OpenSMTPD's reply), if the reply has one. */
export function queueIdOf(reply: SmtpReply): string | undefined {
  for (const line of reply.lines) {
    const match = QUEUED_AS.exec(line) ?? OPENSMTPD_ACCEPTED.exec(line);
    if (match !== null) return match[1];
  }
  return undefined;
}
