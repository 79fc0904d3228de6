/**
 * The sendmail front door, mailsubmit-sendmail(8): Postfix's sendmail(1)
 * command line, the message on standard input, and standard output for
 * the modes that write to it (-bs its SMTP replies, -bv its one line).
 *
 * The envelope is the command line plus, with -t, the header section
 * (sendmail-intake.ts). A command line that is not a delivery is served
 * here and not as a submission (sendmail-modes.ts): -bs, -bv, -bh and the
 * MTA's own tools. A bad command line exits 75, as Postfix's sendmail does.
 */
import type { Readable } from 'node:stream';
import {
  EX_TEMPFAIL,
  MODE_SENDMAIL,
  parseSendmailCommand,
  REQUEST_FLAG_ENVELOPE_FD,
  senderPermitted,
  sendmailSender,
  statusOf,
  SubmissionError,
  type FrameRequest,
  type HeaderCompletion,
  type Outcome,
  type SendmailCommand,
} from '@mailsubmit/shared';
import { closeFd } from '@mailsubmit/socket-addon';
import type { DaemonConfig, DownstreamTarget } from '../../config/daemon-config.ts';
import type { DoorRequest, DoorServices, FrontDoor, Intake, IntakeIo, IntakeResult } from '../front-door.ts';
import type { JobResult } from '../../submission-job.ts';
import { readSendmailInput } from './sendmail-intake.ts';
import { sendmailModeResult, serveSmtpMode, serveVerifyMode } from './sendmail-modes.ts';

export const sendmailDoor: FrontDoor = {
  name: 'sendmail',
  mode: MODE_SENDMAIL,
  accept(request: FrameRequest, fds: readonly number[]): DoorRequest {
    if (request.env.length > 0 || (request.flags & REQUEST_FLAG_ENVELOPE_FD) !== 0) {
      throw new SubmissionError('usage', 'the sendmail front door passes no environment and no envelope fd');
    }
    // Checked before the fds, so a bad command line is named whatever else is wrong.
    const command = parseSendmailCommand(request.argv.slice(1));
    if (fds.length === 0) throw new SubmissionError('no-input', 'no standard input was passed');
    // Standard output comes too (a helper before -bs passed only standard input); only -bs and -bv write to it.
    if (fds.length > 2) throw new SubmissionError('usage', `the request carried ${fds.length} file descriptors, this front door passes two`);
    const inputFd = fds[0] as number;
    let outputFd = fds[1];
    if (command.mode === 'smtp' && outputFd === undefined) throw new SubmissionError('no-input', 'sendmail -bs needs standard output, and the helper did not pass it');
    const verifying = command.mode === 'deliver' && command.verify;
    if (command.mode !== 'smtp' && !verifying && outputFd !== undefined) {
      closeFd(outputFd);
      outputFd = undefined;
    }
    const base = {
      door: sendmailDoor,
      inputFd,
      verbose: command.mode === 'deliver' && !verifying ? command.verbose : false,
      command,
      ...(outputFd !== undefined ? { outputFd } : {}),
      intake: () => sendmailIntake(command),
    };
    if (command.mode === 'deliver' && !command.verify) return base;
    return { ...base, serveOtherwise: (services: DoorServices) => serveMode(command, inputFd, outputFd, services) };
  },
  exitStatus(outcome: Outcome): number {
    // Postfix's sendmail exits 75, not 64, on a bad command line: its fatal errors run its
    // clean-up routine, which exits EX_TEMPFAIL. Its callers see that code; so do ours.
    if (outcome === 'usage') return EX_TEMPFAIL;
    return statusOf(outcome).exitCode;
  },
};

/** A sendmail-door request as accepted: the parsed command line and, for -bs and -bv, standard output. */
export interface SendmailDoorRequest extends DoorRequest {
  readonly command: SendmailCommand;
  readonly outputFd?: number;
}

