/**
 * One socket to an MTA, commands out and replies in: the socket an SMTP/LMTP
 * connection (smtp-connection.ts) connects and then speaks through.
 *
 * Every command sent pushes one handler onto a queue of expected replies,
 * and every reply that arrives resolves the handler at the head. Replies come
 * back in command order (RFC 2920 section 3.1), so this queue is all that
 * PIPELINING needs: write several commands, then await their promises in
 * order. A reply when nothing is expected is a protocol error.
 *
 * Each expected reply has the timeout of its stage, counted from the moment
 * it becomes the head of the queue (so a pipelined batch gets one timeout
 * per reply, as if the commands had been sent one at a time). Any failure
 * (timeout, reset, unparseable reply, the server closing with replies
 * outstanding) fails the whole connection: every pending promise rejects
 * with the same SmtpError, the socket is destroyed, and the connection is
 * never used again.
 *
 * A promise returned here resolves with any well-formed reply, positive or
 * not; deciding what a 4xx or 5xx means is the transaction's job.
 *
 * STARTTLS changes the socket under the queue: a 220 to it is the last
 * thing read from the clear socket, and the TLS socket made over that one
 * (starttls-upgrade.ts) takes its place. A server that sends anything after
 * that 220, before the handshake, is refused: those bytes were not
 * protected and would be read as replies to commands sent under TLS
 * (STARTTLS command injection, CVE-2011-0411).
 */
import net from 'node:net';
import type tls from 'node:tls';
import { assertSafeCommandLine, describeReply, type SmtpReply, type SmtpStage } from '@mailsubmit/shared';
import { MtaReplyReader, type MtaReplyLimits } from './mta-reply-reader.ts';
import { SmtpError, summarizeCommand } from './smtp-error.ts';
import { STAGE_TIMEOUT, type SmtpTimeouts } from './smtp-timeouts.ts';

export type SmtpTarget = { readonly host: string; readonly port: number } | { readonly path: string };

export interface CommandChannelOptions {
  readonly target: SmtpTarget;
  readonly timeouts: SmtpTimeouts;
  readonly replyLimits: MtaReplyLimits;
}

/** The command after whose 220 the clear socket is handed to TLS. */
export const STARTTLS = 'STARTTLS';

interface Waiter {
  readonly stage: SmtpStage;
  readonly command: string | undefined;
  readonly resolve: (reply: SmtpReply) => void;
  readonly reject: (err: SmtpError) => void;
}

interface DrainWaiter {
  readonly resolve: () => void;
  readonly reject: (err: SmtpError) => void;
  readonly timer: NodeJS.Timeout;
}

function ignore(): void {}

export class SmtpCommandChannel {
  /** The TCP (or Unix) socket, then the TLS socket over it once STARTTLS is done. */
  private socket: net.Socket;
  /** The socket as connected; STARTTLS's handshake runs over it. */
  readonly clearSocket: net.Socket;
  /** The clear socket's listeners, moved to the TLS socket after STARTTLS. */
  private readonly onSocketData: (chunk: Buffer) => void;
  private readonly onSocketError: (err: NodeJS.ErrnoException) => void;
  private readonly onSocketClose: () => void;
  private readonly timeouts: SmtpTimeouts;
  private readonly reader: MtaReplyReader;
  private readonly waiters: Waiter[] = [];
  private readonly closeListeners = new Set<() => void>();
  private replyTimer: NodeJS.Timeout | null = null;
  private drainWaiter: DrainWaiter | null = null;
  private readonly connectPromise: Promise<void>;
  private greetingPromise: Promise<SmtpReply> | null = null;
  private failedWith: SmtpError | null = null;
  private closed = false;
  private corkedForTurn = false;
  /** Rejects the connect promise when the connection fails before it is up. */
  private onFailure: (err: SmtpError) => void = ignore;

