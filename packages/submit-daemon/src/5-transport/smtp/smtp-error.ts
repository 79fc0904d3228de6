/**
 * The error type of the transport: a SubmissionError (so the daemon's one
 * error path turns it into an exit code through the status table) that also
 * carries what happened on the wire. `code` is stable and meant for logs
 * and tests; `outcome` is what the caller's exit code is made from.
 */
import { SubmissionError, type InputPosition, type Outcome, type SmtpReply, type SmtpStage } from '@mailsubmit/shared';

export type SmtpErrorCode =
  /** connect() failed: refused, no such socket path, unreachable. */
  | 'ERR_SMTP_CONNECT'
  /** No reply (or no drain of the body) within the stage's timeout. */
  | 'ERR_SMTP_TIMEOUT'
  /** The server closed the connection while replies were outstanding. */
  | 'ERR_SMTP_CLOSED'
  /** A socket error after the connection was up (reset, broken pipe). */
  | 'ERR_SMTP_SOCKET'
  /** A line that is not an SMTP reply, or a multi-line reply that changes code. */
  | 'ERR_SMTP_BAD_REPLY'
  /** A reply line or a reply over the configured caps. */
  | 'ERR_SMTP_REPLY_TOO_LONG'
  /** A reply when none was expected (e.g. while the body was being sent). */
  | 'ERR_SMTP_UNEXPECTED_REPLY'
  /** A negative (or out-of-place) reply to a command. */
  | 'ERR_SMTP_REPLY'
  /** At least one RCPT was refused; nothing was sent after it. */
  | 'ERR_SMTP_RECIPIENT_REFUSED'
  /** LMTP: at least one recipient's final reply after the dot was negative. */
  | 'ERR_LMTP_RECIPIENT_REFUSED'
  /** The envelope needs SMTPUTF8 and the server does not announce it. */
  | 'ERR_SMTP_NO_SMTPUTF8'
  /** The message bytes were not dot-stuffed CRLF text: refused, never sent on. */
  | 'ERR_SMTP_UNSAFE_DATA'
  /** The connection was already failed, closed, or busy with a transaction. */
  | 'ERR_SMTP_NOT_USABLE'
  /** This side closed the connection (abandoned transaction, pool shutdown). */
  | 'ERR_SMTP_DESTROYED'
  /** The TLS policy requires STARTTLS and the server does not offer it, or refused it. */
  | 'ERR_SMTP_TLS_UNAVAILABLE'
  /** The TLS handshake after STARTTLS failed or timed out. */
  | 'ERR_SMTP_TLS_HANDSHAKE'
  /** verify: the certificate does not chain to a trusted CA or does not match the expected name. */
  | 'ERR_SMTP_TLS_UNVERIFIED'
  /** The certificate is none of the pinned ones. */
  | 'ERR_SMTP_TLS_PIN'
  /** The server sent bytes in the clear after its 220 to STARTTLS (command injection). */
  | 'ERR_SMTP_TLS_INJECTION'
  /** AUTH is configured and the server offers no AUTH, or none of the allowed mechanisms. */
  | 'ERR_SMTP_AUTH_UNAVAILABLE'
  /** AUTH is configured, TLS is not active, and AUTH without TLS is not allowed: nothing was sent. */
  | 'ERR_SMTP_AUTH_NEEDS_TLS'
  /** The server refused the credentials (535, 534, 454, any other answer to AUTH, or SCRAM's e=). */
  | 'ERR_SMTP_AUTH_REFUSED'
  /** SCRAM: the server's signature does not verify, or it accepted without one. */
  | 'ERR_SMTP_AUTH_SERVER_UNVERIFIED'
  /** A challenge the mechanism cannot read (not base64, missing attributes, a foreign nonce, too many). */
  | 'ERR_SMTP_AUTH_BAD_CHALLENGE'
  /** The credentials cannot be sent: SASLprep forbids a character of the secret (SCRAM), or a response is over the line limit. */
  | 'ERR_SMTP_AUTH_SECRET_UNUSABLE';

export interface SmtpErrorDetails {
  readonly stage?: SmtpStage;
  readonly reply?: SmtpReply;
  /** The command line the reply answered (may contain addresses: for logs). */
  readonly command?: string;
  readonly position?: InputPosition;
  /** Per-recipient replies, for RCPT refusals and LMTP final replies. */
  readonly recipientReplies?: readonly SmtpReply[];
  readonly cause?: unknown;
}

export class SmtpError extends SubmissionError {
  readonly code: SmtpErrorCode;
  readonly stage: SmtpStage | undefined;
  readonly reply: SmtpReply | undefined;
  readonly command: string | undefined;
  readonly recipientReplies: readonly SmtpReply[] | undefined;

  constructor(code: SmtpErrorCode, outcome: Outcome, detail: string, details: SmtpErrorDetails = {}) {
    super(outcome, detail, details.position);
    this.name = 'SmtpError';
    this.code = code;
    this.stage = details.stage;
    this.reply = details.reply;
    this.command = details.command;
    this.recipientReplies = details.recipientReplies;
    if (details.cause !== undefined) this.cause = details.cause;
  }
}

export function isSmtpError(value: unknown): value is SmtpError {
  return value instanceof SmtpError;
}

/**
 * What a person should see of a command: `MAIL FROM:<a@b>` without its
 * parameters, the verb of anything else, and the dot as "end of data".
 */
export function summarizeCommand(command: string | undefined): string {
  if (command === undefined) return 'the connection';
  if (command === '.') return 'end of data';
  const path = /^(?:MAIL FROM|RCPT TO):<.*?>(?= |$)/i.exec(command);
  if (path !== null) return path[0];
  return command.split(' ', 1)[0] ?? command;
}
