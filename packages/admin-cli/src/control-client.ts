/**
 * The client side of mailsubmitd's control socket: one request line, one
 * reply line (the protocol is the daemon's control/control-protocol.ts).
 *
 * Failures map to sysexits: nothing listening (the daemon is not running)
 * is 75, like any temporary failure; a socket the caller may not open is 77
 * (the control socket is for root); a reply that is not the protocol, or a
 * refusal from the daemon, is 76. A refusal of a queue command has its own:
 * an id the queue does not hold is 66 (no such input), a daemon without a
 * local queue 69 (service unavailable), a request the queue will not carry
 * out now (the message is being delivered) 75.
 */
import { connect } from 'node:net';
import { EX_NOINPUT, EX_NOPERM, EX_TEMPFAIL, EX_UNAVAILABLE } from '@mailsubmit/shared';
import { ControlProtocolError, encodeRequest, parseReply, type ControlCommand, type ControlFailureReason, type ControlReply } from '@mailsubmit/submit-daemon/admin';
import { ExitError } from './errors.ts';

export const EX_PROTOCOL = 76;
/** A reload reads two small files; a daemon that takes longer than this is stuck. */
const REPLY_DEADLINE_MS = 10_000;
/** A queue action may wait for a delivery under way to finish (hold, delete). */
const QUEUE_REPLY_DEADLINE_MS = 120_000;
/** A status reply is a few kilobytes; this is a generous cap, not a target. */
const MAX_REPLY_OCTETS = 1_048_576;
/** A queue listing of queue.max_messages messages, or one message of up to 1 MiB as JSON escapes it. */
const MAX_QUEUE_REPLY_OCTETS = 128 * 1_048_576;

const EXIT_OF_REFUSAL: Readonly<Record<ControlFailureReason, number>> = {
  'unknown-id': EX_NOINPUT,
  'no-queue': EX_UNAVAILABLE,
  'queue-refused': EX_TEMPFAIL,
  failed: EX_PROTOCOL,
};

const NOT_RUNNING = new Set(['ENOENT', 'ECONNREFUSED', 'ENOTDIR']);
const NOT_ALLOWED = new Set(['EACCES', 'EPERM']);

export type ControlSuccess = Extract<ControlReply, { ok: true }>;

/** Sends `command` (with the queue id `id`) and returns the daemon's successful reply; throws ExitError otherwise. */
export async function controlRequest(socketPath: string, command: ControlCommand, id?: string): Promise<ControlSuccess> {
  const queue = command.startsWith('queue-');
  const limits = queue ? { deadlineMs: QUEUE_REPLY_DEADLINE_MS, maxOctets: MAX_QUEUE_REPLY_OCTETS } : { deadlineMs: REPLY_DEADLINE_MS, maxOctets: MAX_REPLY_OCTETS };
  const line = await exchange(socketPath, encodeRequest(command, id), limits);
  let reply: ControlReply;
  try {
    reply = parseReply(line);
  } catch (err) {
    if (err instanceof ControlProtocolError) throw new ExitError(`${socketPath}: ${err.message}`, EX_PROTOCOL);
    throw err;
  }
  if (!reply.ok) {
    // The queue's own words are the message; anything else is the daemon refusing the request.
    if (reply.reason !== undefined && reply.reason !== 'failed') throw new ExitError(reply.error, EXIT_OF_REFUSAL[reply.reason] ?? EX_PROTOCOL);
    throw new ExitError(`mailsubmitd refused the request: ${reply.error}`, EX_PROTOCOL);
  }
  return reply;
}

function exchange(socketPath: string, request: string, limits: { deadlineMs: number; maxOctets: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let received = '';
    let settled = false;
    const settle = (outcome: { line: string } | { error: ExitError }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if ('line' in outcome) resolve(outcome.line);
      else reject(outcome.error);
    };
    const timer = setTimeout(
      () => settle({ error: new ExitError(`mailsubmitd did not answer on ${socketPath} within ${limits.deadlineMs / 1000} s`, EX_TEMPFAIL) }),
      limits.deadlineMs,
    );
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(request));
    socket.on('data', (chunk: string) => {
      // Only the new chunk is searched: a queue listing comes in many.
      const end = chunk.indexOf('\n');
      received += end === -1 ? chunk : chunk.slice(0, end);
      if (end !== -1) settle({ line: received });
      else if (received.length > limits.maxOctets) settle({ error: new ExitError(`${socketPath}: the reply is longer than ${limits.maxOctets} octets`, EX_PROTOCOL) });
    });
    socket.on('end', () => settle({ error: new ExitError(`mailsubmitd closed ${socketPath} without a reply`, EX_TEMPFAIL) }));
    socket.on('error', (err: NodeJS.ErrnoException) => settle({ error: connectError(socketPath, err) }));
  });
}

function connectError(socketPath: string, err: NodeJS.ErrnoException): ExitError {
  const code = err.code ?? err.message;
  if (NOT_RUNNING.has(code)) return new ExitError(`mailsubmitd is not running: nothing answers on ${socketPath} (${code})`, EX_TEMPFAIL);
  if (NOT_ALLOWED.has(code)) return new ExitError(`cannot open ${socketPath} (${code}): the control socket is for root`, EX_NOPERM);
  return new ExitError(`${socketPath}: ${code}`, EX_TEMPFAIL);
}
