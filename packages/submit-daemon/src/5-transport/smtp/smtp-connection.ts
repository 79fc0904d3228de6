/**
 * A small SMTP/LMTP client connection over TCP or a Unix socket.
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
 * With a TLS policy (tls-policy.ts) the handshake goes on after EHLO:
 * STARTTLS, the TLS handshake over the same socket (starttls-upgrade.ts),
 * and EHLO again. RFC 3207 section 4.2: what the server said before TLS is
 * forgotten, the capabilities are the second EHLO's. A server that sends
 * anything after its 220 to STARTTLS, before the handshake, is refused:
 * those bytes were not protected and would be read as replies to commands
 * sent under TLS (STARTTLS command injection, CVE-2011-0411).
 *
 * With `auth`, SMTP AUTH follows the EHLO that counts (smtp-auth.ts). Its
 * lines carry the secret, so wherever a command is named (errors, timeouts)
 * they are named by what they are, never by their text.
 */
import net from 'node:net';
import {
  assertSafeCommandLine,
  describeReply,
  NO_CAPABILITIES,
  parseEhloReply,
  replyOutcome,
  type ServerCapabilities,
  type SmtpReply,
  type SmtpStage,
} from '@mailsubmit/shared';
import { DEFAULT_MTA_REPLY_LIMITS, MtaReplyReader, type MtaReplyLimits } from './mta-reply-reader.ts';
import { authenticate, type AuthFacts, type SmtpAuth } from './smtp-auth.ts';
import { SmtpError, summarizeCommand } from './smtp-error.ts';
import { startTls, type TlsFacts } from './starttls-upgrade.ts';
import { announcesStartTls, NO_TLS, tlsRequired, type TlsPolicy } from './tls-policy.ts';

export type SmtpTarget = { readonly host: string; readonly port: number } | { readonly path: string };

/** Milliseconds per stage. */
export interface SmtpTimeouts {
  readonly connect: number;
  readonly greeting: number;
  readonly ehlo: number;
  readonly xforward: number;
  readonly mail: number;
  readonly rcpt: number;
  readonly dataInit: number;
  /** Longest wait for the socket to take more of the body (a stalled server). */
  readonly dataBlock: number;
  readonly dataEnd: number;
  readonly rset: number;
  readonly quit: number;
}

/**
 * Postfix's smtp_*_timeout defaults, shortened for a loopback peer, except
 * at the end of data: there the server may run milters and fsyncs before it
 * answers, and giving up early is the one way to cause a duplicate (the MTA
 * may commit after we told the caller to retry). Postfix waits 600 s.
 */
export const DEFAULT_TIMEOUTS: SmtpTimeouts = Object.freeze({
  connect: 5_000, // Postfix 30 s
  greeting: 30_000, // smtp_helo_timeout 300 s covers greeting and EHLO
  ehlo: 30_000,
  xforward: 30_000, // smtp_xforward_timeout 300 s
  mail: 30_000, // smtp_mail_timeout 300 s
  rcpt: 30_000, // smtp_rcpt_timeout 300 s
  dataInit: 30_000, // smtp_data_init_timeout 120 s
  dataBlock: 60_000, // smtp_data_xfer_timeout 180 s
  dataEnd: 300_000, // smtp_data_done_timeout 600 s
  rset: 10_000, // smtp_rset_timeout 20 s
  quit: 10_000, // smtp_quit_timeout 300 s
});

export interface SmtpConnectionOptions {
  readonly target: SmtpTarget;
  /** 'lmtp' sends LHLO and expects one final reply per recipient. */
  readonly protocol?: 'smtp' | 'lmtp';
  /** The name this client gives in EHLO/LHLO. */
  readonly heloName?: string;
  readonly timeouts?: Partial<SmtpTimeouts>;
  readonly replyLimits?: Partial<MtaReplyLimits>;
  /** STARTTLS policy; none unless given. The handshake's timeout is the EHLO stage's. */
  readonly tls?: TlsPolicy;
  /** SMTP AUTH after the last EHLO (smtp-auth.ts); none unless given. Each step's timeout is the EHLO stage's. */
  readonly auth?: SmtpAuth;
}

const STAGE_TIMEOUT: Readonly<Record<SmtpStage, keyof SmtpTimeouts>> = {
  connect: 'connect',
  greeting: 'greeting',
  ehlo: 'ehlo',
  xforward: 'xforward',
  mail: 'mail',
  rcpt: 'rcpt',
  'data-init': 'dataInit',
  'data-block': 'dataBlock',
  'data-end': 'dataEnd',
  'lmtp-data-end': 'dataEnd',
  rset: 'rset',
  quit: 'quit',
};

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

const STARTTLS = 'STARTTLS';

/** A negative or out-of-place reply as an SmtpError with the outcome for its stage. */
export function replyError(reply: SmtpReply, stage: SmtpStage, command: string | undefined): SmtpError {
  return new SmtpError('ERR_SMTP_REPLY', replyOutcome(reply, stage), `${summarizeCommand(command)} answered: ${describeReply(reply)}`, {
    stage,
    reply,
    command,
  });
}

