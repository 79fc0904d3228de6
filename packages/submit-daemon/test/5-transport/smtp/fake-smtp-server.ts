/**
 * An in-process SMTP/LMTP server for the transport's unit tests, scriptable
 * to produce the faults a real MTA will not produce on demand: stalls at any
 * stage, a 421 greeting, replies held back until a whole pipelined batch has
 * arrived, a reader that stops reading during DATA, per-recipient LMTP
 * replies. It records every byte and command it receives, and whether each
 * connection ended with a complete message (the final dot) or without one.
 * With `starttls` it announces STARTTLS and switches the session to TLS on
 * a 220 to it, as an MTA does (RFC 3207). With `auth` it runs the server's
 * side of an AUTH exchange (RFC 4954; the mechanisms: fake-sasl-server.ts).
 */
import net from 'node:net';
import tls from 'node:tls';

export type Reply = string | null;

export interface FakeServerOptions {
  /** LMTP: LHLO instead of EHLO, one reply per accepted recipient after the dot. */
  readonly lmtp?: boolean;
  /** The greeting line(s); null = never greet. */
  readonly greeting?: Reply;
  /** Close the connection right after the greeting (as a 421 server does). */
  readonly closeAfterGreeting?: boolean;
  /** Extension lines announced after EHLO/LHLO. */
  readonly extensions?: readonly string[];
  /**
   * Answers a command (MAIL, RCPT, XFORWARD, DATA, RSET, EHLO, ...): a reply
   * (lines joined with CRLF), undefined for the default, or null for a hung
   * server: no reply to this command or to anything after it (replies to
   * pipelined commands must stay in order, so a server cannot skip one).
   */
  readonly onCommand?: (line: string, session: FakeSession) => Reply | undefined;
  /** Answers the end of data: one reply (SMTP) or one per accepted recipient (LMTP); null = stall. */
  readonly onMessage?: (message: Buffer, session: FakeSession) => Reply | readonly string[] | undefined;
  /**
   * Hold the replies to XFORWARD, MAIL and RCPT until this many have been
   * asked for, then send them together. A client that waits for each reply
   * before the next command never gets one.
   */
  readonly holdEnvelopeReplies?: number;
  /** Stop reading from the socket once DATA is accepted (the client's writes back up). */
  readonly stopReadingInData?: boolean;
  /** The server's side of TLS: STARTTLS is announced (unless offerStartTls is false) and done. */
  readonly starttls?: {
    readonly key: string | Buffer;
    readonly cert: string | Buffer;
    readonly minVersion?: tls.SecureVersion;
    readonly maxVersion?: tls.SecureVersion;
    /** Announce STARTTLS in the EHLO reply; default true. */
    readonly offerStartTls?: boolean;
    /** Extension lines announced after EHLO under TLS (default: `extensions`). */
    readonly extensionsAfterTls?: readonly string[];
    /** Bytes sent in the clear right after the 220, in the same write (command injection). */
    readonly injectAfter220?: string;
  };
  /** Answers `AUTH <mechanism>` (upper case): the exchange, or null for 504 (mechanism not supported). Announce it in `extensions`. */
  readonly auth?: (mechanism: string, session: FakeSession) => FakeSaslStep | null;
}

/**
 * One AUTH exchange on the server's side: called with the initial response
 * (undefined when the AUTH line had none), then with each response line;
 * returns the reply, or null for a server that hangs there. The exchange
 * ends with the first reply that is not 334.
 */
export type FakeSaslStep = (response: string | undefined) => string | null;

export const POSTFIX_EXTENSIONS: readonly string[] = [
  'PIPELINING',
  'SIZE 10240000',
  'XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT',
  'ENHANCEDSTATUSCODES',
  '8BITMIME',
  'DSN',
  'SMTPUTF8',
  'CHUNKING',
];

export interface FakeSession {
  /** Every command line received, in order (not message content). */
  readonly commands: string[];
  /** Every message completed with the final dot, dot-unstuffed. */
  readonly messages: Buffer[];
  /** Everything received, as bytes. */
  readonly received: Buffer[];
  /** Whether the session has switched to TLS. */
  readonly secured: boolean;
  /** Why the server's TLS handshake failed, if it did. */
  readonly tlsError: string | null;
  /** Resolves when the client's side of the connection is gone. */
  readonly closed: Promise<void>;
  /** Sends raw text (a line end is not added). */
  write(text: string): void;
  /** Closes the server's side of the connection (FIN). */
  hangUp(): void;
}

