/**
 * The last word to the helper: one reply frame with the exit status for its
 * front door, the outcome key and the line it prints. Sending can fail when
 * the helper is gone; there is nobody left to tell then, so it is only logged.
 *
 * The exit status depends on the front door (its exitStatus): qmail-queue(8)
 * callers read qmail's own codes, every other caller the sysexits code. The
 * submission log records what exitStatus returns.
 */
import { encodeReply, statusOf, type Outcome } from '@mailsubmit/shared';
import type { SeqpacketConnection } from '@mailsubmit/socket-addon';
import type { FrontDoor } from '../3-intake/front-door.ts';

/** The status the helper exits with for `outcome` at `door` (null: not known, the native codes). */
export function exitStatus(outcome: Outcome, door: FrontDoor | null): number {
  return door !== null ? door.exitStatus(outcome) : statusOf(outcome).exitCode;
}

export function sendCallerReply(connection: SeqpacketConnection, status: number, outcome: Outcome, text: string): Error | null {
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