  /** Starts connecting at once; the greeting is the first reply expected. */
  constructor(options: CommandChannelOptions) {
    this.timeouts = options.timeouts;
    this.reader = new MtaReplyReader(options.replyLimits);
    const { target } = options;
    const tcp = 'host' in target;
    this.socket = tcp ? net.connect({ host: target.host, port: target.port }) : net.connect({ path: target.path });
    this.clearSocket = this.socket;
    const where = tcp ? `${target.host}:${target.port}` : target.path;

    this.connectPromise = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new SmtpError('ERR_SMTP_TIMEOUT', 'mta-timeout', `connecting to ${where} took more than ${this.timeouts.connect} ms`, { stage: 'connect' }));
      }, this.timeouts.connect);
      this.socket.once('connect', () => {
        clearTimeout(timer);
        // One small write per pipelined batch must not wait for a delayed ACK.
        if (tcp) this.socket.setNoDelay(true);
        this.greetingPromise = this.enqueue('greeting', undefined);
        resolve();
      });
      this.socket.once('close', () => clearTimeout(timer));
      this.onFailure = (err) => reject(err);
    });
    this.connectPromise.catch(ignore);

    this.onSocketData = (chunk: Buffer) => this.onData(chunk);
    this.onSocketError = (err: NodeJS.ErrnoException) => {
      const connecting = this.socket.connecting || this.greetingPromise === null;
      this.fail(
        connecting
          ? new SmtpError('ERR_SMTP_CONNECT', 'mta-unreachable', `cannot connect to ${where}: ${err.code ?? err.message}`, { stage: 'connect', cause: err })
          : // The stage of the reply awaited: a reset after the final dot must read as one (the MTA may have the message).
            new SmtpError('ERR_SMTP_SOCKET', 'mta-protocol', `connection to ${where} failed: ${err.code ?? err.message}`, { cause: err, stage: this.waiters[0]?.stage, command: this.waiters[0]?.command }),
      );
    };
    this.onSocketClose = () => {
      this.closed = true;
      if (this.waiters.length > 0 || this.drainWaiter !== null) {
        const head = this.waiters[0];
        const what = head === undefined ? 'taking the message' : head.stage === 'greeting' ? 'its greeting' : `answering ${summarizeCommand(head.command)}`;
        this.fail(
          new SmtpError('ERR_SMTP_CLOSED', 'mta-protocol', `the MTA closed the connection before ${what}`, {
            stage: head?.stage,
            command: head?.command,
          }),
        );
      }
      for (const listener of this.closeListeners) listener();
      this.closeListeners.clear();
    };
    this.listen(this.socket);
  }

  private listen(socket: net.Socket): void {
    socket.on('data', this.onSocketData);
    socket.on('error', this.onSocketError);
    socket.on('close', this.onSocketClose);
  }

  /** What failed this channel, for good; null while it works. */
  get failure(): SmtpError | null {
    return this.failedWith;
  }

  /** Open, never failed, no reply outstanding, and the socket takes writes. */
  get idle(): boolean {
    return this.failedWith === null && !this.closed && this.waiters.length === 0 && this.socket.writable;
  }

  /** Called once when the socket closes, for whatever reason. */
  onClose(listener: () => void): void {
    if (this.closed) listener();
    else this.closeListeners.add(listener);
  }

  /** The server's first reply, once connected; rejects with SmtpError. */
  async greeting(): Promise<SmtpReply> {
    await this.connectPromise;
    return this.greetingPromise ?? this.rejected();
  }

  /** Sends one command; the promise settles with its reply. */
  command(line: string, stage: SmtpStage): Promise<SmtpReply> {
    return this.send(line, stage, line);
  }

  /** `shownAs` stands for the line wherever the command is named (errors, timeouts): AUTH lines carry the secret. */
  send(line: string, stage: SmtpStage, shownAs: string): Promise<SmtpReply> {
    assertSafeCommandLine(line);
    if (this.failedWith !== null || this.closed) return this.rejected();
    const reply = this.enqueue(stage, shownAs);
    this.socket.write(`${line}\r\n`);
    return reply;
  }

  /** Sends several commands in one write (PIPELINING); one promise per command, in order. */
  pipeline(commands: readonly { readonly line: string; readonly stage: SmtpStage }[]): Promise<SmtpReply>[] {
    for (const { line } of commands) assertSafeCommandLine(line);
    this.socket.cork();
    try {
      return commands.map(({ line, stage }) => this.command(line, stage));
    } finally {
      this.socket.uncork();
    }
  }

  /** Expects one more reply without sending anything (LMTP: one per recipient after the dot). */
  expectReply(stage: SmtpStage): Promise<SmtpReply> {
    if (this.failedWith !== null || this.closed) return this.rejected();
    return this.enqueue(stage, '.');
  }

  /** Writes message bytes; resolves once the socket can take more (waits at most the data-block timeout). */
  writeData(chunk: Uint8Array): Promise<void> {
    if (this.failedWith !== null) return this.rejected();
    this.corkForThisTurn();
    if (this.socket.write(chunk)) return Promise.resolve();
    const promise = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new SmtpError('ERR_SMTP_TIMEOUT', 'mta-timeout', `the MTA took no data for ${this.timeouts.dataBlock} ms`, { stage: 'data-block' }));
      }, this.timeouts.dataBlock);
      this.drainWaiter = { resolve, reject, timer };
      this.socket.once('drain', () => {
        const waiter = this.drainWaiter;
        this.drainWaiter = null;
        if (waiter === null) return;
        clearTimeout(waiter.timer);
        waiter.resolve();
      });
    });
    promise.catch(ignore);
    return promise;
  }

  /**
   * Holds writes until the event loop's next turn, so that what is written
   * in the same turn leaves in one system call: for the usual small message
   * the body and the final dot (which the source's end lets through a few
   * microtasks later) go out together, one write fewer per submission
   * (about 3 % of the daemon's time in the profile of docs/performance.md).
   * Bytes still go out as they come, one loop turn later at most, and the
   * socket's backpressure is unchanged (write() still reports a full buffer).
   */
  private corkForThisTurn(): void {
    if (this.corkedForTurn) return;
    this.corkedForTurn = true;
    this.socket.cork();
    setImmediate(() => {
      if (!this.corkedForTurn) return;
      this.corkedForTurn = false;
      this.socket.uncork();
    });
  }

  /**
   * Reads and writes through `secure`, the TLS socket made over the clear
   * one, from now on. When the channel failed during the handshake, the
   * TLS socket is destroyed and that failure thrown.
   */
  continueOver(secure: tls.TLSSocket): void {
    if (this.failedWith !== null) {
      secure.destroy();
      throw this.failedWith;
    }
    this.socket = secure;
    this.listen(secure);
  }

  /** Says QUIT and closes; never throws. A failed or busy channel is just destroyed. */
  async quit(): Promise<void> {
    if (this.failedWith === null && !this.closed && this.waiters.length === 0) {
      try {
        await this.command('QUIT', 'quit');
      } catch {
        // Closing anyway.
      }
    }
    this.destroy();
  }

  /**
   * Closes the socket at once, dropping anything not yet written. This is
   * how a transaction is abandoned: the server sees the connection go away
   * without the final dot and discards what it received.
   */
  destroy(): void {
    if (this.failedWith === null) {
      this.fail(new SmtpError('ERR_SMTP_DESTROYED', 'mta-protocol', 'the connection was closed by this side'));
    }
  }

  /**
   * The 220 to STARTTLS was the last thing the server may say in the clear:
   * anything after it (a further reply, or part of one) is refused. From
   * here the TLS socket reads the bytes, and this side's reader no longer
   * listens to the clear socket.
   */
  private afterStartTlsReply(head: Waiter, reply: SmtpReply, more: boolean): boolean {
    if (reply.code !== 220) return true;
    if (more || this.reader.holdsBytes) {
      const err = new SmtpError('ERR_SMTP_TLS_INJECTION', 'mta-protocol', 'the MTA sent data in the clear after its 220 to STARTTLS (possible command injection)', {
        stage: 'ehlo',
        command: STARTTLS,
        reply,
      });
      this.fail(err);
      head.reject(err);
      return false;
    }
    this.clearSocket.off('data', this.onSocketData);
    this.clearSocket.off('error', this.onSocketError);
    this.clearSocket.off('close', this.onSocketClose);
    this.clearSocket.on('error', ignore);
    return true;
  }

  private enqueue(stage: SmtpStage, command: string | undefined): Promise<SmtpReply> {
    const promise = new Promise<SmtpReply>((resolve, reject) => {
      this.waiters.push({ stage, command, resolve, reject });
    });
    // Pipelined callers await replies one after another; a connection
    // failure rejects them all at once and must not count as unhandled.
    promise.catch(ignore);
    if (this.waiters.length === 1) this.armReplyTimer();
    return promise;
  }

  private rejected<T>(): Promise<T> {
    const promise = Promise.reject(this.failedWith ?? new SmtpError('ERR_SMTP_NOT_USABLE', 'mta-protocol', 'the connection is not usable'));
    promise.catch(ignore);
    return promise;
  }

  private armReplyTimer(): void {
    if (this.replyTimer !== null) clearTimeout(this.replyTimer);
    this.replyTimer = null;
    const head = this.waiters[0];
    if (head === undefined) return;
    const ms = this.timeouts[STAGE_TIMEOUT[head.stage]];
    this.replyTimer = setTimeout(() => {
      const what = head.stage === 'greeting' ? 'greeting' : `reply to ${summarizeCommand(head.command)}`;
      this.fail(new SmtpError('ERR_SMTP_TIMEOUT', 'mta-timeout', `no ${what} within ${ms} ms`, { stage: head.stage, command: head.command }));
    }, ms);
  }

  private onData(chunk: Buffer): void {
    if (this.failedWith !== null) return;
    let replies: SmtpReply[];
    try {
      replies = this.reader.push(chunk);
    } catch (err) {
      this.fail(err as SmtpError);
      return;
    }
    for (const [i, reply] of replies.entries()) {
      if (this.failedWith !== null) return;
      const head = this.waiters.shift();
      if (head === undefined) {
        this.fail(new SmtpError('ERR_SMTP_UNEXPECTED_REPLY', 'mta-protocol', `unexpected reply: ${describeReply(reply)}`, { reply }));
        return;
      }
      this.armReplyTimer();
      if (head.command === STARTTLS && !this.afterStartTlsReply(head, reply, i < replies.length - 1)) return;
      head.resolve(reply);
    }
  }

  private fail(err: SmtpError): void {
    if (this.failedWith !== null) return;
    this.failedWith = err;
    if (this.replyTimer !== null) clearTimeout(this.replyTimer);
    this.replyTimer = null;
    for (const waiter of this.waiters.splice(0)) waiter.reject(err);
    const drain = this.drainWaiter;
    this.drainWaiter = null;
    if (drain !== null) {
      clearTimeout(drain.timer);
      drain.reject(err);
    }
    this.onFailure(err);
    // What was written before the failure leaves first, as it would have without the cork.
    if (this.corkedForTurn) {
      this.corkedForTurn = false;
      this.socket.uncork();
    }
    this.socket.destroy();
    this.clearSocket.destroy();
  }
}
