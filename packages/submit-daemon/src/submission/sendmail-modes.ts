/**
 * The sendmail front door's modes other than delivery (sendmail-command.ts
 * reads them from the command line, as Postfix's sendmail does):
 *
 * - `-bs`: an SMTP dialogue on the caller's standard input and output
 *   (intake/smtp-session.ts), each transaction one sendmail-door
 *   submission. The helper then exits 0, as Postfix's `sendmail -bs` (its
 *   smtpd) does once the dialogue is over, whatever became of the messages:
 *   the client read each verdict in the dialogue.
 * - `-bh`, `-bH`, `-q` with an interval: Postfix's sendmail exits 0 at once
 *   and does nothing; so does this one.
 * - the MTA's own tools (`-bp` mailq, `-q`/`-qR`/`-qI` flush, `-bi`/`-I`
 *   newaliases, `-bd`/`-bl` start) and `-bv` (Postfix's address
 *   verification, reported by mail): not a submission, and not something a
 *   submission daemon may do for a caller. The helper exits 69
 *   (EX_UNAVAILABLE) with one line naming the MTA's tool, and nothing is read.
 */
import { Socket } from 'node:net';
import { createWriteStream } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { EX_OK, EX_UNAVAILABLE, SubmissionError, type Address, type SendmailCommand } from '@mailsubmit/shared';
import { closeFd, dupFd, fdKind, getFileStatusFlags, setFileStatusFlags } from '@mailsubmit/socket-addon';
import type { DaemonConfig } from '../config/daemon-config.ts';
import { openPassedInput } from '../intake/passed-fd-input.ts';
import { runSmtpSession, type SessionDelivery } from '../intake/smtp-session.ts';
import type { Semaphore } from '../util/semaphore.ts';
import type { JobResult } from './submission-job.ts';

/** What a mode that is the MTA's own tool answers, by mode; -bv has its own line. */
const TOOL_MODES: Readonly<Partial<Record<SendmailCommand['mode'], string>>> = {
  'list-queue': 'showing the mail queue (-bp) is the MTA\'s: run mailq (Postfix: postqueue -p)',
  'flush-queue': 'flushing the mail queue (-q, -qR, -qI) is the MTA\'s: run postqueue -f (or -s site, -i queue_id)',
  aliases: 'rebuilding the alias database (-bi, -I) is the MTA\'s: run newaliases as root',
  daemon: 'starting the MTA (-bd, -bl) is not a submission: run postfix start as root',
};

const VERIFY_TEXT = 'address verification (-bv) is the MTA\'s: mailsubmit-sendmail only submits mail (Postfix: sendmail -bv with its own sendmail, or postmap -q for a table)';

/**
 * The answer for a command that is not a submission nor a -bs dialogue, or
 * null for one that is (delivery, -bs).
 */
export function sendmailModeResult(command: SendmailCommand): JobResult | null {
  if (command.mode === 'nothing') return { outcome: 'ok', text: '', exitCode: EX_OK };
  if (command.mode === 'deliver') return command.verify ? { outcome: 'usage', text: VERIFY_TEXT, exitCode: EX_UNAVAILABLE } : null;
  const tool = TOOL_MODES[command.mode];
  return tool === undefined ? null : { outcome: 'usage', text: tool, exitCode: EX_UNAVAILABLE };
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
    throw new SubmissionError('no-input', 'standard output is not open for writing: -bs writes its SMTP replies there');
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