/** The intake of one sendmail-door message (a delivery, or one transaction of a -bs session). */
export function sendmailIntake(command: SendmailCommand): Intake {
  let callerLine: ((line: number) => number) | null = null;
  return {
    envelopeInStream: false,
    checkBeforeInput: () => undefined,
    async read(io: IntakeIo): Promise<IntakeResult> {
      const { caller, config } = io;
      const { limits } = config;
      // The sender is known from the command line: refused before any mail is read.
      io.checkSender(sendmailSender(command, caller));
      const intake = await readSendmailInput(await io.openInput(), {
        command,
        caller: { userName: caller.userName, uid: caller.uid, fullName: caller.fullName ?? null },
        limits,
        completion: headerCompletion(config),
        signal: io.signal,
      });
      callerLine = intake.callerLine;
      io.checkRights(intake.envelope);
      return {
        envelope: intake.envelope,
        message: intake.message,
        // The limits are the caller's: what the rewrite added does not count against them.
        parserLimits: { ...limits, maxHeaderOctets: limits.maxHeaderOctets + intake.addedOctets, maxMessageOctets: limits.maxMessageOctets + intake.addedOctets },
        // Locally submitted mail: Postfix completes its header as for its own sendmail.
        localSubmission: true,
      };
    },
    release: () => undefined,
    /**
     * A message error names a line of the message as sent; the caller wants
     * its own. Envelope errors (with an attribute) already name the caller's
     * line, and a command-line recipient has none.
     */
    inCallerTerms(error: SubmissionError): SubmissionError {
      const { line, attribute } = error.position;
      if (line === undefined) return error;
      if (line === 0) return new SubmissionError(error.outcome, error.detail, attribute !== undefined ? { attribute } : {});
      if (attribute !== undefined || callerLine === null) return error;
      const mapped = callerLine(line);
      return mapped === line ? error : new SubmissionError(error.outcome, error.detail, { line: mapped });
    },
  };
}

/**
 * Who completes a sendmail-door header (shared/sendmail/sendmail-message.ts):
 * Postfix's cleanup where XFORWARD can tell smtpd the mail is local, the
 * daemon where it cannot (LMTP, the sendmail transport's -G, xforward off).
 * The downstream is chosen later, and a submission may move on to another,
 * so the MTA completes only when every downstream that takes this door can.
 */
export function headerCompletion(config: DaemonConfig): HeaderCompletion {
  const forThisDoor = config.downstreams.filter((d) => d.doors.length === 0 || d.doors.includes('sendmail'));
  return forThisDoor.every((d) => d.transport === 'smtp' && d.xforward && onThisHost(d.target)) ? 'mta' : 'daemon';
}

/**
 * Only the local MTA's re-injection listener is taken to grant XFORWARD
 * (install.sh sets it up so): a relay elsewhere, a smarthost above all,
 * does not, and would pass the header incomplete.
 */
function onThisHost(target: DownstreamTarget): boolean {
  if (target.kind === 'unix') return true;
  return target.kind === 'tcp' && (target.host === 'localhost' || target.host === '::1' || target.host.startsWith('127.'));
}

/**
 * The command lines that are not one delivery: -bs runs an SMTP dialogue
 * whose every transaction is a submission of its own, logged and counted
 * as one; -bv verifies and reports by mail; -bh and the MTA's tools answer
 * at once. Owns both fds.
 */
async function serveMode(command: SendmailCommand, inputFd: number, outputFd: number | undefined, services: DoorServices): Promise<JobResult> {
  if (command.mode === 'deliver' && command.verify) {
    // -bv: nothing is read; the report goes by mail, one line to standard output.
    closeFd(inputFd);
    const { config, downstream, caller, grant, hostName, signal } = services;
    const result = await serveVerifyMode({ config, downstream, caller, grant, hostName, signal }, command, outputFd);
    if (result.outcome !== 'ok') return result;
    services.log.info({ uid: caller.uid, user: caller.userName, queueId: result.queueId }, result.text);
    // Success is the line on standard output, as from Postfix's sendmail -bv.
    return { ...result, text: '' };
  }
  const immediate = command.mode !== 'smtp' ? sendmailModeResult(command) : null;
  if (immediate !== null || outputFd === undefined) {
    closeFd(inputFd);
    if (outputFd !== undefined) closeFd(outputFd);
    return immediate ?? { outcome: 'internal', text: 'no answer for this sendmail mode' };
  }
  const { config, caller, grant } = services;
  const result = await serveSmtpMode({
    config,
    inputFd,
    outputFd,
    fileReads: services.fileReads,
    hostName: services.hostName,
    signal: services.signal,
    senderAllowed: (sender) => senderPermitted(grant, caller, sender.text),
    deliver: (message: SendmailCommand, data: Readable) => services.submit(sendmailIntake(message), data, 'sendmail -bs'),
  });
  services.log.info({ uid: caller.uid, user: caller.userName }, result.text);
  return { ...result, text: '' };
}
