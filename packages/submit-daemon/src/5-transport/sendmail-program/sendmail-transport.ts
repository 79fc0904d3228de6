/**
 * The sendmail(1) transport: hands one validated submission to the local
 * MTA by running Postfix's sendmail, for installations that do not give
 * mailsubmit an SMTP listener.
 *
 *     sendmail [-C DIR] -G -i [-B 8BITMIME] -f <SENDER> [-N NOTIFY] [-R RET] [-iV ENVID] -- RCPT...
 *
 * (-G: a relayed submission; without it Postfix treats the message as
 * written by a local user and adds Message-Id, Date and a From with the
 * daemon's full name to a message that lacks them. -i: a line with a lone
 * `.` is message text. The command line and its safety rules are in
 * sendmail-arguments.ts.)
 *
 * The message arrives encoded for SMTP DATA (CRLF, dot-stuffed) and is
 * turned back into the LF text sendmail reads (lf-message-transform.ts).
 *
 * Differences from the SMTP transport, all forced by sendmail's interface:
 * - ORCPT cannot be passed (Postfix uses each command-line address as its
 *   own original recipient), nor the XFORWARD client attributes. They are
 *   returned in `dropped` for the daemon's log, never silently lost.
 * - -N applies to a whole run, so recipients are grouped by NOTIFY and each
 *   group gets its own sendmail. One run is the common case.
 * - All or nothing holds only within one run. With several groups the
 *   message is streamed to all of them at once (it is read once; memory
 *   stays flat), then their inputs are closed one after the other, each
 *   only after the previous one queued the message. If the stream fails, or
 *   a run fails before its input is closed, every run not yet closed is
 *   killed first, so none of them queues anything. But a run that already
 *   queued stays queued: if a later group then fails, the submission fails
 *   (the caller keeps the message and retries) while the earlier groups'
 *   recipients have it, and get it again on the retry. A duplicate, never
 *   a loss. Since the first failure stops the rest, the outcome reported is
 *   that failure, which is the worst one seen.
 * - There is no queue id: Postfix's sendmail prints nothing on success.
 *   Success means sendmail exited 0, which it does only after postdrop has
 *   the message in the maildrop queue.
 *
 * Results and errors: what sendmail (or its absence, or its timeout) made
 * of the submission is the result's `outcome`, with sendmail's own words in
 * `text`. A SubmissionError is thrown for what the caller caused: an
 * envelope that cannot be passed safely (a sender starting with `-`), and a
 * message stream that fails (validation half-way, a caller that went away);
 * in the latter case every sendmail was killed before its input was closed,
 * so nothing was queued.
 */
import { isAbsolute } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { sendmailExitOutcome, SubmissionError, type Envelope, type Outcome } from '@mailsubmit/shared';
import { LfMessageTransform } from './lf-message-transform.ts';
import { sendmailPlan, sendmailVerifyArguments, type SendmailPlan, type SendmailRun } from './sendmail-arguments.ts';
import { ChildGoneError, SendmailChild, type ChildExit } from './sendmail-child.ts';

export interface SendmailOptions {
  /** Absolute path of Postfix's sendmail. */
  readonly sendmailPath: string;
  /** How long sendmail may keep us waiting: for its input to drain, or for its exit. */
  readonly timeoutMs: number;
  /**
   * Adds `-C DIR` (a private Postfix instance, e.g. in tests). Root may name
   * any directory; for other users Postfix wants it listed in
   * alternate_config_directories of the default main.cf.
   */
  readonly configDirectory?: string;
  /** The message has (or may have) 8-bit octets: declared with -B 8BITMIME. */
  readonly eightBit?: boolean;
  /** Once aborted (the caller went away), no run's input is closed: every run is killed instead. */
  readonly signal?: AbortSignal;
}

export interface SendmailResult {
  readonly outcome: Outcome;
  /** 'queued' on success (sendmail tells no queue id); otherwise what went wrong, in sendmail's words where it gave any. */
  readonly text: string;
  /** What sendmail's command line cannot carry, for the log (e.g. `ORCPT for 2 recipients`). */
  readonly dropped: readonly string[];
}

export type SendmailMessage = Readable | AsyncIterable<Uint8Array>;

/** Longest text taken from sendmail's stderr. */
const MAX_TEXT_CHARS = 500;
const SPAWN_CONFIG_ERRORS: ReadonlySet<string> = new Set(['ENOENT', 'EACCES', 'ENOTDIR', 'ENOEXEC', 'ELOOP']);

