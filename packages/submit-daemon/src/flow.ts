/**
 * One connection from the helper, start to end: the journey of a
 * submission, in order. This is the one place that knows the order; each
 * step lives in its stage's folder:
 *
 *   1-accept     the kernel's word on who is calling (SO_PEERCRED), admission
 *   2-authorize  the authorization list's grant for that uid (inside admission)
 *   1-accept     the request frame and its fds
 *   3-intake     the front door named in the frame accepts the request and
 *                reads the envelope and message (submission-job.ts)
 *   4-validate   the message is checked while it streams (shared/submission)
 *   5-transport  the downstream hands it to the MTA; ok only on its 250
 *   6-reply      the exit status for the door, back to the helper
 *
 * Whatever goes wrong ends in a reply (or, with the caller gone, a log
 * line), never in an exception that reaches the process: one caller must
 * not stop everyone's mail. Config, logging and the tally are services the
 * flow uses (FlowServices); the daemon (daemon.ts) owns them.
 */
import { hostname } from 'node:os';
import type { Readable } from 'node:stream';
import { describeStatus, isSubmissionError, requestModeOf, statusOf, SubmissionError } from '@mailsubmit/shared';
import type { SeqpacketConnection } from '@mailsubmit/socket-addon';
import type { Admission, Admitted } from './1-accept/admission.ts';
import { newSubmissionId } from './1-accept/submission-id.ts';
import { closeAll, receiveRequest, type ReceivedRequest, type RequestBudget } from './1-accept/request-frame.ts';
import type { AuthorizationStore } from './2-authorize/authorization-store.ts';
import type { DoorRequest, FrontDoor, Intake } from './3-intake/front-door.ts';
import { frontDoorFor } from './3-intake/front-doors.ts';
import { checkRequest } from './3-intake/request-check.ts';
import type { DownstreamSet } from './5-transport/downstream-set.ts';
import { queueingAllowed } from './5-transport/local-queue/queue-policy.ts';
import type { QueueRunner } from './5-transport/local-queue/queue-runner.ts';
import { exitStatus, sendCallerReply } from './6-reply/caller-reply.ts';
import type { DaemonConfig } from './config/daemon-config.ts';
import type { InProgress } from './in-progress.ts';
import type { Logger } from './logging/logger.ts';
import type { SubmissionTally } from './metrics/submission-tally.ts';
import { SubmissionJob, type JobResult, type QueueOffer } from './submission-job.ts';
import type { Semaphore } from './util/semaphore.ts';

/** The helper sends its request right after connecting; a silent peer (or one whose request does not come whole) is dropped. */
const REQUEST_TIMEOUT_MS = 10_000;
/**
 * A refused caller's frame is still read, briefly, for its front door alone:
 * a qmail-queue caller must get qmail's exit code for the refusal too.
 */
const REFUSED_REQUEST_TIMEOUT_MS = 1_000;

/** What the daemon lends each connection's flow; config and downstream are the ones in force when asked. */
export interface FlowServices {
  readonly config: DaemonConfig;
  readonly downstream: DownstreamSet;
  /** The local queue; null when the daemon runs without one. */
  readonly queue: QueueRunner | null;
  readonly stopping: boolean;
  readonly authorizations: AuthorizationStore;
  readonly admission: Admission;
  readonly fileReads: Semaphore;
  /** Long requests (command lines over one packet) held by submissions in progress. */
  readonly requestBudget: RequestBudget;
  readonly inProgress: InProgress;
  readonly tally: SubmissionTally;
  readonly log: Logger;
}

/** What a request came to, and the door whose exit codes the caller reads (null: not known). */
interface Ending {
  readonly result: JobResult;
  readonly door: FrontDoor | null;
}

