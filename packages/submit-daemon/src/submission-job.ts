/**
 * One submission, from an accepted request to the MTA's verdict: the
 * front door's intake reads the envelope and message from what the caller
 * passed, the message is validated while it streams, the caller's rights
 * over what it asserted are checked, then the downstream takes it. Never
 * throws: every path ends in an outcome of the status table, and every
 * resource (fds, the parser, the downstream transaction) is released
 * whatever happens.
 *
 * The front doors differ only in where the envelope comes from (their
 * Intake, 3-intake/front-door.ts): the native block before the message,
 * the qmail-queue envelope fd, or the sendmail command line and header
 * section. From the envelope on, the path is the same.
 *
 * Rights before bytes: whatever can be checked about the caller without its
 * input is checked before the first octet is read: a grant that allows no
 * sender at all ends here, and so does what the door knows from the request
 * alone (the qmail-queue door's TCPREMOTE* facts need the `client`
 * capability). The rights that depend on the envelope are checked as soon
 * as it is read, before anything goes to the MTA.
 */
import type { Readable } from 'node:stream';
import {
  describeStatus,
  firstUnpermittedAttribute,
  isSubmissionError,
  senderPermitted,
  SubmissionError,
  SubmissionParser,
  type CallerIdentity,
  type Envelope,
  type Grant,
  type MessageStats,
  type Outcome,
} from '@mailsubmit/shared';
import { closeFd, fdKind } from '@mailsubmit/socket-addon';
import type { DaemonConfig } from './config/daemon-config.ts';
import type { Intake, IntakeIo } from './3-intake/front-door.ts';
import { openPassedInput, type PassedInput } from './3-intake/passed-fd-input.ts';
import { daemonSpoolSpace, type SpoolSpace } from './3-intake/spool-space.ts';
import { readAhead } from './4-validate/message-lookahead.ts';
import type { Delivery, DeliveryRequest, Downstream } from './5-transport/downstream.ts';
import { QUEUED_OUTCOMES } from './5-transport/local-queue/queue-policy.ts';
import type { QueueRunner } from './5-transport/local-queue/queue-runner.ts';
import type { QueueEntry } from './5-transport/local-queue/queue-file-format.ts';
import { watchOneShotBody } from './5-transport/one-shot-body.ts';
import { withoutDelivered } from './5-transport/local-queue/partial-delivery.ts';
import { failedAt } from './5-transport/downstream-set.ts';
import { feedStream } from './util/feed-stream.ts';
import type { Semaphore } from './util/semaphore.ts';

export interface JobContext {
  readonly config: DaemonConfig;
  readonly downstream: Downstream;
  readonly fileReads: Semaphore;
  readonly caller: CallerIdentity;
  readonly grant: Grant;
  /** The spool's ledger (quotas); the daemon's one by default. */
  readonly spool?: SpoolSpace;
  /** Where the message waits when the MTA cannot take it now; absent or null: nowhere, the caller gets 75. */
  readonly queue?: QueueOffer | null;
}

/** The local queue, offered to a submission its policy lets wait there (5-transport/local-queue/queue-policy.ts). */
export interface QueueOffer {
  readonly runner: QueueRunner;
  /** The front door's name, kept with the message. */
  readonly frontDoor: string;
}

export interface JobResult {
  readonly outcome: Outcome;
  /** The one line for the caller: status text and detail. */
  readonly text: string;
  readonly envelope?: Envelope;
  readonly stats?: MessageStats;
  readonly queueId?: string;
  /** The local queue's id, when the message waits there (outcome queued-locally). */
  readonly localQueueId?: string;
  readonly omitted?: readonly string[];
  readonly mtaText?: string;
  /** Which downstream took it (or, failed, gave the answer), where several are configured, and its session's TLS. */
  readonly via?: string;
  readonly downstreamTls?: Delivery['tls'];
  /** The helper's exit status when it is not the outcome's own (sendmail modes other than delivery). */
  readonly exitCode?: number;
  /** The caller's terminal gets no line (success without -v); the text is still logged. */
  readonly silent?: boolean;
}

/** A message the MTA could not take now, waiting in the local queue. */
interface WaitingInQueue {
  readonly localQueueId: string;
  readonly reason: string;
}

export class SubmissionJob {
  private input: PassedInput | null = null;
  private parser: SubmissionParser | null = null;
  private abortReason: SubmissionError | null = null;
  private readonly aborted = new AbortController();
  private inputOpened = false;
  /** What failed while cleaning up after run(); the outcome stands, and the daemon logs these. */
  readonly cleanupErrors: Error[] = [];

  /**
   * Takes ownership of `source` and of whatever `intake` holds: run() closes them all.
   * `source` is the caller's message fd, or a stream already open (a message of a sendmail -bs session).
   */
  constructor(
    private readonly context: JobContext,
    private readonly source: number | Readable,
    private readonly intake: Intake,
  ) {}

  /** Stops the submission (caller gone, shutdown): the transaction is abandoned without the dot. */
  abort(reason: SubmissionError): void {
    this.abortReason ??= reason;
    this.aborted.abort(reason);
    this.parser?.destroy(reason);
  }

