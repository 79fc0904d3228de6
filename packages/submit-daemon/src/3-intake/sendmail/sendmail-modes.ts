/**
 * The sendmail front door's modes other than delivery (sendmail-command.ts
 * reads them from the command line, as Postfix's sendmail does):
 *
 * - `-bs`: an SMTP dialogue on the caller's standard input and output
 *   (3-intake/sendmail/smtp-session.ts), each transaction one sendmail-door
 *   submission. The helper then exits 0, as Postfix's `sendmail -bs` (its
 *   smtpd) does once the dialogue is over, whatever became of the messages:
 *   the client read each verdict in the dialogue.
 * - `-bh`, `-bH`, `-q` with an interval: Postfix's sendmail exits 0 at once
 *   and does nothing; so does this one.
 * - `-bv`: address verification, reported by mail
 *   (address-verification.ts). Nothing is read; on success the caller's
 *   standard output gets Postfix's line, `Mail Delivery Status Report will
 *   be mailed to <sender>.`, and the helper exits 0.
 * - the MTA's own tools (`-bp` mailq, `-q`/`-qR`/`-qI` flush, `-bi`/`-I`
 *   newaliases, `-bd`/`-bl` start): not a submission, and not something a
 *   submission daemon may do for a caller. The helper exits 69
 *   (EX_UNAVAILABLE) with one line naming the MTA's tool, and nothing is read.
 */
import { Socket } from 'node:net';
import { createWriteStream } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { EX_OK, EX_UNAVAILABLE, SubmissionError, type Address, type SendmailCommand } from '@mailsubmit/shared';
import { closeFd, dupFd, fdKind, getFileStatusFlags, setFileStatusFlags } from '@mailsubmit/socket-addon';
import type { DaemonConfig } from '../../config/daemon-config.ts';
import { openPassedInput } from '../passed-fd-input.ts';
import { runSmtpSession, type SessionDelivery } from './smtp-session.ts';
import type { Semaphore } from '../../util/semaphore.ts';
import { verifyAddresses, type VerificationContext } from './address-verification.ts';
import type { JobResult } from '../../submission-job.ts';

/** What a mode that is the MTA's own tool answers, by mode. */
const TOOL_MODES: Readonly<Partial<Record<SendmailCommand['mode'], string>>> = {
  'list-queue': 'showing the mail queue (-bp) is the MTA\'s: run mailq (Postfix: postqueue -p)',
  'flush-queue': 'flushing the mail queue (-q, -qR, -qI) is the MTA\'s: run postqueue -f (or -s site, -i queue_id)',
  aliases: 'rebuilding the alias database (-bi, -I) is the MTA\'s: run newaliases as root',
  daemon: 'starting the MTA (-bd, -bl) is not a submission: run postfix start as root',
};

/**
 * The answer for a command that is not a submission, a verification nor a
 * -bs dialogue, or null for one that is (delivery, -bv, -bs).
 */
export function sendmailModeResult(command: SendmailCommand): JobResult | null {
  if (command.mode === 'nothing') return { outcome: 'ok', text: '', exitCode: EX_OK };
  const tool = TOOL_MODES[command.mode];
  return tool === undefined ? null : { outcome: 'usage', text: tool, exitCode: EX_UNAVAILABLE };
}

/**
 * -bv, start to end; owns the output fd (absent when the caller's standard
 * output was closed). The line goes out before the helper's exit status,
 * as Postfix's sendmail prints it before exiting; a standard output that
 * cannot take it changes nothing (Postfix's sendmail ignores a failed
 * print too).
 */
export async function serveVerifyMode(context: VerificationContext, command: SendmailCommand, outputFd: number | undefined): Promise<JobResult> {
  // Never throws: every failure is an outcome.
  const outcome = await verifyAddresses(context, command);
  if (outputFd === undefined) return outcome.result;
  if (outcome.stdoutLine === undefined) {
    closeFd(outputFd);
    return outcome.result;
  }
  let output: PassedOutput;
  try {
    output = openPassedOutput(outputFd);
  } catch {
    return outcome.result;
  }
  try {
    output.stream.write(outcome.stdoutLine);
    await output.flush();
  } finally {
    output.release();
  }
  return outcome.result;
}