export async function serveConnection(connection: SeqpacketConnection, services: FlowServices): Promise<void> {
  const started = process.hrtime.bigint();
  const sid = newSubmissionId();
  const { log } = services;
  // An 'error' event nobody listens to would be thrown from the addon's callback.
  connection.on('error', (err) => log.debug({ sid, err: err.message }, 'connection error'));

  // 1. Accept: the kernel's word on the caller.
  let credentials;
  try {
    credentials = connection.peerCredentials();
  } catch (err) {
    closeQuietly(connection);
    log.warn({ sid, err: (err as Error).message }, 'no peer credentials; connection dropped');
    return;
  }
  const context = { sid, uid: credentials.uid, pid: credentials.pid };

  // 2. Authorize: admission asks the authorization list, and counts the caller in.
  let admitted: Admitted;
  try {
    if (services.stopping) throw new SubmissionError('shutting-down', 'mailsubmitd is stopping; try again shortly');
    // Logs a list that became unusable (once); admission then answers 75 until it is fixed.
    services.authorizations.refresh();
    admitted = services.admission.admit(credentials);
  } catch (err) {
    reply(connection, services, context, started, { result: failure(err), door: await refusedCallerDoor(connection) });
    return;
  }
  try {
    let ending: Ending;
    try {
      ending = await receiveAndRun(connection, services, admitted, credentials.uid);
    } catch (err) {
      ending = { result: failure(err), door: null };
    }
    // 6. Reply.
    reply(connection, services, { ...context, user: admitted.caller.userName }, started, ending);
  } finally {
    services.admission.release(credentials.uid);
  }
}

/** The request frame (1-accept), then its front door (3-intake) and what the door makes of it. */
async function receiveAndRun(connection: SeqpacketConnection, services: FlowServices, admitted: Admitted, uid: number): Promise<Ending> {
  let frame: ReceivedRequest;
  try {
    frame = await receiveRequest(connection, { timeoutMs: REQUEST_TIMEOUT_MS, uid, budget: services.requestBudget });
  } catch (err) {
    return { result: failure(err), door: null };
  }
  try {
    let request: DoorRequest;
    try {
      // fds the kernel could not install here are the daemon's shortage, not a malformed request.
      if (frame.flags.fdsLost) throw new SubmissionError('overload', 'mailsubmitd is out of file descriptors; try again shortly');
      if (frame.refusal !== null) throw frame.refusal;
      request = checkRequest(frame.data, frame.fds, frame.flags);
    } catch (err) {
      closeAll(frame.fds);
      return { result: failure(err), door: doorOf(frame) };
    }
    const result = request.serveOtherwise !== undefined ? await serveAtTheDoor(connection, services, admitted, request) : await submit(connection, services, admitted, request);
    return { result, door: request.door };
  } finally {
    frame.release();
  }
}

/** 3-5. One submission: the door's intake, validation, transport (submission-job.ts). */
async function submit(connection: SeqpacketConnection, services: FlowServices, admitted: Admitted, request: DoorRequest): Promise<JobResult> {
  const { config } = services;
  // Every wait for a file-read slot ends by the input deadline, or at once when the caller goes.
  const gone = new AbortController();
  const fileReads = services.fileReads.forWaiter({
    signal: gone.signal,
    timeoutMs: config.timeouts.input,
    timeoutError: () => new SubmissionError('overload', `busy: no file-read slot came free within ${config.timeouts.input / 1000} s (limits.max_file_reads = ${services.fileReads.capacity})`),
  });
  const downstream = services.downstream.forRoute({ door: request.door.name, caller: admitted.caller.userName });
  const job = new SubmissionJob({ config, downstream, fileReads, ...admitted, queue: queueOffer(services, admitted, request) }, request.inputFd, request.intake());
  const onGone = () => {
    const reason = new SubmissionError('caller-gone', 'the mailsubmit helper went away before the message was committed');
    gone.abort(reason);
    job.abort(reason);
  };
  connection.once('end', onGone);
  try {
    const result = await services.inProgress.run(job, () => job.run());
    for (const err of job.cleanupErrors) services.log.warn({ err: err.message, outcome: result.outcome }, 'cleanup after a submission failed; its outcome stands');
    // Success (either commitment) is silent on the caller's terminal unless it asked with -v.
    return statusOf(result.outcome).exitCode === 0 && !request.verbose ? { ...result, silent: true } : result;
  } finally {
    connection.off('end', onGone);
  }
}

