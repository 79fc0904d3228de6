/**
 * From what the downstream MTA answered to an outcome of the status table,
 * which decides the caller's exit code. Two sources: an SMTP/LMTP reply and
 * the stage (command) it answered, or the exit of a sendmail(1) child.
 *
 * The stage matters: a 550 to RCPT means "this recipient", the same code to
 * MAIL means "this message", and a 5xx to EHLO or XFORWARD says nothing about
 * the message at all. Unknown never means success: anything the table below
 * does not recognize is a temporary failure.
 */
import type { Outcome } from '../status/outcomes.ts';
import type { SmtpReply } from './reply.ts';

/** The command (or moment) a reply answers. */
export type SmtpStage =
  | 'connect'
  | 'greeting'
  | 'ehlo'
  | 'xforward'
  | 'mail'
  | 'rcpt'
  | 'data-init'
  | 'data-block'
  | 'data-end'
  /** LMTP: the per-recipient replies after the final dot (RFC 2033 section 4.2). */
  | 'lmtp-data-end'
  | 'rset'
  | 'quit';

/** The stages that answer a command about this message (as opposed to the session). */
const MESSAGE_STAGES: ReadonlySet<SmtpStage> = new Set<SmtpStage>(['mail', 'rcpt', 'data-init', 'data-end', 'lmtp-data-end']);
/** Stages whose 5xx concerns one recipient. */
const RECIPIENT_STAGES: ReadonlySet<SmtpStage> = new Set<SmtpStage>(['rcpt', 'lmtp-data-end']);

function isSmtpUtf8Refusal(reply: SmtpReply): boolean {
  // RFC 6531 section 3.7.4: X.6.7 "non-ASCII addresses not permitted".
  // Servers without enhanced codes say so in words, e.g. Postfix with
  // smtputf8_enable=no: "555 5.5.4 Unsupported option: SMTPUTF8".
  return reply.enhanced === '5.6.7' || reply.lines.some((line) => /\bSMTPUTF8\b/i.test(line));
}

function isRecipientRefusal(reply: SmtpReply): boolean {
  // RFC 3463: 5.1.x are addressing errors. Without enhanced codes, RFC 5321's
  // 550 (mailbox unavailable), 551 (user not local) and 553 (mailbox name
  // not allowed) are the ones about the address.
  if (reply.enhanced !== null) return reply.enhanced.startsWith('5.1.');
  return reply.code === 550 || reply.code === 551 || reply.code === 553;
}

/** The outcome of `reply` as an answer at `stage`; 'ok' for the expected positive reply. */
export function replyOutcome(reply: SmtpReply, stage: SmtpStage): Outcome {
  const { code } = reply;
  if (!Number.isInteger(code) || code < 100 || code > 599) return 'mta-protocol';
  const klass = Math.floor(code / 100);

  // DATA is the one command answered by 354 (RFC 5321 section 4.3.2); there,
  // a 2xx would mean the server never asked for the message.
  if (stage === 'data-init') {
    if (klass === 3) return 'ok';
    if (klass === 2) return 'mta-protocol';
  }
  if (klass === 2) return 'ok';
  if (klass === 1 || klass === 3) return 'mta-protocol';
  if (klass === 4) return 'mta-tempfail';

  // 5xx from here on.
  if (!MESSAGE_STAGES.has(stage)) {
    // XFORWARD is refused (550 5.7.0 insufficient authorization) when the
    // listener does not list this host in smtpd_authorized_xforward_hosts:
    // an installation problem, temporary from the caller's point of view.
    if (stage === 'xforward') return 'config';
    // A refused greeting, EHLO, RSET or QUIT says nothing about this
    // message; bouncing it would be wrong. Retry later.
    return 'mta-tempfail';
  }
  if (isSmtpUtf8Refusal(reply)) return 'smtputf8-unsupported';
  if (RECIPIENT_STAGES.has(stage) && isRecipientRefusal(reply)) return 'recipient-refused';
  return 'message-refused';
}

/**
 * The outcome of a sendmail(1) child (the non-SMTP transport). Exit codes are
 * sysexits(3), as Postfix's sendmail uses them.
 */
export function sendmailExitOutcome(exitCode: number | null, signal: string | null): Outcome {
  // Killed (by our own deadline or anyone else): whether postdrop finished
  // writing the maildrop file is unknown, so the caller must keep the message.
  if (signal !== null) return 'mta-tempfail';
  // Neither an exit code nor a signal: the child never ran (spawn failed).
  if (exitCode === null) return 'internal';
  switch (exitCode) {
    case 0: // EX_OK: postdrop has the message in the maildrop queue.
      return 'ok';
    case 67: // EX_NOUSER: a recipient address was refused.
      return 'recipient-refused';
    case 65: // EX_DATAERR: sendmail refused the message content or envelope.
    case 69: // EX_UNAVAILABLE: refused permanently (e.g. message too large).
      return 'message-refused';
    case 64: // EX_USAGE: the daemon built a bad command line; our bug.
    case 70: // EX_SOFTWARE: internal software error in sendmail itself.
      return 'internal';
    case 75: // EX_TEMPFAIL: sendmail says try again later.
    case 71: // EX_OSERR, 72 EX_OSFILE, 73 EX_CANTCREAT, 74 EX_IOERR: local
    case 72: // system trouble (fork, missing file, full disk, I/O error),
    case 73: // all of which can go away by themselves.
    case 74:
    case 77: // EX_NOPERM: postdrop could not write the maildrop (permissions).
    case 78: // EX_CONFIG: Postfix is misconfigured.
      return 'mta-tempfail';
    default: // Anything else is unknown, and unknown is temporary.
      return 'mta-tempfail';
  }
}
