/**
 * The last word to the helper: one reply frame with the exit status for its
 * front door, the outcome key and the line it prints. Sending can fail when
 * the helper is gone; there is nobody left to tell then, so it is only logged.
 */
import { encodeReply, statusOf, type Outcome } from '@mailsubmit/shared';
import type { SeqpacketConnection } from '@mailsubmit/socket-addon';

export function sendReply(connection: SeqpacketConnection, outcome: Outcome, text: string): Error | null {
  const { exitCode } = statusOf(outcome);
  try {
    if (!connection.closed) connection.send(Buffer.from(encodeReply({ status: exitCode, outcome, text })));
    return null;
  } catch (err) {
    return err as Error;
  } finally {
    connection.close();
  }
}