const END_OF_DATA = Buffer.from('\r\n.\r\n');

class Session implements FakeSession {
  readonly commands: string[] = [];
  readonly messages: Buffer[] = [];
  readonly received: Buffer[] = [];
  readonly closed: Promise<void>;
  secured = false;
  tlsError: string | null = null;
  private resolveClosed: () => void = () => {};
  private buffer = Buffer.alloc(0);
  private inData = false;
  private acceptedRecipients = 0;
  private held: string[] = [];
  private hung = false;
  private sasl: FakeSaslStep | null = null;

  constructor(
    private socket: net.Socket,
    private readonly options: FakeServerOptions,
  ) {
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
      socket.once('close', () => resolve());
    });
    socket.on('error', () => {});
    socket.on('data', this.onSocketData);
    const greeting = options.greeting === undefined ? `220 fake.example ${options.lmtp ? 'LMTP' : 'ESMTP'}` : options.greeting;
    if (greeting !== null) this.reply(greeting);
    if (options.closeAfterGreeting) socket.end();
  }

  write(text: string): void {
    if (!this.socket.destroyed) this.socket.write(text);
  }

  hangUp(): void {
    this.socket.end();
  }

  private reply(text: string): void {
    this.write(`${text}\r\n`);
  }

  private readonly onSocketData = (chunk: Buffer): void => this.onData(chunk);

  private startTls(): void {
    const settings = this.options.starttls;
    if (settings === undefined) return;
    const plain = this.socket;
    plain.off('data', this.onSocketData);
    const secure = new tls.TLSSocket(plain, {
      isServer: true,
      secureContext: tls.createSecureContext({ key: settings.key, cert: settings.cert, minVersion: settings.minVersion, maxVersion: settings.maxVersion }),
    });
    secure.on('error', (err: Error) => {
      this.tlsError = err.message;
      plain.destroy();
    });
    secure.once('close', () => this.resolveClosed());
    secure.once('secure', () => {
      this.secured = true;
    });
    secure.on('data', this.onSocketData);
    this.buffer = Buffer.alloc(0);
    this.socket = secure;
  }

  private onData(chunk: Buffer): void {
    this.received.push(chunk);
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      if (this.inData) {
        // The dot right after DATA's 354 (an empty message) or after a CRLF.
        const end = this.buffer.subarray(0, 3).equals(Buffer.from('.\r\n')) ? -2 : this.buffer.indexOf(END_OF_DATA);
        if (end === -1) return;
        const raw = end === -2 ? Buffer.alloc(0) : this.buffer.subarray(0, end + 2);
        this.buffer = this.buffer.subarray(end === -2 ? 3 : end + END_OF_DATA.length);
        this.inData = false;
        this.endOfData(unstuff(raw));
        continue;
      }
      const lf = this.buffer.indexOf('\r\n');
      if (lf < 0) return;
      const line = this.buffer.subarray(0, lf).toString('utf8');
      this.buffer = this.buffer.subarray(lf + 2);
      this.command(line);
    }
  }

  private command(line: string): void {
    this.commands.push(line);
    if (this.hung) return;
    if (this.sasl !== null) {
      this.saslReply(this.sasl(line));
      return;
    }
    const verb = (line.split(/[ :]/, 1)[0] ?? '').toUpperCase();
    const custom = this.options.onCommand?.(line, this);
    if (custom === null) {
      this.hung = true;
      return;
    }
    let reply = custom ?? this.defaultReply(verb);
    if (verb === 'MAIL' || verb === 'RSET') this.acceptedRecipients = 0;
    if (verb === 'RCPT' && reply.startsWith('2')) this.acceptedRecipients += 1;
    if (verb === 'DATA' && reply.startsWith('354')) {
      this.inData = true;
      if (this.options.stopReadingInData) this.socket.pause();
    }
    if (verb === 'QUIT') {
      this.reply(reply);
      this.socket.end();
      return;
    }
    if (verb === 'STARTTLS' && this.options.starttls !== undefined && reply.startsWith('220')) {
      this.write(`${reply}\r\n${this.options.starttls.injectAfter220 ?? ''}`);
      this.startTls();
      return;
    }
    if (verb === 'AUTH' && custom === undefined && this.options.auth !== undefined) {
      const [, mechanism = '', initial] = line.split(' ');
      const step = this.options.auth(mechanism.toUpperCase(), this);
      if (step === null) this.reply('504 5.5.4 Unrecognized authentication type');
      else {
        this.sasl = step;
        // RFC 4954 section 4: "=" is an empty initial response.
        this.saslReply(step(initial === '=' ? '' : initial));
      }
      return;
    }
    const hold = this.options.holdEnvelopeReplies;
    if (hold !== undefined && (verb === 'XFORWARD' || verb === 'MAIL' || verb === 'RCPT')) {
      this.held.push(reply);
      if (this.held.length < hold) return;
      reply = this.held.join('\r\n');
      this.held = [];
    }
    this.reply(reply);
  }

  private saslReply(reply: string | null): void {
    if (reply === null) {
      this.hung = true;
      return;
    }
    if (!reply.startsWith('334')) this.sasl = null;
    this.reply(reply);
  }

  private defaultReply(verb: string): string {
    switch (verb) {
      case 'EHLO':
      case 'LHLO': {
        const tlsSettings = this.options.starttls;
        const announced = this.options.extensions ?? POSTFIX_EXTENSIONS;
        const extensions =
          tlsSettings === undefined
            ? announced
            : this.socket instanceof tls.TLSSocket
              ? (tlsSettings.extensionsAfterTls ?? announced)
              : tlsSettings.offerStartTls === false
                ? announced
                : [...announced, 'STARTTLS'];
        const lines = ['fake.example', ...extensions];
        return lines.map((text, i) => `250${i === lines.length - 1 ? ' ' : '-'}${text}`).join('\r\n');
      }
      case 'HELO':
        return '250 fake.example';
      case 'STARTTLS':
        return this.options.starttls !== undefined && !(this.socket instanceof tls.TLSSocket) ? '220 2.0.0 Ready to start TLS' : '502 5.5.1 Error: command not implemented';
      case 'DATA':
        return '354 End data with <CR><LF>.<CR><LF>';
      case 'QUIT':
        return '221 2.0.0 Bye';
      case 'MAIL':
      case 'RCPT':
      case 'RSET':
      case 'XFORWARD':
        return '250 2.0.0 Ok';
      default:
        return '502 5.5.2 Error: command not recognized';
    }
  }

  private endOfData(message: Buffer): void {
    this.messages.push(message);
    if (this.hung) return;
    const custom = this.options.onMessage?.(message, this);
    if (custom === null) {
      this.hung = true;
      return;
    }
    const id = `FAKE${this.messages.length}`;
    const replies =
      custom !== undefined
        ? typeof custom === 'string'
          ? [custom]
          : custom
        : this.options.lmtp
          ? Array.from({ length: this.acceptedRecipients }, () => `250 2.0.0 Ok: queued as ${id}`)
          : [`250 2.0.0 Ok: queued as ${id}`];
    this.acceptedRecipients = 0;
    this.write(replies.map((reply) => `${reply}\r\n`).join(''));
  }
}

