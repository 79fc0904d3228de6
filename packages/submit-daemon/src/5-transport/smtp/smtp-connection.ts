/**
 * A small SMTP/LMTP client connection over TCP or a Unix socket: the
 * session's opening (greeting, EHLO or LHLO, STARTTLS, AUTH) and what it
 * learnt, over a command channel (smtp-command-channel.ts) that carries
 * the commands, their replies in order, and their timeouts.
 *
 * With a TLS policy (tls-policy.ts) the handshake goes on after EHLO:
 * STARTTLS, the TLS handshake over the same socket (starttls-upgrade.ts),
 * and EHLO again. RFC 3207 section 4.2: what the server said before TLS is
 * forgotten, the capabilities are the second EHLO's.
 *
 * With `auth`, SMTP AUTH follows the EHLO that counts (smtp-auth.ts). Its
 * lines carry the secret, so wherever a command is named (errors, timeouts)
 * they are named by what they are, never by their text.
 */
import {
  describeReply,
  NO_CAPABILITIES,
  parseEhloReply,
  replyOutcome,
  type ServerCapabilities,
  type SmtpReply,
  type SmtpStage,
} from '@mailsubmit/shared';
import { DEFAULT_MTA_REPLY_LIMITS, type MtaReplyLimits } from './mta-reply-reader.ts';
import { authenticate, type AuthFacts, type SmtpAuth } from './smtp-auth.ts';
import { SmtpCommandChannel, STARTTLS, type SmtpTarget } from './smtp-command-channel.ts';
import { SmtpError, summarizeCommand } from './smtp-error.ts';
import { DEFAULT_TIMEOUTS, type SmtpTimeouts } from './smtp-timeouts.ts';
import { startTls, type TlsFacts } from './starttls-upgrade.ts';
import { announcesStartTls, NO_TLS, tlsRequired, type TlsPolicy } from './tls-policy.ts';

export type { SmtpTarget } from './smtp-command-channel.ts';
export { DEFAULT_TIMEOUTS, type SmtpTimeouts } from './smtp-timeouts.ts';

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
  private readonly channel: SmtpCommandChannel;
  private readonly tlsPolicy: TlsPolicy;
  private readonly host: string | null;
  private tlsFacts: TlsFacts | null = null;
  private tlsFallback: string | null = null;
  private readonly authOptions: SmtpAuth | undefined;
  private authFacts: AuthFacts | null = null;
  /** The TLS handshake's limit: the EHLO stage's timeout. */
  private readonly ehloTimeout: number;
  private readonly heloName: string;
  private errorSeen = false;
  private caps: ServerCapabilities = NO_CAPABILITIES;
  /** Set by the transaction while it owns the connection. */
  busy = false;
  /**
   * Set by the pool when it takes the connection back: the next transaction
   * starts with RSET (pipelined with its envelope where the server allows),
   * which proves the server still there and the session clean before any
   * message octet is sent.
   */
  resetOwed = false;

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
    const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    this.ehloTimeout = timeouts.ehlo;
    this.tlsPolicy = options.tls ?? NO_TLS;
    this.authOptions = options.auth;
    const { target } = options;
    this.host = 'host' in target ? target.host : null;
    this.channel = new SmtpCommandChannel({ target, timeouts, replyLimits: { ...DEFAULT_MTA_REPLY_LIMITS, ...options.replyLimits } });
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
    return this.channel.idle && !this.busy;
  }

  /** True once anything went wrong on this connection (never to be reused). */
  get sawError(): boolean {
    return this.errorSeen || this.channel.failure !== null;
  }

  /** Records a negative reply: the connection still works but will not be reused. */
  markError(): void {
    this.errorSeen = true;
  }

  /** Called once when the socket closes, for whatever reason. */
  onClose(listener: () => void): void {
    this.channel.onClose(listener);
  }

  /** Sends one command; the promise settles with its reply. */
  command(line: string, stage: SmtpStage): Promise<SmtpReply> {
    return this.channel.command(line, stage);
  }

  /** Sends several commands in one write (PIPELINING); one promise per command, in order. */
  pipeline(commands: readonly { readonly line: string; readonly stage: SmtpStage }[]): Promise<SmtpReply>[] {
    return this.channel.pipeline(commands);
  }

  /** Expects one more reply without sending anything (LMTP: one per recipient after the dot). */
  expectReply(stage: SmtpStage): Promise<SmtpReply> {
    return this.channel.expectReply(stage);
  }

  /** Writes message bytes; resolves once the socket can take more (waits at most the data-block timeout). */
  writeData(chunk: Uint8Array): Promise<void> {
    return this.channel.writeData(chunk);
  }

  /** Says QUIT and closes; never throws. A failed or busy connection is just destroyed. */
  quit(): Promise<void> {
    return this.channel.quit();
  }

  /** Closes the socket at once: the server discards a transaction without its final dot. */
  destroy(): void {
    this.channel.destroy();
  }

  private async handshake(): Promise<void> {
    const greeting = await this.channel.greeting();
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
    this.authFacts = await authenticate((line, shownAs) => this.channel.send(line, 'ehlo', shownAs), this.authOptions, {
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
    // The channel has stopped reading the clear socket when the 220 came.
    this.caps = NO_CAPABILITIES;
    const { socket, facts } = await startTls(this.channel.clearSocket, {
      policy: this.tlsPolicy,
      host: this.host ?? 'localhost',
      timeout: this.ehloTimeout,
    });
    this.channel.continueOver(socket);
    this.tlsFacts = facts;
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
}
