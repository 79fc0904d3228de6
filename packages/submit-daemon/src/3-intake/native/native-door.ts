/**
 * The native front door, mailsubmit(1): the envelope block and the message
 * on standard input, one after the other, and `-v` the only argument. The
 * envelope is parsed from the stream by the validator itself
 * (shared/submission), so reading it is opening the input.
 */
import { MODE_NATIVE, statusOf, SubmissionError, type FrameRequest, type Outcome } from '@mailsubmit/shared';
import type { DoorRequest, FrontDoor, Intake } from '../front-door.ts';

export const nativeDoor: FrontDoor = {
  name: 'native',
  mode: MODE_NATIVE,
  accept(request: FrameRequest, fds: readonly number[]): DoorRequest {
    const options = request.argv.slice(1).map((arg) => Buffer.from(arg).toString('utf8'));
    const unknown = options.find((arg) => arg !== '-v');
    if (unknown !== undefined) {
      throw new SubmissionError('usage', `unknown argument ${JSON.stringify(unknown)}: mailsubmit takes only -v; the envelope is read from standard input (see mailsubmit(1))`);
    }
    if (fds.length === 0) throw new SubmissionError('no-input', 'no standard input was passed');
    if (fds.length > 1) throw new SubmissionError('usage', `the request carried ${fds.length} file descriptors, this front door passes one`);
    return { door: nativeDoor, inputFd: fds[0] as number, verbose: options.includes('-v'), intake: nativeIntake };
  },
  exitStatus(outcome: Outcome): number {
    return statusOf(outcome).exitCode;
  },
};

/** The native door's intake: the message stream begins with the envelope block. */
export function nativeIntake(): Intake {
  return {
    envelopeInStream: true,
    checkBeforeInput: () => undefined,
    read: async (io) => ({ message: await io.openInput() }),
    release: () => undefined,
  };
}