/**
 * A request its door serves itself (sendmail -bs, -bv, the MTA's tools):
 * each message it takes is a submission of its own, logged and counted as one.
 */
async function serveAtTheDoor(connection: SeqpacketConnection, services: FlowServices, admitted: Admitted, request: DoorRequest): Promise<JobResult> {
  const { config, log } = services;
  const door = request.door;
  const downstream = services.downstream.forRoute({ door: door.name, caller: admitted.caller.userName });
  const gone = new AbortController();
  const onGone = () => gone.abort(new SubmissionError('caller-gone', 'the mailsubmit helper went away'));
  connection.once('end', onGone);
  const fileReads = services.fileReads.forWaiter({ signal: gone.signal, timeoutMs: config.timeouts.input, timeoutError: () => new SubmissionError('overload', 'busy: no file-read slot came free') });
  const jobContext = { config, downstream, fileReads, ...admitted, queue: queueOffer(services, admitted, request) };
  const submitOne = async (intake: Intake, message: Readable, label: string): Promise<JobResult> => {
    const started = process.hrtime.bigint();
    const job = new SubmissionJob(jobContext, message, intake);
    const abort = () => job.abort(gone.signal.reason as SubmissionError);
    gone.signal.addEventListener('abort', abort, { once: true });
    try {
      const result = await services.inProgress.run(job, () => job.run());
      services.tally.ended({ uid: admitted.caller.uid, user: admitted.caller.userName, door: label }, result, exitStatus(result.outcome, door), Number(process.hrtime.bigint() - started) / 1e6, null);
      return result;
    } finally {
      gone.signal.removeEventListener('abort', abort);
    }
  };
  try {
    return await services.inProgress.serve(gone, () =>
      (request.serveOtherwise as NonNullable<DoorRequest['serveOtherwise']>)({ config, downstream, ...admitted, fileReads, hostName: hostname(), signal: gone.signal, log, submit: submitOne }),
    );
  } finally {
    connection.off('end', onGone);
  }
}

/** The local queue, if this caller at this door may wait there (queue-policy.ts). */
function queueOffer(services: FlowServices, admitted: Admitted, request: DoorRequest): QueueOffer | null {
  const runner = services.queue;
  if (runner === null || !queueingAllowed(request.door.name, admitted.grant, services.config)) return null;
  return { runner, frontDoor: request.door.name };
}

/**
 * Reply, then account: each step on its own, so that a failure in one (a
 * reply nobody reads, a logger that throws) neither skips the other nor
 * escapes. The outcome was decided before; nothing here changes it.
 */
function reply(connection: SeqpacketConnection, services: FlowServices, context: Record<string, unknown>, started: bigint, ending: Ending): void {
  const { result, door } = ending;
  const status = result.exitCode ?? exitStatus(result.outcome, door);
  let replyError: Error | null;
  try {
    replyError = sendCallerReply(connection, status, result.outcome, result.silent === true ? '' : result.text);
  } catch (err) {
    replyError = err instanceof Error ? err : new Error(String(err));
    closeQuietly(connection);
  }
  services.tally.ended(context, result, status, Number(process.hrtime.bigint() - started) / 1e6, replyError);
}

function failure(err: unknown): JobResult {
  const error = isSubmissionError(err) ? err : new SubmissionError('internal', err instanceof Error ? err.message : String(err));
  return { outcome: error.outcome, text: describeStatus(error.outcome, error.message) };
}

function closeQuietly(connection: SeqpacketConnection): void {
  try {
    connection.close();
  } catch {
    // Already gone.
  }
}

/** The front door a request names, when it can be read at all (its first packet is enough). */
function doorOf(frame: { readonly data: Buffer }): FrontDoor | null {
  return frontDoorFor(requestModeOf(frame.data)) ?? null;
}

/** The front door of a caller refused before its request was read; its fds are closed unread. */
async function refusedCallerDoor(connection: SeqpacketConnection): Promise<FrontDoor | null> {
  try {
    const frame = await receiveRequest(connection, { timeoutMs: REFUSED_REQUEST_TIMEOUT_MS });
    closeAll(frame.fds);
    return doorOf(frame);
  } catch {
    return null;
  }
}
