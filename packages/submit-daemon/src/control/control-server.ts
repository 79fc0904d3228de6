/**
 * The daemon's control socket (daemon.control_socket): a Unix stream socket
 * that answers one request line per connection (see control-protocol.ts)
 * for `mailsubmitctl status`, `reload` and `queue` (the local queue, through
 * a QueueControl, when the daemon runs one).
 *
 * SECURITY: only root (and the daemon's own user) may talk to it. Node's
 * net module cannot read SO_PEERCRED, so the filesystem does the checking:
 * the socket is created mode 0600 under a umask of 0177 (there is no moment
 * at which it is more open), owned by the daemon's user, in the daemon's
 * runtime directory (0750). Connecting to a Unix socket needs write
 * permission on it, which nobody but its owner and root has. The set-gid
 * helper's group gets into the directory, never onto this socket. The
 * worst a request can do is make the daemon re-read files only root can
 * write (see util/safe-path.ts), or hold, retry or delete a queued message,
 * named by an id of the queue's own form (never a path).
 *
 * Every connection has a deadline and a request-size cap, so a client that
 * connects and says nothing costs nothing.
 */
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../logging/logger.ts';
import {
  CONTROL_PROTOCOL,
  ControlProtocolError,
  encodeReply,
  MAX_REQUEST_OCTETS,
  parseRequest,
  type ControlFailureReason,
  type ControlReply,
  type ControlRequest,
  type QueueCommand,
  type ReloadReport,
  type StatusReport,
} from './control-protocol.ts';
import { QueueControlError, UnknownQueuedMessage, type QueueControl } from './queue-control.ts';

/** The most ids one log line of a queue change names. */
const LOGGED_IDS = 100;

/** A request takes microseconds to write; a client silent this long is dropped. */
const REQUEST_DEADLINE_MS = 5_000;

/** What the control socket can ask of the daemon. */
export interface ControlTarget {
  status(): StatusReport;
  reload(): ReloadReport;
}

export class ControlServer {
  private server: Server | null = null;
  private inode: number | null = null;
  private readonly clients = new Set<Socket>();

  constructor(
    readonly path: string,
    private readonly target: ControlTarget,
    private readonly log: Logger,
    /** The local queue's runner; null (or no getter) while the daemon runs without one. */
    private readonly queue: () => QueueControl | null = () => null,
  ) {}

