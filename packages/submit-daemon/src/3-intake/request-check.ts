/**
 * What the daemon accepts as a request before it reads any mail: a frame in
 * the protocol version it speaks, for a front door it serves, with what
 * that door passes (each door's accept(): its arguments, environment
 * entries and fds). Whatever a direct client sends, the answer is one of
 * the documented outcomes, and every received fd is accounted for.
 */
import { decodeRequest, FrameError, SubmissionError, type FrameRequest, type Outcome } from '@mailsubmit/shared';
import type { DoorRequest } from './front-door.ts';
import { frontDoorFor } from './front-doors.ts';

const FRAME_OUTCOMES: Partial<Record<string, Outcome>> = {
  // A helper from another release: an installation problem, not the caller's.
  ERR_FRAME_VERSION: 'config',
};

/** Checks a received frame; throws a SubmissionError. The fds stay the caller's to close. */
export function checkRequest(data: Buffer, fds: readonly number[], flags: { truncated: boolean; ctruncated: boolean }): DoorRequest {
  if (flags.truncated) throw new SubmissionError('usage', 'the request frame is too large');
  if (flags.ctruncated) throw new SubmissionError('usage', 'the request carried too many file descriptors');
  let request: FrameRequest;
  try {
    request = decodeRequest(data);
  } catch (err) {
    if (err instanceof FrameError) throw new SubmissionError(FRAME_OUTCOMES[err.code] ?? 'usage', `malformed request: ${err.message}`);
    throw err;
  }
  const door = frontDoorFor(request.mode);
  if (door === undefined) throw new SubmissionError('usage', `front door ${String(request.mode)} is not served by this daemon`);
  return door.accept(request, fds);
}