export interface SmtpModeOptions {
  readonly config: DaemonConfig;
  readonly inputFd: number;
  readonly outputFd: number;
  readonly fileReads: Semaphore;
  readonly senderAllowed: (sender: Address) => boolean;
  /** One transaction as a sendmail-door submission; the daemon logs and counts it. */
  readonly deliver: (command: SendmailCommand, message: Readable) => Promise<SessionDelivery>;
  /** Aborted when the helper goes away or the daemon stops: the session ends, a DATA under way delivers nothing. */
  readonly signal: AbortSignal;
  readonly hostName: string;
}

/**
 * A -bs session, start to end; owns both fds. The whole session is bounded
 * by timeouts.input and each silence by timeouts.input_idle (then 421, as
 * Postfix's smtpd answers its own timeout), so a caller cannot hold a slot
 * of the daemon for ever.
 */
export async function serveSmtpMode(options: SmtpModeOptions): Promise<JobResult> {
  const { config } = options;
  let output: PassedOutput;
  try {
    output = openPassedOutput(options.outputFd);
  } catch (err) {
    closeFd(options.inputFd);
    throw err;
  }
  const input = await openPassedInput(
    options.inputFd,
    // The session's own size is bounded by its deadline; each message by the size limit.
    { maxOctets: Number.MAX_SAFE_INTEGER, deadlineMs: config.timeouts.input, idleMs: config.timeouts.inputIdle },
    options.fileReads,
  ).catch((err: unknown) => {
    output.release();
    throw err;
  });
  const onAbort = () => input.stream.destroy(options.signal.reason as Error);
  options.signal.addEventListener('abort', onAbort, { once: true });
  try {
    if (options.signal.aborted) onAbort();
    const session = await runSmtpSession({
      input: input.stream,
      output: output.stream,
      hostName: options.hostName,
      maxMessageOctets: config.limits.maxMessageOctets,
      maxRecipients: config.limits.maxRecipients,
      senderAllowed: options.senderAllowed,
      deliver: options.deliver,
    });
    await output.flush();
    const text = `SMTP session (-bs): ${session.delivered} delivered, ${session.refused} refused, ended by ${session.ended}${session.error ? ` (${session.error.message})` : ''}`;
    return { outcome: 'ok', text, exitCode: EX_OK };
  } finally {
    options.signal.removeEventListener('abort', onAbort);
    input.release();
    output.release();
  }
}

interface PassedOutput {
  readonly stream: Writable;
  /** Waits (briefly) until what was written has left. */
  flush(): Promise<void>;
  release(): void;
}

const O_NONBLOCK = 0o4000;
const FLUSH_MS = 5_000;

/**
 * The caller's standard output as a Writable: a pipe or socket through
 * net.Socket on a duplicate (the caller's O_NONBLOCK bit is put back, as
 * for the input), a file or terminal through an fs stream. Anything not
 * open for writing is refused (66).
 */
function openPassedOutput(fd: number): PassedOutput {
  const info = fdKind(fd);
  if (info.access !== 'write-only' && info.access !== 'read-write') {
    closeFd(fd);
    throw new SubmissionError('no-input', 'standard output is not open for writing: -bs writes its SMTP replies there, -bv its one line');
  }
  const savedNonBlock = getFileStatusFlags(fd) & O_NONBLOCK;
  const copy = dupFd(fd);
  const socketLike = info.kind === 'fifo' || (info.kind === 'socket' && info.socketType === 'stream');
  const stream: Writable = socketLike
    ? new Socket({ fd: copy, readable: false, writable: true })
    : createWriteStream('', { fd: copy, autoClose: true });
  // A reader gone (EPIPE) ends the dialogue's writes, never the daemon.
  stream.on('error', () => undefined);
  let released = false;
  return {
    stream,
    flush: () =>
      new Promise<void>((resolve) => {
        if (stream.destroyed || !stream.writable) return resolve();
        const timer = setTimeout(resolve, FLUSH_MS);
        stream.end(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
    release: () => {
      if (released) return;
      released = true;
      stream.destroy();
      try {
        const now = getFileStatusFlags(fd);
        if ((now & O_NONBLOCK) !== savedNonBlock) setFileStatusFlags(fd, (now & ~O_NONBLOCK) | savedNonBlock);
      } catch {
        // The caller's flags stay as they are; its fd is closed all the same.
      }
      try {
        closeFd(fd);
      } catch {
        // Closed whatever close(2) said.
      }
    },
  };
}
