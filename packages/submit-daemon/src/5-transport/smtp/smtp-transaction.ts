/**
 * One mail transaction on an open SmtpConnection: XFORWARD, MAIL, RCPT...,
 * DATA, the message, the final dot.
 *
 * The guarantees of the submission contract are kept here:
 * - All or nothing: every RCPT reply is read before DATA is sent (DATA is
 *   never pipelined). If any recipient is refused, RSET is sent, no DATA,
 *   and the failure is the worst class among the refusals (any 4xx makes it
 *   temporary).
 * - Nothing partial is delivered: the final dot is written only after the
 *   message source has ended without error. If the source fails (a
 *   SubmissionError from validation, a size mismatch, a caller that went
 *   away) the connection is destroyed at once, so the server sees it close
 *   without the dot and discards what it got. The same happens when the
 *   bytes fail the DataGuard.
 * - Success only on the server's 2xx to the dot (LMTP: on a 2xx for every
 *   recipient), which Postfix sends after its queue file is fsynced.
 *
 * LMTP partial acceptance: after the dot an LMTP server answers once per
 * recipient, and some may be accepted while others are not. The contract
 * has no partial success, so the submission fails with the worst reply; the
 * recipients that did get a 2xx already have the message, and a retry of the
 * whole submission delivers it to them again. That duplicate is the price of
 * never losing mail; the error carries every reply so the daemon can log
 * which recipients were delivered.
 *
 * Every failure is an SmtpError (a SubmissionError with an outcome), except
 * that an error from the message source is passed on as it is (wrapped in a
 * SubmissionError 'input-error' if it was not one).
 */
import type { Readable } from 'node:stream';
import {
  describeReply,
  mailFromCommand,
  needsSmtpUtf8,
  queueIdOf,
  rcptToCommand,
  replyOutcome,
  SubmissionError,
  xforwardCommands,
  xforwardOmitted,
  type Envelope,
  type SmtpReply,
  type SmtpStage,
  type XforwardSource,
} from '@mailsubmit/shared';
import { DataGuard } from './data-guard.ts';
import { replyError, type SmtpConnection } from './smtp-connection.ts';
import { SmtpError, summarizeCommand } from './smtp-error.ts';

export interface SendOptions {
  /** The message has 8-bit octets (true is safe when not known yet: it only adds BODY=8BITMIME). */
  readonly eightBit: boolean;
  /** Octets the DATA will carry, for SIZE=; defaults to the envelope's `size`. */
  readonly sizeEstimate?: number;
  /** XFORWARD SOURCE: LOCAL for mail submitted on this host (the sendmail door), else REMOTE (the default). */
  readonly xforwardSource?: XforwardSource;
  /** False: never send XFORWARD, even where the server offers it (downstream.xforward = false). */
  readonly xforward?: boolean;
  /** Once aborted, the final dot is not sent: the connection is dropped and the abort reason thrown. */
  readonly signal?: AbortSignal;
}

export interface SendResult {
  /** From Postfix's `queued as ID` in the final reply, when present. */
  readonly queueId?: string;
  /** The reply to the final dot (LMTP: the first recipient's). */
  readonly reply: SmtpReply;
  /** LMTP: the final reply for each recipient, in RCPT order. */
  readonly lmtpReplies?: readonly SmtpReply[];
  /** DSN and other parameters the server could not take, for the log. */
  readonly omitted: readonly string[];
  /** Message octets sent between DATA and the dot (any added final CRLF included). */
  readonly octets: number;
}

export type MessageSource = AsyncIterable<Uint8Array> | Readable;

export interface Step {
  readonly line: string;
  readonly stage: SmtpStage;
}

const isPositive = (reply: SmtpReply): boolean => reply.code >= 200 && reply.code <= 299;

/** The envelope commands of a transaction, built before anything is sent. */
export interface EnvelopeSteps {
  /** XFORWARD..., MAIL, RCPT... in order. */
  readonly steps: readonly Step[];
  /** Where MAIL is among the steps (after the XFORWARD commands). */
  readonly mailIndex: number;
  /** DSN and other parameters the server could not take, for the log. */
  readonly omitted: readonly string[];
}

/**
 * XFORWARD, MAIL and the RCPTs for `envelope` as this server takes them;
 * throws (sending nothing) for an envelope the server cannot carry.
 */