  async run(): Promise<JobResult> {
    let envelope: Envelope | undefined;
    try {
      const { config, grant, caller } = this.context;
      const limits = config.limits;
      // Before the first octet is read or held.
      checkAnySender(grant, caller);
      this.intake.checkBeforeInput(grant, caller);
      const read = await this.intake.read(this.intakeIo());
      envelope = read.envelope;
      if (this.abortReason) throw this.abortReason;
      const parserLimits = read.parserLimits ?? limits;
      const parser = new SubmissionParser(envelope !== undefined ? { limits: parserLimits, envelope } : { limits });
      this.parser = parser;
      feedStream(read.message, parser);

      const head = await readAhead(parser);
      if (envelope === undefined) {
        envelope = parser.parsedEnvelope ?? undefined;
        if (envelope === undefined) throw new SubmissionError('internal', 'the message began before the envelope was complete');
        checkEnvelopeRights(grant, caller, envelope);
      }

      const request: DeliveryRequest = {
        envelope,
        body: head.body,
        eightBit: head.complete ? (parser.stats?.eightBit ?? true) : true,
        ...(envelope.size !== undefined ? { sizeEstimate: envelope.size } : head.complete ? { sizeEstimate: head.octets } : {}),
        // A message read ahead in full no longer flows through the parser: the abort must reach the transaction itself.
        signal: this.aborted.signal,
        ...(read.localSubmission === true ? { localSubmission: true } : {}),
        // Read whole: another downstream may be given the same bytes after a temporary failure.
        ...(head.replay !== null ? { replay: head.replay } : {}),
      };
      const queue = this.context.queue ?? null;
      const delivered =
        queue === null
          ? await this.context.downstream.deliver(request)
          : head.replay === null
            ? await this.throughTheQueue(queue, request)
            : await this.deliverOrQueue(queue, request, head.replay);
      const stats = parser.stats ?? undefined;
      if ('localQueueId' in delivered) {
        return {
          outcome: 'queued-locally',
          text: describeStatus('queued-locally', `${delivered.localQueueId}: ${delivered.reason}`),
          envelope,
          ...(stats ? { stats } : {}),
          localQueueId: delivered.localQueueId,
          // Logged as mta_reply: why the MTA did not take it.
          mtaText: delivered.reason,
        };
      }
      return {
        outcome: 'ok',
        text: delivered.queueId ? `queued as ${delivered.queueId}` : 'queued',
        envelope,
        ...(stats ? { stats } : {}),
        ...(delivered.queueId !== undefined ? { queueId: delivered.queueId } : {}),
        omitted: delivered.omitted,
        mtaText: delivered.text,
        ...(delivered.via !== undefined ? { via: delivered.via } : {}),
        ...(delivered.tls !== undefined ? { downstreamTls: delivered.tls } : {}),
      };
    } catch (err) {
      const error = this.abortReason ?? toSubmissionError(err);
      const failure = this.intake.inCallerTerms?.(error) ?? error;
      const stats = this.parser?.stats ?? undefined;
      const via = failedAt(err);
      return {
        outcome: failure.outcome,
        text: describeStatus(failure.outcome, failure.message),
        ...(envelope ? { envelope } : {}),
        ...(stats ? { stats } : {}),
        ...(via !== undefined ? { via } : {}),
      };
    } finally {
      // Each step on its own: a failing cleanup must neither skip the others nor turn the
      // outcome (above all the MTA's 250) into a failure. The daemon logs what failed.
      const steps = [
        () => this.parser?.destroy(),
        () => this.intake.release(),
        () => this.input?.release(),
        // openPassedInput owns the fd once called; before that it is still ours.
        () => (this.inputOpened || typeof this.source !== 'number' ? undefined : closeFd(this.source)),
      ];
      for (const step of steps) {
        try {
          step();
        } catch (err) {
          this.cleanupErrors.push(err instanceof Error ? err : new Error(String(err)));
        }
      }
    }
  }

  /**
   * A message read ahead in full: straight to the MTA; if the MTA cannot
   * take it now, into the local queue from what was read ahead.
   */
  private async deliverOrQueue(queue: QueueOffer, request: DeliveryRequest, replay: () => AsyncIterable<Uint8Array>): Promise<Delivery | WaitingInQueue> {
    try {
      const unreachable = queue.runner.mtaUnreachable;
      // Known down: no connect attempt of our own, the queue's probe finds the MTA back.
      if (unreachable !== null) throw unreachable;
      return await this.context.downstream.deliver(request);
    } catch (err) {
      const failure = toSubmissionError(err);
      if (this.abortReason !== null || !QUEUED_OUTCOMES.has(failure.outcome)) throw failure;
      // An LMTP server that delivered to some recipients: only the others are queued.
      const waiting = withoutDelivered(request.envelope, failure);
      const localQueueId = await queue.runner.enqueue(this.queueEntry(queue, { ...request, envelope: waiting.envelope }), replay(), waiting.error);
      return { localQueueId, reason: failure.message };
    }
  }