export class SmtpConnection {
  readonly protocol: 'smtp' | 'lmtp';
  /** The TCP (or Unix) socket, then the TLS socket over it once STARTTLS is done. */
  private socket: net.Socket;
  private readonly plainSocket: net.Socket;
  private readonly tlsPolicy: TlsPolicy;
  private readonly host: string | null;
  private tlsFacts: TlsFacts | null = null;
  private tlsFallback: string | null = null;
  private readonly authOptions: SmtpAuth | undefined;
  private authFacts: AuthFacts | null = null;
  /** The clear socket's listeners, moved to the TLS socket after STARTTLS. */
  private readonly onSocketData: (chunk: Buffer) => void;
  private readonly onSocketError: (err: NodeJS.ErrnoException) => void;
  private readonly onSocketClose: () => void;
  private readonly timeouts: SmtpTimeouts;
  private readonly reader: MtaReplyReader;
  private readonly heloName: string;
  private readonly waiters: Waiter[] = [];
  private readonly closeListeners = new Set<() => void>();
  private replyTimer: NodeJS.Timeout | null = null;
  private drainWaiter: DrainWaiter | null = null;
  private connectPromise: Promise<void>;
  private greetingPromise: Promise<SmtpReply> | null = null;
  private failure: SmtpError | null = null;
  private closed = false;
  private errorSeen = false;
  private corkedForTurn = false;
  private caps: ServerCapabilities = NO_CAPABILITIES;
  /** Rejects the connect promise when the connection fails before it is up. */
  private onFailure: (err: SmtpError) => void = ignore;
  /** Set by the transaction while it owns the connection. */
  busy = false;

  /** Connects, reads the greeting and says EHLO (LHLO); rejects with SmtpError. */
  static async open(options: SmtpConnectionOptions): Promise<SmtpConnection> {
    const conn = new SmtpConnection(options);
    try {
      await conn.handshake();
      await conn.logIn();
    } catch (err) {
      conn.destroy();
      // "may": the server offered STARTTLS and the handshake failed; the
      // socket is in no usable state, so start over in the clear, as
      // Postfix does rather than defer mail that may go unencrypted.
      if (options.tls?.level === 'may' && err instanceof SmtpError && err.code === 'ERR_SMTP_TLS_HANDSHAKE') {
        const plain = await SmtpConnection.open({ ...options, tls: NO_TLS });
        plain.tlsFallback = err.message;
        return plain;
      }
      throw err;
    }
    return conn;
  }

