/**
 * A raw client of the daemon's control socket for tests: sends bytes as
 * given (so tests can send what mailsubmitctl never would) and returns the
 * reply line the daemon wrote before closing the connection.
 */
import { connect } from 'node:net';
import type { ControlReply, ReloadReport, StatusReport } from '../../src/control/control-protocol.ts';

/** `halfClose`: shut down the sending side after the request, as socat and nc -N do. */
export function askRaw(socketPath: string, request: string | Buffer, halfClose = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let reply = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => (halfClose ? socket.end(request) : socket.write(request)));
    socket.on('data', (chunk: string) => (reply += chunk));
    socket.on('end', () => resolve(reply));
    socket.on('error', reject);
  });
}

export async function ask(socketPath: string, request: unknown): Promise<ControlReply> {
  const reply = await askRaw(socketPath, `${JSON.stringify(request)}\n`);
  return JSON.parse(reply) as ControlReply;
}

export async function status(socketPath: string): Promise<StatusReport> {
  const reply = await ask(socketPath, { command: 'status' });
  if (!('status' in reply)) throw new Error(`no status in ${JSON.stringify(reply)}`);
  return reply.status;
}

export async function reload(socketPath: string): Promise<ReloadReport> {
  const reply = await ask(socketPath, { command: 'reload' });
  if (!('reload' in reply)) throw new Error(`no reload report in ${JSON.stringify(reply)}`);
  return reply.reload;
}

/**
 * Polls the status until `predicate` holds: for effects that follow a
 * signal or a client's write, and for a daemon that is still starting
 * (connection errors are retried until the deadline).
 */
export async function waitForStatus(socketPath: string, predicate: (s: StatusReport) => boolean, timeoutMs = 10_000): Promise<StatusReport> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let last: unknown;
    try {
      last = await status(socketPath);
      if (predicate(last as StatusReport)) return last as StatusReport;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`status never matched; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
