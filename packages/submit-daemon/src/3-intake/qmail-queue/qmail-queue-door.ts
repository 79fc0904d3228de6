/**
 * The qmail-queue front door, mailsubmit-qmail-queue: qmail-queue(8)'s
 * interface for qmail-smtpd, qpsmtpd and other qmail peers. The message
 * comes on the first fd, the envelope on the second; tcpserver's facts
 * about the remote client (TCPREMOTEIP, TCPREMOTEHOST, TCPREMOTEPORT) come
 * as environment entries; the caller reads qmail's exit codes.
 *
 * qmail-queue callers write the whole message before the envelope
 * (qmail.c), so a message on a pipe is held (held-message.ts, counted
 * against the spool's quotas) while the envelope is read; a regular file
 * is simply read afterwards.
 */
import type { Readable } from 'node:stream';
import {
  firstUnpermittedAttribute,
  isSubmissionError,
  MODE_QMAIL_QUEUE,
  REQUEST_FLAG_ENVELOPE_FD,
  statusOf,
  SubmissionError,
  type CallerIdentity,
  type FrameRequest,
  type Grant,
  type Outcome,
  type QmailClientFacts,
} from '@mailsubmit/shared';
import { closeFd } from '@mailsubmit/socket-addon';
import type { DoorRequest, FrontDoor, Intake, IntakeIo } from '../front-door.ts';
import { holdMessage, type HeldMessage } from '../held-message.ts';
import { readQmailEnvelope } from './qmail-envelope.ts';

/** The environment names the door forwards, and the fact each one is. */
const QMAIL_ENV: Readonly<Record<string, keyof QmailClientFacts>> = {
  TCPREMOTEIP: 'address',
  TCPREMOTEHOST: 'name',
  TCPREMOTEPORT: 'port',
};

/** The attribute each client fact becomes (shared/envelope/qmail-envelope.ts). */
const CLIENT_ATTRIBUTES: Readonly<Record<keyof QmailClientFacts, string>> = {
  name: 'client_name',
  address: 'client_address',
  port: 'client_port',
};

export const qmailQueueDoor: FrontDoor = {
  name: 'qmail-queue',
  mode: MODE_QMAIL_QUEUE,
  accept(request: FrameRequest, fds: readonly number[]): DoorRequest {
    if ((request.flags & REQUEST_FLAG_ENVELOPE_FD) === 0 || fds.length !== 2) {
      throw new SubmissionError(
        fds.length === 0 ? 'no-input' : 'usage',
        `the qmail-queue front door passes two file descriptors (message and envelope); the request carried ${fds.length}`,
      );
    }
    const client: { -readonly [K in keyof QmailClientFacts]: string } = {};
    for (const { name, value } of request.env) {
      const fact = QMAIL_ENV[name];
      if (fact === undefined) throw new SubmissionError('usage', `unexpected environment entry ${name} in the request`);
      // Latin-1 keeps one character per octet, so a non-ASCII octet fails the value's grammar.
      client[fact] = Buffer.from(value).toString('latin1');
    }
    const envelopeFd = fds[1] as number;
    return { door: qmailQueueDoor, inputFd: fds[0] as number, verbose: false, intake: () => qmailIntake(envelopeFd, client) };
  },
  exitStatus(outcome: Outcome): number {
    return statusOf(outcome).qmailCode;
  },
};

/** Takes ownership of `envelopeFd`: read, or closed by release(). */
export function qmailIntake(envelopeFd: number, client: QmailClientFacts): Intake {
  let held: HeldMessage | null = null;
  let envelopeFdTaken = false;
  return {
    envelopeInStream: false,
    checkBeforeInput(grant: Grant, caller: CallerIdentity): void {
      // The client facts come with the request, not the input: refused before any octet is read.
      const asserted = (Object.keys(client) as (keyof QmailClientFacts)[]).filter((fact) => client[fact] !== undefined).map((fact) => CLIENT_ATTRIBUTES[fact]);
      const unpermitted = firstUnpermittedAttribute(grant, asserted);
      if (unpermitted !== null) {
        throw new SubmissionError(
          'attribute-not-permitted',
          `the client facts (TCPREMOTEIP, TCPREMOTEHOST, TCPREMOTEPORT) assert ${unpermitted.attribute}, which needs the "${unpermitted.capability}" capability (mailsubmitctl allow ${caller.userName ?? `uid:${caller.uid}`} ${unpermitted.capability})`,
          { attribute: unpermitted.attribute },
        );
      }
    },
    async read(io: IntakeIo) {
      const { config } = io;
      // A pipe is drained while the envelope is read; a file waits, so that no
      // submission holds one file-read slot while waiting for another.
      held = io.inputIsRegularFile() ? null : holdWhileEnvelopeIsRead(await io.openInput(), io);
      envelopeFdTaken = true;
      const envelope = await readQmailEnvelope(
        envelopeFd,
        { limits: config.limits, client, deadlineMs: config.timeouts.input, idleMs: config.timeouts.inputIdle, signal: io.signal },
        io.fileReads,
      );
      io.checkRights(envelope);
      return { envelope, message: held !== null ? held.take() : await io.openInput() };
    },
    release(): void {
      const hold = held;
      held = null;
      try {
        hold?.release();
      } finally {
        // Until readQmailEnvelope has it (a caller refused before any reading), the envelope fd is ours.
        if (!envelopeFdTaken) {
          envelopeFdTaken = true;
          closeFd(envelopeFd);
        }
      }
    },
  };
}

/**
 * The message, held while the envelope is read: counted against the
 * spool's quotas, and ending the submission at once when the hold fails,
 * since the caller (qmail.c writes the message first) would otherwise sit
 * in its write until the input deadline blamed it.
 */
function holdWhileEnvelopeIsRead(stream: Readable, io: IntakeIo): HeldMessage {
  const { config, caller } = io;
  const { limits } = config;
  return holdMessage(stream, {
    spoolDirectory: config.spoolDirectory,
    maxOctets: limits.maxMessageOctets,
    claim: io.spool.claim(caller.uid, config.spoolDirectory, {
      quotaPerUid: limits.spoolQuotaPerUid,
      quotaTotal: limits.spoolQuotaTotal,
      minFree: limits.spoolMinFree,
    }),
    onFailure: (error) => io.abort(isSubmissionError(error) ? error : new SubmissionError('input-error', `reading standard input failed: ${error.message}`)),
  });
}
