/**
 * The client side of mailsubmitd's control socket: one request line, one
 * reply line (the protocol is the daemon's control/control-protocol.ts).
 *
 * Failures map to sysexits: nothing listening (the daemon is not running)
 * is 75, like any temporary failure; a socket the caller may not open is 77
 * (the control socket is for root); a reply that is not the protocol, or a
 * refusal from the daemon, is 76.
 */
import { connect } from 'node:net';
import { EX_NOPERM, EX_TEMPFAIL } from '@mailsubmit/shared';
import { ControlProtocolError, encodeRequest, parseReply, type ControlCommand, type ControlReply } from '@mailsubmit/submit-daemon/admin';
import { ExitError } from './errors.ts';

export const EX_PROTOCOL = 76;
/** A reload reads two small files; a daemon that takes longer than this is stuck. */
const REPLY_DEADLINE_MS = 10_000;
/** A status reply is a few kilobytes; this is a generous cap, not a target. */
const MAX_REPLY_OCTETS = 1_048_576;

const NOT_RUNNING = new Set(['ENOENT', 'ECONNREFUSED', 'ENOTDIR']);
const NOT_ALLOWED = new Set(['EACCES', 'EPERM']);

export type ControlSuccess = Extract<ControlReply, { ok: true }>;

/** Sends `command` and returns the daemon's successful reply; throws ExitError otherwise. */
export async function controlRequest(socketPath: string, command: ControlCommand): Promise<ControlSuccess> {
  const line = await exchange(socketPath, encodeRequest(command));
  let reply: ControlReply;
  try {
    reply = parseReply(line);
  } catch (err) {
    if (err instanceof ControlProtocolError) throw new ExitError(`${socketPath}: ${err.message}`, EX_PROTOCOL);
    throw err;
  }
  if (!reply.ok) throw new ExitError(`mailsubmitd refused the request: ${reply.error}`, EX_PROTOCOL);
  return reply;
}

function exchange(socketPath: string, request: string): Promise<string> {
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
      () => settle({ error: new ExitError(`mailsubmitd did not answer on ${socketPath} within ${REPLY_DEADLINE_MS / 1000} s`, EX_TEMPFAIL) }),
      REPLY_DEADLINE_MS,
    );
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(request));
    socket.on('data', (chunk: string) => {
      received += chunk;
      const end = received.indexOf('\n');
      if (end !== -1) settle({ line: received.slice(0, end) });
      else if (received.length > MAX_REPLY_OCTETS) settle({ error: new ExitError(`${socketPath}: the reply is longer than ${MAX_REPLY_OCTETS} octets`, EX_PROTOCOL) });
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