  private constructor(options: SmtpConnectionOptions) {
    this.protocol = options.protocol ?? 'smtp';
    this.heloName = options.heloName ?? 'localhost';
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    this.reader = new MtaReplyReader({ ...DEFAULT_MTA_REPLY_LIMITS, ...options.replyLimits });
    this.tlsPolicy = options.tls ?? NO_TLS;
    this.authOptions = options.auth;
    const { target } = options;
    const tcp = 'host' in target;
    this.host = tcp ? target.host : null;
    this.socket = tcp ? net.connect({ host: target.host, port: target.port }) : net.connect({ path: target.path });
    this.plainSocket = this.socket;
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

  /** What TLS this connection has: null while it speaks in the clear. */
  get tls(): TlsFacts | null {
    return this.tlsFacts;
  }

  /** "may" only: why the TLS handshake failed before this connection was made again in the clear. */
  get tlsFailedBefore(): string | null {
    return this.tlsFallback;
  }

  /** Who this connection logged in as, and how: null without AUTH. */
  get authenticated(): AuthFacts | null {
    return this.authFacts;
  }

  /** What the server announced (all false after a HELO fallback). */
  get capabilities(): ServerCapabilities {
    return this.caps;
  }

  /** Open, never failed, not in a transaction, and no reply outstanding. */
  get usable(): boolean {
    return this.failure === null && !this.closed && !this.busy && this.waiters.length === 0 && this.socket.writable;
  }

  /** True once anything went wrong on this connection (never to be reused). */
  get sawError(): boolean {
    return this.errorSeen || this.failure !== null;
  }

  /** Records a negative reply: the connection still works but will not be reused. */
  markError(): void {
    this.errorSeen = true;
  }

  /** Called once when the socket closes, for whatever reason. */
  onClose(listener: () => void): void {
    if (this.closed) listener();
    else this.closeListeners.add(listener);
  }

  /** Sends one command; the promise settles with its reply. */
  command(line: string, stage: SmtpStage): Promise<SmtpReply> {
    return this.send(line, stage, line);
  }

  /** `shownAs` stands for the line wherever the command is named (errors, timeouts): AUTH lines carry the secret. */
  private send(line: string, stage: SmtpStage, shownAs: string): Promise<SmtpReply> {
    assertSafeCommandLine(line);
    if (this.failure !== null || this.closed) return this.rejected();
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
    if (this.failure !== null || this.closed) return this.rejected();
    return this.enqueue(stage, '.');
  }

  /** Writes message bytes; resolves once the socket can take more (waits at most the data-block timeout). */
  writeData(chunk: Uint8Array): Promise<void> {
    if (this.failure !== null) return this.rejected();
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

  /** Says QUIT and closes; never throws. A failed or busy connection is just destroyed. */
  async quit(): Promise<void> {
    if (this.failure === null && !this.closed && this.waiters.length === 0) {
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
    if (this.failure === null) {
      this.fail(new SmtpError('ERR_SMTP_DESTROYED', 'mta-protocol', 'the connection was closed by this side'));
    }
  }

  private async handshake(): Promise<void> {
    await this.connectPromise;
    const greeting = await (this.greetingPromise ?? this.rejected());
    if (greeting.code < 200 || greeting.code > 299) throw replyError(greeting, 'greeting', undefined);

    const hello = `${this.protocol === 'lmtp' ? 'LHLO' : 'EHLO'} ${this.heloName}`;
    const reply = await this.command(hello, 'ehlo');
    if (reply.code >= 200 && reply.code <= 299) {
      this.caps = parseEhloReply(reply.lines);
      if (this.tlsPolicy.level === 'none') return;
      if (announcesStartTls(reply.lines)) {
        await this.upgradeToTls(hello);
        return;
      }
      if (tlsRequired(this.tlsPolicy)) throw this.tlsUnavailable('the MTA does not offer STARTTLS');
      return;
    }
    // RFC 5321 section 3.2: a server that does not know EHLO gets HELO and
    // no extensions. LMTP has no such fallback (RFC 2033 section 4.1).
    if (this.protocol === 'lmtp' || reply.code < 500) throw replyError(reply, 'ehlo', hello);
    const helo = `HELO ${this.heloName}`;
    const fallback = await this.command(helo, 'ehlo');
    if (fallback.code < 200 || fallback.code > 299) throw replyError(fallback, 'ehlo', helo);
    this.caps = NO_CAPABILITIES;
    if (tlsRequired(this.tlsPolicy)) throw this.tlsUnavailable('the MTA does not know EHLO, so it offers no STARTTLS');
  }

  /** AUTH after the EHLO that counts, when options.auth asks for it. */
  private async logIn(): Promise<void> {
    if (this.authOptions === undefined) return;
    this.authFacts = await authenticate((line, shownAs) => this.send(line, 'ehlo', shownAs), this.authOptions, {
      capabilities: this.caps,
      tlsActive: this.tlsFacts !== null,
    });
  }

  /** STARTTLS, the handshake, and EHLO again; leaves the clear capabilities when "may" is refused. */
  private async upgradeToTls(hello: string): Promise<void> {
    const answer = await this.command(STARTTLS, 'ehlo');
    if (answer.code !== 220) {
      // RFC 3207 section 4: after a refusal the session goes on as before.
      if (tlsRequired(this.tlsPolicy)) throw this.tlsUnavailable(`the MTA refused STARTTLS: ${describeReply(answer)}`);
      return;
    }
    // onData has detached the reader from the clear socket when the 220 came.
    this.caps = NO_CAPABILITIES;
    const { socket, facts } = await startTls(this.plainSocket, {
      policy: this.tlsPolicy,
      host: this.host ?? 'localhost',
      timeout: this.timeouts.ehlo,
    });
    if (this.failure !== null) {
      socket.destroy();
      throw this.failure;
    }
    this.socket = socket;
    this.tlsFacts = facts;
    this.listen(socket);
    const again = await this.command(hello, 'ehlo');
    if (again.code < 200 || again.code > 299) throw replyError(again, 'ehlo', hello);
    this.caps = parseEhloReply(again.lines);
  }

  private tlsUnavailable(detail: string): SmtpError {
    return new SmtpError('ERR_SMTP_TLS_UNAVAILABLE', 'mta-protocol', `${detail}, and the TLS policy (${this.tlsPolicy.level}) requires it`, {
      stage: 'ehlo',
      command: STARTTLS,
    });
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
    this.plainSocket.off('data', this.onSocketData);
    this.plainSocket.off('error', this.onSocketError);
    this.plainSocket.off('close', this.onSocketClose);
    this.plainSocket.on('error', ignore);
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
    const promise = Promise.reject(this.failure ?? new SmtpError('ERR_SMTP_NOT_USABLE', 'mta-protocol', 'the connection is not usable'));
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
    if (this.failure !== null) return;
    let replies: SmtpReply[];
    try {
      replies = this.reader.push(chunk);
    } catch (err) {
      this.fail(err as SmtpError);
      return;
    }
    for (const [i, reply] of replies.entries()) {
      if (this.failure !== null) return;
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
    if (this.failure !== null) return;
    this.failure = err;
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
    this.plainSocket.destroy();
  }
}