export function envelopeSteps(conn: SmtpConnection, envelope: Envelope, options: Omit<SendOptions, 'signal'>): EnvelopeSteps {
  const caps = conn.capabilities;
  if (envelope.recipients.length === 0) {
    throw new SubmissionError('envelope-syntax', 'no recipient', { attribute: 'recipient' });
  }
  if (needsSmtpUtf8(envelope) && !caps.smtpUtf8) {
    throw new SmtpError('ERR_SMTP_NO_SMTPUTF8', 'smtputf8-unsupported', 'the envelope has non-ASCII addresses and the MTA does not announce SMTPUTF8', {
      stage: 'mail',
    });
  }
  const source = options.xforwardSource ? { source: options.xforwardSource } : {};
  const xforward = options.xforward === false ? [] : xforwardCommands(envelope.client, caps, source);
  const mail = mailFromCommand(envelope, { eightBit: options.eightBit, sizeEstimate: options.sizeEstimate }, caps);
  const rcpts = envelope.recipients.map((recipient) => rcptToCommand(recipient, caps));
  // With downstream.xforward = false nothing is sent by choice (documented); otherwise what the server lacks is logged.
  const notForwarded = options.xforward === false ? [] : xforwardOmitted(envelope.client, caps, source);
  const steps: Step[] = [
    ...xforward.map((line) => ({ line, stage: 'xforward' as const })),
    { line: mail.line, stage: 'mail' },
    ...rcpts.map((r) => ({ line: r.line, stage: 'rcpt' as const })),
  ];
  return { steps, mailIndex: xforward.length, omitted: [...new Set([...notForwarded, ...mail.omitted, ...rcpts.flatMap((r) => r.omitted)])] };
}

/** Runs one transaction; resolves only when the MTA has taken the message for every recipient. */
export async function sendMessage(
  conn: SmtpConnection,
  envelope: Envelope,
  body: MessageSource,
  options: SendOptions,
): Promise<SendResult> {
  if (!conn.usable) throw new SmtpError('ERR_SMTP_NOT_USABLE', 'mta-protocol', 'the connection to the MTA is not usable');
  // Everything is built before anything is sent: a refusal here leaves the
  // connection clean (and reusable).
  const { steps, omitted, mailIndex } = envelopeSteps(conn, envelope, options);

  conn.busy = true;
  // The caller going away before the final dot drops the connection at once,
  // rather than after the MTA's next reply: nothing was committed, and a
  // slow or silent MTA must not keep a dead submission (or its failover) waiting.
  let dotSent = false;
  const abandon = () => {
    if (!dotSent) conn.destroy();
  };
  options.signal?.addEventListener('abort', abandon, { once: true });
  try {
    if (options.signal?.aborted === true) abandon();
    const replies = await envelopeReplies(conn, steps);
    const refusal = envelopeRefusal(envelope, steps, replies);
    if (refusal !== null) {
      conn.markError();
      const mailReply = replies[mailIndex];
      if (mailReply !== undefined && isPositive(mailReply)) await resetQuietly(conn);
      throw refusal;
    }

    const dataReply = await conn.command('DATA', 'data-init');
    if (replyOutcome(dataReply, 'data-init') !== 'ok') {
      conn.markError();
      // A 2xx here means the server is not where we think it is: drop it.
      if (isPositive(dataReply)) conn.destroy();
      else await resetQuietly(conn);
      throw replyError(dataReply, 'data-init', 'DATA');
    }

    const octets = await streamBody(conn, body);
    // The caller may have gone away while the whole message sat in memory
    // (it was read before MAIL): the last moment to abandon the transaction.
    if (options.signal?.aborted === true) {
      conn.destroy();
      throw sourceError(options.signal.reason);
    }

    dotSent = true;
    const finals = finalReplies(conn, envelope.recipients.length);
    const settled: SmtpReply[] = [];
    for (const promise of finals) settled.push(await promise);
    return conclude(conn, envelope, settled, omitted, octets);
  } catch (err) {
    if (!dotSent && options.signal?.aborted === true) throw sourceError(options.signal.reason);
    throw err;
  } finally {
    options.signal?.removeEventListener('abort', abandon);
    conn.busy = false;
  }
}

/**
 * Envelope commands written ahead of their replies. RFC 2920 sets no bound,
 * but a bounded window keeps a submission to 100,000 recipients linear: the
 * connection's queue of expected replies stays short (taking from the head
 * of a long array costs its length), and the writes stay small.
 */
export const PIPELINE_WINDOW = 500;

/**
 * Sends the envelope commands (pipelined when announced) and reads their
 * replies, in order, after the RSET a pooled connection owes (sent first,
 * in the same write where pipelining allows; anything but a 2xx to it
 * destroys the connection and throws a retryable ERR_SMTP_NOT_USABLE).
 * Pipelined, the next window is written before this one's replies are
 * read, so the server always has commands to work on.
 * Once a reply in a window is negative the transaction is lost (all or
 * nothing): beyond the window already written ahead, nothing more is
 * written, the replies to what was written are read, and fewer replies
 * than steps come back.
 */