/** Runs sendmail for `envelope` with `message` (SMTP-encoded) as its input; resolves with the outcome. */
export async function sendViaSendmail(envelope: Envelope, message: SendmailMessage, options: SendmailOptions): Promise<SendmailResult> {
  let plan: SendmailPlan;
  try {
    plan = sendmailPlan(envelope, {
      ...(options.configDirectory !== undefined ? { configDirectory: options.configDirectory } : {}),
      ...(options.eightBit === true ? { eightBit: true } : {}),
    });
  } catch (error) {
    discard(message);
    throw error;
  }
  const { dropped } = plan;
  if (!isAbsolute(options.sendmailPath)) {
    discard(message);
    return { outcome: 'config', text: `the sendmail path must be absolute: ${options.sendmailPath}`, dropped };
  }

  const children: SendmailChild[] = [];
  try {
    for (const run of plan.runs) children.push(new SendmailChild(options.sendmailPath, run.args, options.timeoutMs));
  } catch (error) {
    await abortAll(children);
    discard(message);
    return { outcome: 'internal', text: `cannot start ${options.sendmailPath}: ${reason(error)}`, dropped };
  }

  // Which run stopped the stream, if one did: pipeline() may report its
  // own AbortError for the stages it tore down instead.
  let gone: ChildGoneError | undefined;
  try {
    await pipeline(message, new LfMessageTransform(), async (text: AsyncIterable<Buffer>) => {
      // Each chunk goes to every run before the next is read, so the
      // slowest run sets the pace and nothing piles up in memory.
      for await (const chunk of text) {
        try {
          await Promise.all(children.map((child) => child.write(chunk)));
        } catch (error) {
          if (error instanceof ChildGoneError) gone ??= error;
          throw error;
        }
      }
    });
  } catch (error) {
    // Kill before anything closes an input: a sendmail that sees the end
    // of its input queues whatever it has read.
    await abortAll(children);
    if (gone !== undefined) return { ...describeExit(await gone.child.exited, options), dropped };
    throw sourceError(error);
  }
  // The caller may have gone while the whole message sat in memory (read
  // before sendmail started): the last moment to queue nothing.
  if (options.signal?.aborted === true) {
    await abortAll(children);
    throw sourceError(options.signal.reason);
  }

  let queued = 0;
  for (const [index, child] of children.entries()) {
    const exit = await child.commit();
    const described = describeExit(exit, options);
    if (described.outcome !== 'ok') {
      await abortAll(children.slice(index + 1));
      return { outcome: described.outcome, text: described.text + alreadyQueued(queued, plan.runs), dropped };
    }
    queued += (plan.runs[index] as SendmailRun).recipients.length;
  }
  return { outcome: 'ok', text: 'queued', dropped };
}

/**
 * Address verification through Postfix's `sendmail -bv`: it reads no
 * message (its input is closed at once), queues a probe that delivers
 * nothing, and mails the report to the sender itself. Exit 0 means the
 * probe is queued; anything else is described as for a delivery.
 */
export async function verifyViaSendmail(envelope: Envelope, options: Omit<SendmailOptions, 'eightBit' | 'signal'>): Promise<SendmailResult> {
  const args = sendmailVerifyArguments(envelope, options.configDirectory !== undefined ? { configDirectory: options.configDirectory } : {});
  if (!isAbsolute(options.sendmailPath)) return { outcome: 'config', text: `the sendmail path must be absolute: ${options.sendmailPath}`, dropped: [] };
  let child: SendmailChild;
  try {
    child = new SendmailChild(options.sendmailPath, args, options.timeoutMs);
  } catch (error) {
    return { outcome: 'internal', text: `cannot start ${options.sendmailPath}: ${reason(error)}`, dropped: [] };
  }
  const exit = await child.commit();
  // -bv reads nothing, so an exit before its input was closed is no sign of a lost message.
  const described = describeExit({ ...exit, early: false }, options);
  return { outcome: described.outcome, text: described.outcome === 'ok' ? 'verification probe queued' : described.text, dropped: [] };
}

/** The outcome and text for one run's exit. */
function describeExit(exit: ChildExit, options: Pick<SendmailOptions, 'sendmailPath' | 'timeoutMs'>): { outcome: Outcome; text: string } {
  const program = options.sendmailPath;
  if (exit.spawnError !== undefined) {
    const code = exit.spawnError.code ?? '';
    return {
      outcome: SPAWN_CONFIG_ERRORS.has(code) ? 'config' : sendmailExitOutcome(null, null),
      text: `cannot run ${program}: ${exit.spawnError.message}`,
    };
  }
  if (exit.timedOut) return { outcome: 'mta-timeout', text: `${program} did not finish within ${options.timeoutMs} ms` };
  if (exit.early && exit.code === 0) {
    // Exit 0 without reading the whole message: whatever it queued is not
    // what the caller sent, and unknown never means success.
    return { outcome: 'mta-tempfail', text: `${program} exited before it read the whole message` };
  }
  const outcome = sendmailExitOutcome(exit.code, exit.signal);
  if (outcome === 'ok') return { outcome, text: 'queued' };
  const how = exit.signal !== null ? `was killed by ${exit.signal}` : `exited with status ${exit.code ?? 'unknown'}`;
  return { outcome, text: stderrLine(exit.stderr) ?? `${program} ${how}` };
}

/**
 * The line of sendmail's stderr that says why: Postfix prints warnings
 * first and the reason last, as `sendmail: fatal: ...`. Made printable and
 * short, since it ends up on the caller's one line of error output.
 */
export function stderrLine(stderr: string): string | undefined {
  const lines = stderr
    .split('\n')
    .map((line) => line.replace(/[\u0000-\u001f\u007f]/g, ' ').trim())
    .filter((line) => line !== '');
  const line = lines.find((l) => / fatal: /.test(l)) ?? lines[0];
  if (line === undefined) return undefined;
  return line.length > MAX_TEXT_CHARS ? `${line.slice(0, MAX_TEXT_CHARS)}...` : line;
}

function alreadyQueued(queued: number, runs: readonly SendmailRun[]): string {
  if (queued === 0) return '';
  const total = runs.reduce((sum, run) => sum + run.recipients.length, 0);
  return ` (the message was already queued for ${queued} of ${total} recipients, who would get it again on a retry)`;
}

async function abortAll(children: readonly SendmailChild[]): Promise<void> {
  await Promise.all(children.map((child) => child.abort()));
}

/** Stops a message source that will not be read (a Readable is destroyed, an iterator ended). */
function discard(message: SendmailMessage): void {
  if ('destroy' in message && typeof message.destroy === 'function') {
    message.destroy();
    return;
  }
  const iterator = (message as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  Promise.resolve()
    .then(() => iterator.return?.())
    .catch(() => {});
}

function sourceError(error: unknown): SubmissionError {
  if (error instanceof SubmissionError) return error;
  const wrapped = new SubmissionError('input-error', `reading the message failed: ${reason(error)}`);
  wrapped.cause = error;
  return wrapped;
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
