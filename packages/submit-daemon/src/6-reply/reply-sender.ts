/**
 * The last word to the helper: one reply frame with the exit status for its
 * front door, the outcome key and the line it prints. Sending can fail when
 * the helper is gone; there is nobody left to tell then, so it is only logged.
 *
 * The exit status depends on the front door: qmail-queue(8) callers read
 * qmail's own codes, every other caller the sysexits code. This is the one
 * place that decides it; the submission log records what exitStatus returns.
 */
import { encodeReply, EX_TEMPFAIL, MODE_QMAIL_QUEUE, MODE_SENDMAIL, statusOf, type Outcome, type RequestMode } from '@mailsubmit/shared';
import type { SeqpacketConnection } from '@mailsubmit/socket-addon';

/** The status the helper exits with for `outcome` when started as `mode` (null: not known, native). */
export function exitStatus(outcome: Outcome, mode: RequestMode | null): number {
  const status = statusOf(outcome);
  // Postfix's sendmail exits 75, not 64, on a bad command line: its fatal errors run its
  // clean-up routine, which exits EX_TEMPFAIL. Its callers see that code; so do ours.
  if (mode === MODE_SENDMAIL && outcome === 'usage') return EX_TEMPFAIL;
  return mode === MODE_QMAIL_QUEUE ? status.qmailCode : status.exitCode;
}

export function sendReply(connection: SeqpacketConnection, status: number, outcome: Outcome, text: string): Error | null {
  try {
    if (!connection.closed) connection.send(Buffer.from(encodeReply({ status, outcome, text })));
    return null;
  } catch (err) {
    return err as Error;
  } finally {
    try {
      connection.close();
    } catch {
      // The connection is gone either way; the reply's own error (if any) is what counts.
    }
  }
}