export async function envelopeReplies(conn: SmtpConnection, steps: readonly Step[], every: 'until-refused' | 'every-recipient' = 'until-refused'): Promise<SmtpReply[]> {
  if (!conn.resetOwed) return envelopeRepliesInOrder(conn, steps, every);
  conn.resetOwed = false;
  const [reset, ...replies] = await envelopeRepliesInOrder(conn, [RESET_STEP, ...steps], every);
  if (reset === undefined || !isPositive(reset)) {
    // Not the clean session the pool promised: whatever MAIL and RCPT got
    // is void. Nothing was sent past them, so a fresh connection may try again.
    conn.markError();
    conn.destroy();
    throw new SmtpError('ERR_SMTP_NOT_USABLE', 'mta-protocol', `a reused connection to the MTA answered RSET with ${reset === undefined ? 'nothing' : describeReply(reset)}`, {
      stage: 'rset',
      command: 'RSET',
      ...(reset !== undefined ? { reply: reset } : {}),
    });
  }
  return replies;
}

/** The RSET a pooled connection owes before its next transaction. */
const RESET_STEP: Step = { line: 'RSET', stage: 'rset' };

async function envelopeRepliesInOrder(conn: SmtpConnection, steps: readonly Step[], every: 'until-refused' | 'every-recipient'): Promise<SmtpReply[]> {
  const replies: SmtpReply[] = [];
  if (conn.capabilities.pipelining) {
    let pending = conn.pipeline(steps.slice(0, PIPELINE_WINDOW));
    let refused = false;
    for (let next = PIPELINE_WINDOW; pending.length > 0; next += PIPELINE_WINDOW) {
      const ahead = !refused && next < steps.length ? conn.pipeline(steps.slice(next, next + PIPELINE_WINDOW)) : [];
      for (const promise of pending) {
        const reply = await promise;
        // Verification wants a reply to every RCPT; a refused MAIL still ends it.
        if (!isPositive(reply) && (every === 'until-refused' || steps[replies.length]?.stage !== 'rcpt')) refused = true;
        replies.push(reply);
      }
      pending = ahead;
    }
    return replies;
  }
  for (const step of steps) {
    const reply = await conn.command(step.line, step.stage);
    replies.push(reply);
    // Without pipelining, stop at the first failure before any RCPT; go on
    // through all RCPTs so the worst refusal can be reported.
    if (!isPositive(reply) && step.stage !== 'rcpt') break;
  }
  return replies;
}

/** The SmtpError for the first thing that went wrong before DATA, or null. */
function envelopeRefusal(envelope: Envelope, steps: readonly Step[], replies: readonly SmtpReply[]): SmtpError | null {
  const refused: { index: number; reply: SmtpReply }[] = [];
  for (let i = 0; i < replies.length; i++) {
    const step = steps[i] as Step;
    const reply = replies[i] as SmtpReply;
    if (isPositive(reply)) continue;
    if (step.stage !== 'rcpt') return replyError(reply, step.stage, step.line);
    refused.push({ index: i - (steps.length - envelope.recipients.length), reply });
  }
  if (refused.length === 0) return null;

  // Any 4xx makes the whole submission temporary; otherwise report the first
  // permanent refusal.
  const worst = refused.find(({ reply }) => reply.code >= 400 && reply.code <= 499) ?? (refused[0] as (typeof refused)[number]);
  const recipient = envelope.recipients[worst.index];
  const command = steps[steps.length - envelope.recipients.length + worst.index]?.line;
  const others = refused.length > 1 ? ` (${refused.length} of ${envelope.recipients.length} recipients refused)` : '';
  return new SmtpError(
    'ERR_SMTP_RECIPIENT_REFUSED',
    replyOutcome(worst.reply, 'rcpt'),
    `${summarizeCommand(command)} answered: ${describeReply(worst.reply)}${others}`,
    {
      stage: 'rcpt',
      reply: worst.reply,
      command,
      position: recipient ? { line: recipient.line, attribute: 'recipient' } : {},
      recipientReplies: replies.slice(steps.length - envelope.recipients.length),
    },
  );
}

export async function resetQuietly(conn: SmtpConnection): Promise<void> {
  try {
    await conn.command('RSET', 'rset');
  } catch {
    // The connection failed and is destroyed; the transaction is gone with it.
  }
}

