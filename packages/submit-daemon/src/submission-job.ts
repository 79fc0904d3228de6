/**
 * One submission, from a checked request to the MTA's verdict:
 * intake of the passed fd, validation while streaming, the caller's rights
 * over what it asserted, then delivery. Never throws: every path ends in an
 * outcome of the status table, and every resource (fds, the parser, the
 * downstream transaction) is released whatever happens.
 *
 * The front doors differ only in where the envelope comes from: the native
 * block before the message, the qmail-queue fd, or the sendmail command line
 * and header section (3-intake/sendmail/sendmail-intake.ts). From the envelope on, the
 * path is the same.
 *
 * Rights before bytes: whatever can be checked about the caller without its
 * input is checked before the first octet is read (checkCallerRights): the
 * qmail-queue door's TCPREMOTE* facts need the `client` capability, and a
 * grant that allows no sender at all ends here. The rights that depend on
 * the envelope are checked as soon as it is read, before anything goes to
 * the MTA. A qmail-queue message held while its envelope is read ends the
 * submission at once when the hold fails (over the size limit, spool full),
 * in the door's own codes.
 */
import { pipeline, type Readable } from 'node:stream';
import {
  describeStatus,
  firstUnpermittedAttribute,
  isSubmissionError,
  senderPermitted,
  sendmailSender,
  SubmissionError,
  SubmissionParser,
  type CallerIdentity,
  type Envelope,
  type Grant,
  type HeaderCompletion,
  type MessageStats,
  type Outcome,
  type QmailClientFacts,
  type SendmailCommand,
} from '@mailsubmit/shared';
import type { DaemonConfig } from './config/daemon-config.ts';
import type { Downstream } from './5-transport/downstream.ts';
import { closeFd, fdKind } from '@mailsubmit/socket-addon';
import { holdMessage, type HeldMessage } from './3-intake/held-message.ts';
import { openPassedInput, type InputLimits, type PassedInput } from './3-intake/passed-fd-input.ts';
import { readQmailEnvelope } from './3-intake/qmail-queue/qmail-envelope.ts';
import { readSendmailInput } from './3-intake/sendmail/sendmail-intake.ts';
import type { Semaphore } from './util/semaphore.ts';
import { readAhead } from './4-validate/message-lookahead.ts';
import { daemonSpoolSpace, type SpoolSpace } from './3-intake/spool-space.ts';

export interface JobContext {
  readonly config: DaemonConfig;
  readonly downstream: Downstream;
  readonly fileReads: Semaphore;
  readonly caller: CallerIdentity;
  readonly grant: Grant;
  /** The spool's ledger (quotas); the daemon's one by default. */
  readonly spool?: SpoolSpace;
}

/**
 * Who completes a sendmail-door header (shared/sendmail/sendmail-message.ts):
 * Postfix's cleanup where XFORWARD can tell smtpd the mail is local, the
 * daemon where it cannot (LMTP, the sendmail transport's -G, xforward off).
 */
function headerCompletion(config: DaemonConfig): HeaderCompletion {
  return config.downstream.transport === 'smtp' && config.downstream.xforward ? 'mta' : 'daemon';
}

/** The attribute each qmail-queue client fact becomes (shared/envelope/qmail-envelope.ts). */
const QMAIL_CLIENT_ATTRIBUTES: Readonly<Record<keyof QmailClientFacts, string>> = {
  name: 'client_name',
  address: 'client_address',
  port: 'client_port',
};

/** qmail-queue mode: the envelope comes on its own fd, before the message. */
export interface QmailInput {
  readonly envelopeFd: number;
  readonly client: QmailClientFacts;
}

export interface JobResult {
  readonly outcome: Outcome;
  /** The one line for the caller: status text and detail. */
  readonly text: string;
  readonly envelope?: Envelope;
  readonly stats?: MessageStats;
  readonly queueId?: string;
  readonly omitted?: readonly string[];
  readonly mtaText?: string;
  /** The helper's exit status when it is not the outcome's own (sendmail modes other than delivery). */
  readonly exitCode?: number;
}

export class SubmissionJob {
  private input: PassedInput | null = null;
  private parser: SubmissionParser | null = null;
  private held: HeldMessage | null = null;
  private abortReason: SubmissionError | null = null;
  private readonly aborted = new AbortController();
  private inputOpened = false;
  /** What failed while cleaning up after run(); the outcome stands, and the daemon logs these. */
  readonly cleanupErrors: Error[] = [];
  private envelopeFdTaken = false;
  /** sendmail mode: the message's lines as sent, back to the caller's (Bcc lines removed, fields added). */
  private callerLine: ((line: number) => number) | null = null;

