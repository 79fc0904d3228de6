/**
 * A recording SMTP server: the far end of a private Postfix instance in tests.
 * It records what Postfix relays (EHLO, MAIL and RCPT lines with every
 * parameter, and the message as delivered, dot-stuffing undone) so tests can
 * assert byte-exact arrival. TCP_NODELAY is set on every connection: without
 * it Nagle plus delayed ACKs cap Postfix's delivery at a few hundred
 * messages a second.
 *
 * `replies` lets a test make the sink answer a stage with a chosen reply.
 */
import { createServer, type Server, type Socket } from 'node:net';

export interface RecordedMessage {
  readonly ehlo: string;
  readonly mailFrom: string;
  readonly rcptTo: readonly string[];
  readonly data: Buffer;
  /** Every command line the sink received in this transaction, in order. */
  readonly commands: readonly string[];
}

export type SinkStage = 'mail' | 'rcpt' | 'data-end';

export class RecordingSink {
  readonly messages: RecordedMessage[] = [];
  /** Every command line received on any connection, for injection checks. */
  readonly commandLog: string[] = [];
  /** Replies to use instead of 250 at a stage; consulted for every transaction. */
  replies: Partial<Record<SinkStage, string>> = {};
  private server: Server | null = null;
  private waiters: Array<() => void> = [];
  private readonly sockets = new Set<Socket>();

  async listen(port = 0, host = '127.0.0.1'): Promise<number> {
    const server = createServer((socket) => this.serve(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('sink has no TCP address');
    return address.port;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** Resolves once at least `count` messages have arrived. */
  async waitForMessages(count: number, timeoutMs = 20_000): Promise<RecordedMessage[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`sink: ${this.messages.length} of ${count} messages after ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 250));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.messages.slice(0, count);
  }

  /** Resolves with the first message (arrived or arriving) that `match` accepts. */
  async waitForMessage(match: (message: RecordedMessage) => boolean, timeoutMs = 20_000): Promise<RecordedMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(match);
      if (found !== undefined) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`sink: no matching message among ${this.messages.length} after ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 250));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.setNoDelay(true);
    socket.write('220 sink.test ESMTP recording sink\r\n');
    let buffered = Buffer.alloc(0);
    let ehlo = '';
    let transaction: { mailFrom: string; rcptTo: string[]; commands: string[] } | null = null;
    let dataParts: Buffer[] | null = null;

    const reply = (text: string) => socket.write(`${text}\r\n`);

    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        if (dataParts !== null) {
          const end = buffered.indexOf('\r\n.\r\n');
          const atStart = buffered.subarray(0, 3).equals(Buffer.from('.\r\n')) && dataParts.length === 0;
          if (end === -1 && !atStart) {
            // Keep the last 4 octets: the terminator may straddle chunks.
            if (buffered.length > 4) {
              dataParts.push(buffered.subarray(0, buffered.length - 4));
              buffered = buffered.subarray(buffered.length - 4);
            }
            return;
          }
          const body = atStart ? Buffer.alloc(0) : Buffer.concat([...dataParts, buffered.subarray(0, end + 2)]);
          buffered = buffered.subarray(atStart ? 3 : end + 5);
          dataParts = null;
          const finalReply = this.replies['data-end'];
          if (finalReply === undefined && transaction !== null) {
            this.messages.push({ ehlo, mailFrom: transaction.mailFrom, rcptTo: transaction.rcptTo, data: unstuff(body), commands: transaction.commands });
            this.wake();
          }
          reply(finalReply ?? `250 2.0.0 Ok: recorded as ${this.messages.length}`);
          transaction = null;
          continue;
        }
        const lf = buffered.indexOf('\r\n');
        if (lf === -1) return;
        const line = buffered.subarray(0, lf).toString('latin1');
        buffered = buffered.subarray(lf + 2);
        this.commandLog.push(line);
        const verb = line.slice(0, 4).toUpperCase();
        if (transaction !== null) transaction.commands.push(line);
        if (verb === 'EHLO' || verb === 'HELO') {
          ehlo = line;
          socket.write('250-sink.test\r\n250-PIPELINING\r\n250-SIZE 0\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-DSN\r\n250 ENHANCEDSTATUSCODES\r\n');
        } else if (verb === 'MAIL') {
          transaction = { mailFrom: line, rcptTo: [], commands: [line] };
          reply(this.replies.mail ?? '250 2.1.0 Ok');
        } else if (verb === 'RCPT') {
          transaction?.rcptTo.push(line);
          reply(this.replies.rcpt ?? '250 2.1.5 Ok');
        } else if (verb === 'DATA') {
          dataParts = [];
          reply('354 End data with <CR><LF>.<CR><LF>');
        } else if (verb === 'RSET') {
          transaction = null;
          reply('250 2.0.0 Ok');
        } else if (verb === 'QUIT') {
          reply('221 2.0.0 Bye');
          socket.end();
          return;
        } else if (verb === 'NOOP') {
          reply('250 2.0.0 Ok');
        } else {
          reply('502 5.5.2 Error: command not recognized');
        }
      }
    });
    socket.on('error', () => socket.destroy());
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

/** Undoes SMTP dot-stuffing; keeps CRLF line ends as delivered. */
export function unstuff(data: Buffer): Buffer {
  const text = data.toString('latin1');
  return Buffer.from(text.replace(/^\.\./, '.').replace(/\r\n\.\./g, '\r\n.'), 'latin1');
}

/**
 * The message without its first header field (the Received: line Postfix
 * prepends, continuation lines included): what the submitter wrote, as
 * delivered.
 */
export function withoutFirstHeaderField(data: Buffer): Buffer {
  let end = data.indexOf('\r\n');
  while (end !== -1 && (data[end + 2] === 0x20 || data[end + 2] === 0x09)) end = data.indexOf('\r\n', end + 2);
  return end === -1 ? Buffer.alloc(0) : data.subarray(end + 2);
}

/** A message in the form the sink records it: every line end CRLF, an unterminated last line terminated. */
export function crlfForm(message: Buffer): Buffer {
  const text = message.toString('latin1').replace(/\r?\n/g, '\r\n');
  return Buffer.from(text.endsWith('\r\n') ? text : `${text}\r\n`, 'latin1');
}
