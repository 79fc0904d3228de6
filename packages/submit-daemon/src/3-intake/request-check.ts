/**
 * What the daemon accepts as a request before it reads any mail: a frame in
 * the protocol version it speaks, a front door it serves, and exactly the
 * fds that front door passes. Whatever a direct client sends, the answer is
 * one of the documented outcomes, and every received fd is accounted for.
 * Served: the native front door (one fd), sendmail (standard input and
 * output; only -bs and -bv use the second, any other mode closes it here;
 * argv is the command line, parsed here so that a bad one is refused before
 * any mail is read) and qmail-queue (message fd and envelope fd, plus the
 * tcpserver facts as environment entries).
 */
import {
  decodeRequest,
  FrameError,
  MODE_NATIVE,
  MODE_QMAIL_QUEUE,
  MODE_SENDMAIL,
  parseSendmailCommand,
  REQUEST_FLAG_ENVELOPE_FD,
  SubmissionError,
  type QmailClientFacts,
  type FrameRequest,
  type SendmailCommand,
  type Outcome,
} from '@mailsubmit/shared';
import { closeFd } from '@mailsubmit/socket-addon';

export interface CheckedRequest {
  readonly request: FrameRequest;
  /** The caller's standard input. */
  readonly inputFd: number;
  /** -v: tell the caller the MTA's queue id on success too (success is silent otherwise). */
  readonly verbose: boolean;
  /** qmail-queue mode: the caller's fd 1, where the envelope is read from. */
  readonly envelopeFd?: number;
  /** qmail-queue mode: the tcpserver facts the helper forwarded. */
  readonly qmailClient?: QmailClientFacts;
  /** sendmail mode: the parsed command line. */
  readonly sendmail?: SendmailCommand;
  /** sendmail -bs and -bv: the caller's standard output, where the SMTP replies (-bv: its one line) go. */
  readonly outputFd?: number;
}

/** The environment names the qmail-queue front door forwards, and the fact each one is. */
const QMAIL_ENV: Readonly<Record<string, keyof QmailClientFacts>> = {
  TCPREMOTEIP: 'address',
  TCPREMOTEHOST: 'name',
  TCPREMOTEPORT: 'port',
};

const FRAME_OUTCOMES: Partial<Record<string, Outcome>> = {
  // A helper from another release: an installation problem, not the caller's.
  ERR_FRAME_VERSION: 'config',
};

/** Checks a received frame; throws a SubmissionError. The fds stay the caller's to close. */
export function checkRequest(data: Buffer, fds: readonly number[], flags: { truncated: boolean; ctruncated: boolean }): CheckedRequest {
  if (flags.truncated) throw new SubmissionError('usage', 'the request frame is too large');
  if (flags.ctruncated) throw new SubmissionError('usage', 'the request carried too many file descriptors');
  let request: FrameRequest;
  try {
    request = decodeRequest(data);
  } catch (err) {
    if (err instanceof FrameError) throw new SubmissionError(FRAME_OUTCOMES[err.code] ?? 'usage', `malformed request: ${err.message}`);
    throw err;
  }
  if (request.mode === MODE_QMAIL_QUEUE) return checkQmailRequest(request, fds);
  if (request.mode === MODE_SENDMAIL) return checkSendmailRequest(request, fds);
  if (request.mode !== MODE_NATIVE) {
    throw new SubmissionError('usage', `front door ${String(request.mode)} is not served by this daemon`);
  }
  const options = request.argv.slice(1).map((arg) => Buffer.from(arg).toString('utf8'));
  const unknown = options.find((arg) => arg !== '-v');
  if (unknown !== undefined) {
    throw new SubmissionError('usage', `unknown argument ${JSON.stringify(unknown)}: mailsubmit takes only -v; the envelope is read from standard input (see mailsubmit(1))`);
  }
  if (fds.length === 0) throw new SubmissionError('no-input', 'no standard input was passed');
  if (fds.length > 1) throw new SubmissionError('usage', `the request carried ${fds.length} file descriptors, this front door passes one`);
  return { request, inputFd: fds[0] as number, verbose: options.includes('-v') };
}

/** mailsubmit-sendmail(8): the command line as sendmail takes it, the message on the one fd. */
function checkSendmailRequest(request: FrameRequest, fds: readonly number[]): CheckedRequest {
  if (request.env.length > 0 || (request.flags & REQUEST_FLAG_ENVELOPE_FD) !== 0) {
    throw new SubmissionError('usage', 'the sendmail front door passes no environment and no envelope fd');
  }
  // Checked before the fds, so a bad command line is named whatever else is wrong.
  const sendmail = parseSendmailCommand(request.argv.slice(1));
  if (fds.length === 0) throw new SubmissionError('no-input', 'no standard input was passed');
  // Standard output comes too (a helper before -bs passed only standard input); only -bs writes to it.
  if (fds.length > 2) throw new SubmissionError('usage', `the request carried ${fds.length} file descriptors, this front door passes two`);
  const inputFd = fds[0] as number;
  const outputFd = fds[1];
  if (sendmail.mode === 'smtp') {
    if (outputFd === undefined) throw new SubmissionError('no-input', 'sendmail -bs needs standard output, and the helper did not pass it');
    return { request, inputFd, outputFd, verbose: false, sendmail };
  }
  // -bv prints one line there when it can (a caller with standard output closed gets its report all the same).
  if (sendmail.verify && sendmail.mode === 'deliver') return { request, inputFd, ...(outputFd !== undefined ? { outputFd } : {}), verbose: false, sendmail };
  if (outputFd !== undefined) closeFd(outputFd);
  return { request, inputFd, verbose: sendmail.verbose, sendmail };
}

/** qmail-queue(8): no arguments that matter, the message on the first fd and the envelope on the second. */
function checkQmailRequest(request: FrameRequest, fds: readonly number[]): CheckedRequest {
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
  return { request, inputFd: fds[0] as number, envelopeFd: fds[1] as number, verbose: false, qmailClient: client };
}