function unstuff(raw: Buffer): Buffer {
  return Buffer.from(raw.toString('latin1').replace(/(^|\r\n)\.\./g, '$1.'), 'latin1');
}

export class FakeSmtpServer {
  readonly sessions: FakeSession[] = [];
  private readonly server: net.Server;
  private readonly waiting: ((session: FakeSession) => void)[] = [];
  private readonly sockets = new Set<net.Socket>();

  private constructor(options: FakeServerOptions) {
    this.server = net.createServer((socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      const session = new Session(socket, options);
      this.sessions.push(session);
      for (const wake of this.waiting.splice(0)) wake(session);
    });
  }

  static async start(options: FakeServerOptions = {}, path?: string): Promise<FakeSmtpServer> {
    const fake = new FakeSmtpServer(options);
    await new Promise<void>((resolve, reject) => {
      fake.server.once('error', reject);
      if (path !== undefined) fake.server.listen(path, resolve);
      else fake.server.listen(0, '127.0.0.1', resolve);
    });
    return fake;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** The n-th session (0-based), waiting for it to connect if needed. */
  session(n = 0): Promise<FakeSession> {
    const existing = this.sessions[n];
    if (existing !== undefined) return Promise.resolve(existing);
    return new Promise((resolve) => {
      const check = (): void => {
        const session = this.sessions[n];
        if (session !== undefined) resolve(session);
        else this.waiting.push(check);
      };
      check();
    });
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