  /**
   * A longer message cannot be read twice from the caller: it is committed
   * to the local queue as it is read (and validated), then tried from
   * there at once. The caller hears the MTA's verdict when there is one in
   * time, else that it waits in the queue. If the queue refuses it before
   * reading a byte (its limits), it goes straight to the MTA instead.
   */
  private async throughTheQueue(queue: QueueOffer, request: DeliveryRequest): Promise<Delivery | WaitingInQueue> {
    const { body, taken } = watchOneShotBody(request.body);
    const unreachable = queue.runner.mtaUnreachable;
    if (unreachable !== null) {
      const localQueueId = await queue.runner.enqueue(this.queueEntry(queue, request), body, unreachable);
      return { localQueueId, reason: unreachable.message };
    }
    let localQueueId: string;
    try {
      localQueueId = await queue.runner.enqueue(this.queueEntry(queue, request), body, null);
    } catch (err) {
      if (taken() || toSubmissionError(err).outcome !== 'spool-full') throw err;
      return this.context.downstream.deliver(request);
    }
    // From here the message is the queue's: its delivery no longer depends on this caller.
    const attempt = await queue.runner.attemptNow(localQueueId);
    if (attempt.kind === 'delivered') return attempt.delivery;
    if (attempt.kind === 'refused') throw attempt.error;
    return { localQueueId, reason: attempt.error.message };
  }

  private queueEntry(queue: QueueOffer, request: DeliveryRequest): QueueEntry {
    const { caller } = this.context;
    return {
      envelope: request.envelope,
      caller: { uid: caller.uid, user: caller.userName, frontDoor: queue.frontDoor, arrivalTime: new Date() },
      eightBit: request.eightBit,
      localSubmission: request.localSubmission === true,
    };
  }

  /** What the door's intake reads with. */
  private intakeIo(): IntakeIo {
    const { config, caller, grant, fileReads } = this.context;
    return {
      config,
      caller,
      grant,
      fileReads,
      spool: this.context.spool ?? daemonSpoolSpace,
      signal: this.aborted.signal,
      openInput: () => this.openInput(),
      inputIsRegularFile: () => typeof this.source === 'number' && isRegularFile(this.source),
      abort: (reason) => this.abort(isSubmissionError(reason) ? reason : toSubmissionError(reason)),
      checkRights: (envelope) => checkEnvelopeRights(grant, caller, envelope),
      checkSender: (sender) => checkSenderRight(grant, caller, sender),
    };
  }

  /** Opens the message fd (once); from here on it is released (and closed) by run(). */
  private async openInput(): Promise<Readable> {
    if (this.abortReason) throw this.abortReason;
    if (this.input !== null) return this.input.stream;
    this.inputOpened = true;
    // A -bs message: the session reading the caller's fd holds the limits and deadlines.
    if (typeof this.source !== 'number') return this.source;
    const { limits, timeouts } = this.context.config;
    this.input = await openPassedInput(
      this.source,
      {
        // The native door's envelope block comes before the message on the same fd.
        maxOctets: (this.intake.envelopeInStream ? limits.maxEnvelopeOctets : 0) + limits.maxMessageOctets + limits.maxLineOctets + 2,
        deadlineMs: timeouts.input,
        idleMs: timeouts.inputIdle,
      },
      this.context.fileReads,
    );
    return this.input.stream;
  }
}

/** A grant that allows no envelope sender at all ends the submission before any input. */
function checkAnySender(grant: Grant, caller: CallerIdentity): void {
  if (grant.senders.length === 0) {
    throw new SubmissionError('attribute-not-permitted', `no envelope sender is permitted to ${caller.userName ?? `uid ${caller.uid}`}`, { attribute: 'sender' });
  }
}

/** What the caller asserted must be covered by its capabilities (authorization list), the sender included. */
export function checkEnvelopeRights(grant: Grant, caller: CallerIdentity, envelope: Envelope): void {
  const unpermitted = firstUnpermittedAttribute(grant, envelope.asserted);
  if (unpermitted !== null) {
    throw new SubmissionError(
      'attribute-not-permitted',
      `asserting ${unpermitted.attribute} needs the "${unpermitted.capability}" capability (mailsubmitctl allow ${caller.userName ?? `uid:${caller.uid}`} ${unpermitted.capability})`,
      { attribute: unpermitted.attribute },
    );
  }
  checkSenderRight(grant, caller, envelope.sender);
}

/** The sender must be one the caller may use. */
export function checkSenderRight(grant: Grant, caller: CallerIdentity, sender: Envelope['sender']): void {
  if (!senderPermitted(grant, caller, sender.text)) {
    throw new SubmissionError('attribute-not-permitted', `may not use the envelope sender <${sender.text}>`, { attribute: 'sender' });
  }
}

function isRegularFile(fd: number): boolean {
  try {
    return fdKind(fd).kind === 'file';
  } catch {
    // openPassedInput refuses it with the right words.
    return false;
  }
}

function toSubmissionError(err: unknown): SubmissionError {
  if (isSubmissionError(err)) return err;
  return new SubmissionError('internal', err instanceof Error ? err.message : String(err));
}
