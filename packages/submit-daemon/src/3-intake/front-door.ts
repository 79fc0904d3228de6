/**
 * A front door: one way a caller hands mail to mailsubmit, each with its
 * own command line, its own fds and its own exit codes: `mailsubmit`
 * (native/), `mailsubmit-sendmail` (sendmail/), `mailsubmit-qmail-queue`
 * (qmail-queue/). The helper names the door in the request frame's mode
 * byte; front-doors.ts is the one place that turns that byte into a door.
 *
 * A door decides three things: what it accepts in a request (accept), how
 * a submission's envelope and message are read from what the caller passed
 * (the Intake its request carries), and which exit status its callers read
 * for each outcome (exitStatus). From the envelope on, every door's
 * submission takes the same path: validation, transport, reply
 * (submission-job.ts, flow.ts).
 *
 * A fourth door is a folder here with its FrontDoor, one line in
 * front-doors.ts, the helper's name for it, its man page and its tests.
 */
import type { Readable } from 'node:stream';
import type { CallerIdentity, Envelope, FrameRequest, Grant, Limits, Outcome, RequestMode, SubmissionError } from '@mailsubmit/shared';
import type { DaemonConfig } from '../config/daemon-config.ts';
import type { Downstream } from '../5-transport/downstream.ts';
import type { Logger } from '../logging/logger.ts';
import type { JobResult } from '../submission-job.ts';
import type { Semaphore } from '../util/semaphore.ts';
import type { SpoolSpace } from './spool-space.ts';

export interface FrontDoor {
  /** The door's name in log lines: native, sendmail, qmail-queue. */
  readonly name: string;
  /** The mode byte the helper writes into the request frame for this door. */
  readonly mode: RequestMode;
  /**
   * What the door accepts in a request: its arguments, environment entries
   * and fds. Throws a SubmissionError; the fds stay the caller's to close.
   */
  accept(request: FrameRequest, fds: readonly number[]): DoorRequest;
  /** The status the helper exits with for `outcome`, as this door's callers read it. */
  exitStatus(outcome: Outcome): number;
}

/** A request its front door accepted. */
export interface DoorRequest {
  readonly door: FrontDoor;
  /** The caller's standard input: the message (and for the native door, the envelope before it). */
  readonly inputFd: number;
  /** -v: tell the caller the MTA's queue id on success too (success is silent otherwise). */
  readonly verbose: boolean;
  /**
   * For a request that is not one plain submission (sendmail -bs, -bv, the
   * MTA's own tools): the door serves it itself. Absent for a submission.
   */
  readonly serveOtherwise?: (services: DoorServices) => Promise<JobResult>;
  /** How the submission reads its envelope and message (one submission; called once). */
  intake(): Intake;
}

/** What the flow lends a door that serves a request itself (flow.ts). */
export interface DoorServices {
  readonly config: DaemonConfig;
  readonly downstream: Downstream;
  readonly caller: CallerIdentity;
  readonly grant: Grant;
  readonly fileReads: Semaphore;
  readonly hostName: string;
  /** Aborted when the helper goes away or the daemon stops. */
  readonly signal: AbortSignal;
  readonly log: Logger;
  /** Runs one submission of this door's with `intake` on `message`, logged (as `label`) and counted as one. */
  submit(intake: Intake, message: Readable, label: string): Promise<JobResult>;
}

/** What the submission gives the door's intake to read with. */
export interface IntakeIo {
  readonly config: DaemonConfig;
  readonly caller: CallerIdentity;
  readonly grant: Grant;
  readonly fileReads: Semaphore;
  readonly spool: SpoolSpace;
  /** Aborted when the submission is (caller gone, shutdown). */
  readonly signal: AbortSignal;
  /** Opens the caller's message fd under the door's input limits; the submission releases it. */
  openInput(): Promise<Readable>;
  /** Whether the message fd is a regular file (read when wanted, never drained ahead). */
  inputIsRegularFile(): boolean;
  /** Ends the submission at once with `reason` (a held message whose hold failed). */
  abort(reason: Error): void;
  /** The caller's rights over an envelope it asserted (authorization list); throws SubmissionError. */
  checkRights(envelope: Envelope): void;
  /** The caller's right to an envelope sender; throws SubmissionError. */
  checkSender(sender: Envelope['sender']): void;
}

/** A door's way of reading one submission's envelope and message. */
export interface Intake {
  /** Whether the envelope comes in the message stream itself, ahead of the message (the native block). */
  readonly envelopeInStream: boolean;
  /** Rights that can be checked before any input is read (rights before bytes); throws SubmissionError. */
  checkBeforeInput(grant: Grant, caller: CallerIdentity): void;
  /** Reads what comes before the message and gives the message stream; throws SubmissionError. */
  read(io: IntakeIo): Promise<IntakeResult>;
  /** Puts away what read() left open (a held message, an envelope fd never read). Never throws twice for one thing. */
  release(): void;
  /** A message error in the caller's own terms (its line numbers), when they differ from the message as sent. */
  inCallerTerms?(error: SubmissionError): SubmissionError;
}

export interface IntakeResult {
  readonly message: Readable;
  /** The envelope, when the door read it apart from the message; absent: the message stream begins with it. */
  readonly envelope?: Envelope;
  /** The limits the message is validated under, when they are not the configured ones. */
  readonly parserLimits?: Limits;
  /** Locally submitted mail: the MTA completes its header as for its own sendmail. */
  readonly localSubmission?: boolean;
}
