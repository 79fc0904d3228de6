/**
 * How long the SMTP client waits at each stage of a conversation with the
 * MTA, and which of these waits applies to the reply awaited at each stage.
 */
import type { SmtpStage } from '@mailsubmit/shared';

/** Milliseconds per stage. */
export interface SmtpTimeouts {
  readonly connect: number;
  readonly greeting: number;
  readonly ehlo: number;
  readonly xforward: number;
  readonly mail: number;
  readonly rcpt: number;
  readonly dataInit: number;
  /** Longest wait for the socket to take more of the body (a stalled server). */
  readonly dataBlock: number;
  readonly dataEnd: number;
  readonly rset: number;
  readonly quit: number;
}

/**
 * Postfix's smtp_*_timeout defaults, shortened for a loopback peer, except
 * at the end of data: there the server may run milters and fsyncs before it
 * answers, and giving up early is the one way to cause a duplicate (the MTA
 * may commit after we told the caller to retry). Postfix waits 600 s.
 */
export const DEFAULT_TIMEOUTS: SmtpTimeouts = Object.freeze({
  connect: 5_000, // Postfix 30 s
  greeting: 30_000, // smtp_helo_timeout 300 s covers greeting and EHLO
  ehlo: 30_000,
  xforward: 30_000, // smtp_xforward_timeout 300 s
  mail: 30_000, // smtp_mail_timeout 300 s
  rcpt: 30_000, // smtp_rcpt_timeout 300 s
  dataInit: 30_000, // smtp_data_init_timeout 120 s
  dataBlock: 60_000, // smtp_data_xfer_timeout 180 s
  dataEnd: 300_000, // smtp_data_done_timeout 600 s
  rset: 10_000, // smtp_rset_timeout 20 s
  quit: 10_000, // smtp_quit_timeout 300 s
});

/** The timeout that limits the wait for a reply at each stage. */
export const STAGE_TIMEOUT: Readonly<Record<SmtpStage, keyof SmtpTimeouts>> = {
  connect: 'connect',
  greeting: 'greeting',
  ehlo: 'ehlo',
  xforward: 'xforward',
  mail: 'mail',
  rcpt: 'rcpt',
  'data-init': 'dataInit',
  'data-block': 'dataBlock',
  'data-end': 'dataEnd',
  'lmtp-data-end': 'dataEnd',
  rset: 'rset',
  quit: 'quit',
};