/**
 * Copies the message to the socket, waiting for the socket whenever it is
 * full (so a slow MTA slows down the reading of the caller's input instead
 * of filling memory). Returns the octets sent. On any failure the
 * connection is destroyed before this returns: the final dot is never sent.
 */
async function streamBody(conn: SmtpConnection, body: MessageSource): Promise<number> {
  const guard = new DataGuard();
  const iterator = (body as AsyncIterable<unknown>)[Symbol.asyncIterator]();
  for (;;) {
    let next: IteratorResult<unknown>;
    try {
      next = await iterator.next();
    } catch (err) {
      conn.destroy();
      throw sourceError(err);
    }
    if (next.done === true) break;
    const chunk = next.value;
    if (!(chunk instanceof Uint8Array)) {
      conn.destroy();
      stopSource(iterator);
      throw new SmtpError('ERR_SMTP_UNSAFE_DATA', 'internal', 'the message source produced something other than bytes', { stage: 'data-block' });
    }
    const problem = guard.check(chunk);
    if (problem !== null) {
      conn.destroy();
      stopSource(iterator);
      throw new SmtpError('ERR_SMTP_UNSAFE_DATA', 'internal', `the encoded message is not safe to send: ${problem}`, { stage: 'data-block' });
    }
    try {
      await conn.writeData(chunk);
    } catch (err) {
      stopSource(iterator);
      throw err;
    }
  }
  const problem = guard.finish();
  if (problem !== null) {
    conn.destroy();
    throw new SmtpError('ERR_SMTP_UNSAFE_DATA', 'internal', `the encoded message is not safe to send: ${problem}`, { stage: 'data-block' });
  }
  let octets = guard.octets;
  // RFC 5321 section 4.1.1.4: the dot follows a CRLF. A message whose last
  // line has no line end gets one, as every MTA does.
  if (!guard.endsWithLineEnd) {
    await conn.writeData(Buffer.from('\r\n'));
    octets += 2;
  }
  return octets;
}

function stopSource(iterator: AsyncIterator<unknown>): void {
  // Ends a Readable (destroys it) or a generator; the outcome is already decided.
  Promise.resolve()
    .then(() => iterator.return?.())
    .catch(() => {});
}

function sourceError(err: unknown): SubmissionError {
  if (err instanceof SubmissionError) return err;
  const reason = err instanceof Error ? err.message : String(err);
  const wrapped = new SubmissionError('input-error', `reading the message failed: ${reason}`);
  wrapped.cause = err;
  return wrapped;
}

/** Writes the dot and returns one promise per final reply (LMTP: one per recipient). */
function finalReplies(conn: SmtpConnection, recipients: number): Promise<SmtpReply>[] {
  if (conn.protocol === 'smtp') return [conn.command('.', 'data-end')];
  const first = conn.command('.', 'lmtp-data-end');
  const rest = Array.from({ length: recipients - 1 }, () => conn.expectReply('lmtp-data-end'));
  return [first, ...rest];
}

function conclude(
  conn: SmtpConnection,
  envelope: Envelope,
  replies: readonly SmtpReply[],
  omitted: readonly string[],
  octets: number,
): SendResult {
  const first = replies[0] as SmtpReply;
  if (conn.protocol === 'smtp') {
    if (!isPositive(first)) {
      conn.markError();
      throw replyError(first, 'data-end', '.');
    }
    const queueId = queueIdOf(first);
    return { ...(queueId !== undefined ? { queueId } : {}), reply: first, omitted, octets };
  }

  const refusedIndex = replies.findIndex((reply) => reply.code >= 400 && reply.code <= 499);
  const index = refusedIndex >= 0 ? refusedIndex : replies.findIndex((reply) => !isPositive(reply));
  if (index >= 0) {
    conn.markError();
    const reply = replies[index] as SmtpReply;
    const recipient = envelope.recipients[index];
    const accepted = replies.filter(isPositive).length;
    const note = accepted > 0 ? `; ${accepted} of ${replies.length} recipients were delivered and would get it again on a retry` : '';
    throw new SmtpError(
      'ERR_LMTP_RECIPIENT_REFUSED',
      replyOutcome(reply, 'lmtp-data-end'),
      `end of data for <${recipient?.address.text ?? ''}> answered: ${describeReply(reply)}${note}`,
      {
        stage: 'lmtp-data-end',
        reply,
        command: '.',
        position: recipient ? { line: recipient.line, attribute: 'recipient' } : {},
        recipientReplies: replies,
      },
    );
  }
  const queueId = replies.map(queueIdOf).find((id) => id !== undefined);
  return { ...(queueId !== undefined ? { queueId } : {}), reply: first, lmtpReplies: replies, omitted, octets };
}