  /**
   * Takes ownership of `inputFd` and of the qmail envelope fd: both are closed by run().
   * `inputFd` may instead be a stream already open (a message of a sendmail -bs session).
   */
  constructor(
    private readonly context: JobContext,
    private readonly inputFd: number | Readable,
    private readonly qmail?: QmailInput,
    private readonly sendmail?: SendmailCommand,
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
      const { config } = this.context;
      const limits = config.limits;
      const { qmail, sendmail } = this;
      let parserLimits = limits;
      const inputLimits = {
        maxOctets: (qmail || sendmail ? 0 : limits.maxEnvelopeOctets) + limits.maxMessageOctets + limits.maxLineOctets + 2,
        deadlineMs: config.timeouts.input,
        idleMs: config.timeouts.inputIdle,
      };
      let message: Readable;
      // Before the first octet is read or held.
      this.checkCallerRights();
      if (qmail !== undefined) {
        // A pipe is drained while the envelope is read (3-intake/held-message.ts); a file
        // waits, so that no submission holds one file-read slot while waiting for another.
        const held = typeof this.inputFd === 'number' && isRegularFile(this.inputFd) ? null : this.holdQmailMessage(await this.openInput(inputLimits));
        this.held = held;
        this.envelopeFdTaken = true;
        envelope = await readQmailEnvelope(
          qmail.envelopeFd,
          { limits, client: qmail.client, deadlineMs: config.timeouts.input, idleMs: config.timeouts.inputIdle, signal: this.aborted.signal },
          this.context.fileReads,
        );
        this.checkRights(envelope);
        message = held !== null ? held.take() : await this.openInput(inputLimits);
      } else if (sendmail !== undefined) {
        const { caller } = this.context;
        // The sender is known from the command line: refuse it before reading any mail.
        this.checkSender(sendmailSender(sendmail, caller));
        const intake = await readSendmailInput(await this.openInput(inputLimits), {
          command: sendmail,
          caller: { userName: caller.userName, uid: caller.uid, fullName: caller.fullName ?? null },
          limits,
          completion: headerCompletion(config),
          signal: this.aborted.signal,
        });
        envelope = intake.envelope;
        this.callerLine = intake.callerLine;
        this.checkRights(envelope);
        message = intake.message;
        // The limits are the caller's: what the rewrite added does not count against them.
        parserLimits = {
          ...limits,
          maxHeaderOctets: limits.maxHeaderOctets + intake.addedOctets,
          maxMessageOctets: limits.maxMessageOctets + intake.addedOctets,
        };
      } else {
        message = await this.openInput(inputLimits);
      }
      if (this.abortReason) throw this.abortReason;
      const parser = new SubmissionParser(envelope !== undefined ? { limits: parserLimits, envelope } : { limits });
      this.parser = parser;
      pipeline(message, parser, () => undefined);

      const head = await readAhead(parser);
      if (envelope === undefined) {
        envelope = parser.parsedEnvelope ?? undefined;
        if (envelope === undefined) throw new SubmissionError('internal', 'the message began before the envelope was complete');
        this.checkRights(envelope);
      }

      const delivery = await this.context.downstream.deliver({
        envelope,
        body: head.body,
        eightBit: head.complete ? (parser.stats?.eightBit ?? true) : true,
        ...(envelope.size !== undefined ? { sizeEstimate: envelope.size } : head.complete ? { sizeEstimate: head.octets } : {}),
        // A message read ahead in full no longer flows through the parser: the abort must reach the transaction itself.
        signal: this.aborted.signal,
        // The sendmail door's message is locally submitted mail: Postfix completes its header as for its own sendmail.
        ...(sendmail !== undefined ? { localSubmission: true } : {}),
      });
      const stats = parser.stats ?? undefined;
      return {
        outcome: 'ok',
        text: delivery.queueId ? `queued as ${delivery.queueId}` : 'queued',
        envelope,
        ...(stats ? { stats } : {}),
        ...(delivery.queueId !== undefined ? { queueId: delivery.queueId } : {}),
        omitted: delivery.omitted,
        mtaText: delivery.text,
      };
    } catch (err) {
      const failure = this.inCallerLines(this.abortReason ?? toSubmissionError(err));
      const stats = this.parser?.stats ?? undefined;
      return {
        outcome: failure.outcome,
        text: describeStatus(failure.outcome, failure.message),
        ...(envelope ? { envelope } : {}),
        ...(stats ? { stats } : {}),
      };
    } finally {
      // Each step on its own: a failing cleanup must neither skip the others nor turn the
      // outcome (above all the MTA's 250) into a failure. The daemon logs what failed.
      const steps = [
        () => this.parser?.destroy(),
        () => this.held?.release(),
        () => this.input?.release(),
        // openPassedInput owns the fd once called; before that (a refused qmail envelope) it is still ours.
        () => (this.inputOpened || typeof this.inputFd !== 'number' ? undefined : closeFd(this.inputFd)),
        // Likewise the envelope fd, until readQmailEnvelope has it (a caller refused before any reading).
        () => (this.qmail !== undefined && !this.envelopeFdTaken ? closeFd(this.qmail.envelopeFd) : undefined),
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
   * The qmail-queue message, held while the envelope is read: counted
   * against the spool's quotas, and ending the submission at once when the
   * hold fails, since the caller (qmail.c writes the message first) would
   * otherwise sit in its write until the input deadline blamed it.
   */
  private holdQmailMessage(stream: Readable): HeldMessage {
    const { config, caller } = this.context;
    const { limits } = config;
    const space = this.context.spool ?? daemonSpoolSpace;
    return holdMessage(stream, {
      spoolDirectory: config.spoolDirectory,
      maxOctets: limits.maxMessageOctets,
      claim: space.claim(caller.uid, config.spoolDirectory, {
        quotaPerUid: limits.spoolQuotaPerUid,
        quotaTotal: limits.spoolQuotaTotal,
        minFree: limits.spoolMinFree,
      }),
      onFailure: (error) => this.abort(isSubmissionError(error) ? error : new SubmissionError('input-error', `reading standard input failed: ${error.message}`)),
    });
  }

  /**
   * What the caller may do, as far as it is known before any input: a
   * qmail-queue caller's client facts (from the request, not the input) and
   * whether the grant allows any envelope sender.
   */
  private checkCallerRights(): void {
    const { grant, caller } = this.context;
    if (grant.senders.length === 0) {
      throw new SubmissionError('attribute-not-permitted', `no envelope sender is permitted to ${caller.userName ?? `uid ${caller.uid}`}`, { attribute: 'sender' });
    }
    if (this.qmail === undefined) return;
    const asserted = (Object.keys(this.qmail.client) as (keyof QmailClientFacts)[])
      .filter((fact) => this.qmail?.client[fact] !== undefined)
      .map((fact) => QMAIL_CLIENT_ATTRIBUTES[fact]);
    const unpermitted = firstUnpermittedAttribute(grant, asserted);
    if (unpermitted !== null) {
      throw new SubmissionError(
        'attribute-not-permitted',
        `the client facts (TCPREMOTEIP, TCPREMOTEHOST, TCPREMOTEPORT) assert ${unpermitted.attribute}, which needs the "${unpermitted.capability}" capability (mailsubmitctl allow ${caller.userName ?? `uid:${caller.uid}`} ${unpermitted.capability})`,
        { attribute: unpermitted.attribute },
      );
    }
  }

  /** Opens the message fd; from here on it is released (and closed) by run(). */
  private async openInput(limits: InputLimits): Promise<Readable> {
    if (this.abortReason) throw this.abortReason;
    this.inputOpened = true;
    // A -bs message: the session reading the caller's fd holds the limits and deadlines.
    if (typeof this.inputFd !== 'number') return this.inputFd;
    this.input = await openPassedInput(this.inputFd, limits, this.context.fileReads);
    return this.input.stream;
  }

  /**
   * sendmail mode: a message error names a line of the message as sent;
   * the caller wants its own. Envelope errors (with an attribute) already
   * name the caller's line, and a command-line recipient has none.
   */
  private inCallerLines(error: SubmissionError): SubmissionError {
    const { line, attribute } = error.position;
    if (this.sendmail === undefined || line === undefined) return error;
    if (line === 0) return new SubmissionError(error.outcome, error.detail, attribute !== undefined ? { attribute } : {});
    if (attribute !== undefined || this.callerLine === null) return error;
    const callerLine = this.callerLine(line);
    return callerLine === line ? error : new SubmissionError(error.outcome, error.detail, { line: callerLine });
  }

  private checkRights(envelope: Envelope): void {
    checkEnvelopeRights(this.context.grant, this.context.caller, envelope);
  }

  private checkSender(sender: Envelope['sender']): void {
    checkSenderRight(this.context.grant, this.context.caller, sender);
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