  /** Binds the socket; rejects with a message naming daemon.control_socket and the path. */
  async listen(): Promise<void> {
    try {
      await removeStaleSocket(this.path);
      // Half-open, so a client that shuts down its side after the request (socat, nc -N) still gets the reply.
      const server = createServer({ allowHalfOpen: true }, (socket) => this.serve(socket));
      const listening = new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.once('listening', () => {
          server.off('error', reject);
          resolve();
        });
      });
      // The bind happens inside listen(), synchronously: the umask covers it and nothing else.
      const umask = process.umask(0o177);
      try {
        server.listen(this.path);
      } finally {
        process.umask(umask);
      }
      await listening;
      chmodSync(this.path, 0o600);
      this.inode = lstatSync(this.path).ino;
      this.server = server;
      server.on('error', (err) => this.log.error({ err: err.message }, 'control socket failed'));
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new Error(`daemon.control_socket: cannot listen on ${this.path}: ${reason}`);
    }
  }

  /** Stops listening, ends open control connections and removes the socket file. */
  async close(): Promise<void> {
    const server = this.server;
    if (server === null) return;
    this.server = null;
    for (const client of this.clients) client.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    try {
      // Only our own socket: a successor may already have bound the path.
      if (lstatSync(this.path).ino === this.inode) unlinkSync(this.path);
    } catch {
      // Already gone.
    }
  }

  private serve(socket: Socket): void {
    this.clients.add(socket);
    socket.on('close', () => this.clients.delete(socket));
    socket.on('error', () => undefined);
    socket.setTimeout(REQUEST_DEADLINE_MS, () => socket.destroy());
    let buffered = '';
    let answered = false;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      if (answered) return;
      buffered += chunk;
      const end = buffered.indexOf('\n');
      if (end === -1 && buffered.length <= MAX_REQUEST_OCTETS) return;
      answered = true;
      if (end === -1 || end > MAX_REQUEST_OCTETS) socket.end(encodeReply(failure(`a request is one line of at most ${MAX_REQUEST_OCTETS} octets`)));
      else this.reply(socket, buffered.slice(0, end));
    });
    socket.on('end', () => {
      if (answered) return;
      answered = true;
      // A last request line without its newline is still one request.
      if (buffered === '') socket.end();
      else this.reply(socket, buffered);
    });
  }

  /** Answers one request line; a queue action may take a while, during which the client waits on its own deadline. */
  private reply(socket: Socket, line: string): void {
    socket.setTimeout(0);
    void this.answer(line)
      .then(encodeReply)
      // Nothing a client sends may throw out of a socket handler: that would stop the daemon.
      .catch((err: unknown) => encodeReply(failure(`the reply could not be written: ${(err as Error).message}`)))
      .then((text) => socket.end(text));
  }

  private async answer(line: string): Promise<ControlReply> {
    let request: ControlRequest;
    try {
      request = parseRequest(line);
    } catch (err) {
      return failure(err instanceof ControlProtocolError ? err.message : `bad request: ${String(err)}`);
    }
    const { command } = request;
    this.log.info({ command, ...(request.id === undefined ? {} : { id: request.id }) }, 'control request');
    try {
      if (command === 'status') return { protocol: CONTROL_PROTOCOL, ok: true, status: this.target.status() };
      if (command === 'reload') return { protocol: CONTROL_PROTOCOL, ok: true, reload: this.target.reload() };
      return await this.answerQueue(command, request.id);
    } catch (err) {
      // An id the queue does not hold: nothing was asked of it, nothing changed.
      if (err instanceof UnknownQueuedMessage) return failure(err.message, 'unknown-id');
      if (err instanceof QueueControlError) {
        this.log.warn({ command, err: err.message }, 'queue request refused');
        return failure(err.message, 'queue-refused');
      }
      this.log.error({ command, err: (err as Error).message }, 'control request failed');
      return failure(`${command} failed: ${(err as Error).message}`);
    }
  }

  private async answerQueue(command: QueueCommand, id: string | undefined): Promise<ControlReply> {
    const queue = this.queue();
    if (queue === null) return failure('the local queue is not in use in this mailsubmitd (queue.directory)', 'no-queue');
    if (command === 'queue-list') return { protocol: CONTROL_PROTOCOL, ok: true, queue_list: queue.list() };
    if (command === 'queue-show') return { protocol: CONTROL_PROTOCOL, ok: true, queue_message: await queue.show(id as string) };
    let ids: readonly string[];
    if (command === 'queue-flush') ids = await queue.flush(id);
    else if (command === 'queue-requeue') ids = await queue.requeue(id);
    else {
      const action = { 'queue-hold': queue.hold, 'queue-release': queue.release, 'queue-delete': queue.delete }[command];
      await action.call(queue, id as string);
      ids = [id as string];
    }
    // A flush of a long queue names its first ids only; the runner logs each message it acts on.
    this.log.info({ command, count: ids.length, ids: ids.slice(0, LOGGED_IDS) }, 'queue changed by an administrator');
    return { protocol: CONTROL_PROTOCOL, ok: true, queue_action: { command, ids } };
  }
}

function failure(error: string, reason?: ControlFailureReason): ControlReply {
  return { protocol: CONTROL_PROTOCOL, ok: false, error, ...(reason === undefined ? {} : { reason }) };
}

/**
 * A socket file left by a daemon that died is replaced; one that still
 * answers belongs to a running daemon, and anything that is not a socket
 * is not ours to remove.
 */
async function removeStaleSocket(path: string): Promise<void> {
  let stats;
  try {
    stats = lstatSync(path);
  } catch {
    return;
  }
  if (!stats.isSocket()) throw new Error(`${path} exists and is not a socket`);
  const answers = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (answers) throw new Error('another process (a running mailsubmitd?) answers on it');
  unlinkSync(path);
}
