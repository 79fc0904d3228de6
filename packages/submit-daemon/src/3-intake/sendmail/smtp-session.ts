/**
 * `mailsubmit-sendmail -bs`: the caller speaks SMTP on its standard input
 * and output (nmh's post by default, some PHP and Perl mail libraries), as
 * with Postfix's `sendmail -bs`, which runs smtpd in stand-alone mode. This
 * is the server side of that dialogue, on any pair of streams.
 *
 * Each transaction (MAIL, RCPT..., DATA) becomes one sendmail-door
 * submission through `deliver`: the same sender authorization, validators
 * and all-or-nothing delivery as `mailsubmit-sendmail rcpt... < message`,
 * and 250 only once the MTA has the message. Several transactions per
 * session, RSET, NOOP, VRFY (252, as Postfix without a recipient check),
 * QUIT. A session that ends in the middle of DATA delivers nothing: the
 * message stream is destroyed, never ended, so the submission abandons its
 * MTA transaction without the final dot.
 *
 * The reply codes and texts are Postfix smtpd's for the same commands, so
 * a client sees the same dialogue (test/e2e/sendmail-options.test.ts runs
 * both side by side). Offered: PIPELINING, SIZE, VRFY,
 * ENHANCEDSTATUSCODES, 8BITMIME, DSN, SMTPUTF8; not CHUNKING, ETRN,
 * STARTTLS or AUTH (a local caller on its own pipes needs none of them).
 *
 * Why not the smtp-server package (nodemailer): it wants a socket (remote
 * address, setTimeout, reverse lookups, TLS upgrade) rather than two
 * passed fds, answers some commands with other codes than Postfix, and
 * leaves a DATA stream neither ended nor destroyed when the client goes
 * away mid-DATA; the dialogue a sendmail caller needs is small enough to
 * keep here, next to the limits that bound it.
 */
import { PassThrough, type Readable, type Writable } from 'node:stream';
import {
  decodeXtext,
  parseAddress,
  parseNotify,
  parseReturnOption,
  statusOf,
  type Address,
  type NotifyKeyword,
  type Outcome,
  type ReturnOption,
  type SendmailCommand,
} from '@mailsubmit/shared';

/** What one transaction came to: the job's outcome, its one line, and the MTA's queue id. */
export interface SessionDelivery {
  readonly outcome: Outcome;
  readonly text: string;
  readonly queueId?: string;
  /** The local queue's id, for a message that waits there. */
  readonly localQueueId?: string;
}

export interface SmtpSessionOptions {
  readonly input: Readable;
  readonly output: Writable;
  /** The name in the greeting and the EHLO reply. */
  readonly hostName: string;
  readonly maxMessageOctets: number;
  readonly maxRecipients: number;
  /** Whether the caller may use this envelope sender (checked again by the submission). */
  readonly senderAllowed: (sender: Address) => boolean;
  /** Runs one transaction as a sendmail-door submission: the command holds its envelope, `message` the DATA. */
  readonly deliver: (command: SendmailCommand, message: Readable) => Promise<SessionDelivery>;
}

/** Postfix's line_length_limit: a longer command line is cut there. */
const MAX_COMMAND_OCTETS = 2048;
/** Postfix's smtpd_hard_error_limit: the session ends after this many errors. */
const HARD_ERROR_LIMIT = 20;
/** Postfix's limit on ENVID (the same as sendmail -V). */
const MAX_ENVID_CHARS = 100;

interface Transaction {
  sender: Address;
  returnOption?: ReturnOption;
  envelopeId?: string;
  notify?: readonly NotifyKeyword[];
  recipients: Address[];
}

/** An SMTP reply: code, enhanced code (or ''), text. */
type Reply = readonly [number, string, string];

const OK: Reply = [250, '2.0.0', 'Ok'];
const NEED_MAIL: Reply = [503, '5.5.1', 'Error: need MAIL command'];
const NEED_RCPT: Reply = [503, '5.5.1', 'Error: need RCPT command'];
const NOT_RECOGNIZED: Reply = [500, '5.5.2', 'Error: command not recognized'];
const TOO_BIG: Reply = [552, '5.3.4', 'Message size exceeds fixed limit'];

/**
 * Reads lines from a stream, each without its line end. `next()` gives
 * null at the end of the input; a line longer than `max` octets is cut
 * (the rest of it is dropped), as Postfix cuts an over-long command.
 */
class LineReader {
  private readonly chunks: AsyncIterator<Buffer>;
  private buffer: Buffer = Buffer.alloc(0);
  private ended = false;

  constructor(input: Readable) {
    this.chunks = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  /** The next line with its line end (LF or CRLF) removed, or null at the end of input; `max` null: no cut. */
  async next(max: number | null): Promise<{ line: Buffer; complete: boolean } | null> {
    for (;;) {
      const lf = this.buffer.indexOf(0x0a);
      if (lf >= 0) {
        const end = lf > 0 && this.buffer[lf - 1] === 0x0d ? lf - 1 : lf;
        const line = this.buffer.subarray(0, end);
        this.buffer = this.buffer.subarray(lf + 1);
        return { line: max !== null && line.length > max ? line.subarray(0, max) : line, complete: true };
      }
      if (this.ended) {
        if (this.buffer.length === 0) return null;
        const line = this.buffer;
        this.buffer = Buffer.alloc(0);
        return { line, complete: false };
      }
      // A line without its end yet is held only up to the cut; what follows is dropped.
      if (max !== null && this.buffer.length > max + 1) {
        const kept = this.buffer.subarray(0, max);
        await this.skipLine();
        return { line: kept, complete: true };
      }
      const next = await this.chunks.next();
      if (next.done === true) this.ended = true;
      else this.buffer = this.buffer.length === 0 ? next.value : Buffer.concat([this.buffer, next.value]);
    }
  }

  /** Reads data up to its line end, without keeping it. */
  private async skipLine(): Promise<void> {
    for (;;) {
      const lf = this.buffer.indexOf(0x0a);
      if (lf >= 0) {
        this.buffer = this.buffer.subarray(lf + 1);
        return;
      }
      this.buffer = Buffer.alloc(0);
      const next = await this.chunks.next();
      if (next.done === true) {
        this.ended = true;
        return;
      }
      this.buffer = next.value;
    }
  }

  async close(): Promise<void> {
    await this.chunks.return?.();
  }
}

/** The session's outcome: how many transactions reached the MTA, and how many were refused. */
export interface SmtpSessionResult {
  readonly delivered: number;
  readonly refused: number;
  /** Why the session ended: quit, end of input, too many errors, or the input's own error (timeout). */
  readonly ended: 'quit' | 'end-of-input' | 'error-limit' | 'input-error';
  readonly error?: Error;
}

/** Runs the dialogue until QUIT, the end of input, or an input error (deadline, idle timeout). */
export async function runSmtpSession(options: SmtpSessionOptions): Promise<SmtpSessionResult> {
  const { output, hostName } = options;
  const reader = new LineReader(options.input);
  let transaction: Transaction | null = null;
  let errors = 0;
  let delivered = 0;
  let refused = 0;

  const write = (reply: Reply, more: readonly string[] = []): void => {
    const [code, enhanced, text] = reply;
    const lines = [...more.map((line) => `${code}-${line}`), `${code} ${enhanced === '' ? '' : `${enhanced} `}${text}`];
    if (!output.destroyed && output.writable) output.write(`${lines.join('\r\n')}\r\n`);
    if (code >= 400) errors++;
  };

  write([220, '', `${hostName} ESMTP mailsubmit`]);
  try {
    for (;;) {
      if (errors >= HARD_ERROR_LIMIT) {
        write([421, '4.7.0', `${hostName} Error: too many errors`]);
        return { delivered, refused, ended: 'error-limit' };
      }
      const read = await reader.next(MAX_COMMAND_OCTETS);
      if (read === null) return { delivered, refused, ended: 'end-of-input' };
      const line = read.line.toString('latin1');
      const space = line.indexOf(' ');
      const verb = (space < 0 ? line : line.slice(0, space)).toUpperCase();
      const rest = space < 0 ? '' : line.slice(space + 1).trim();
      switch (verb) {
        case 'EHLO':
          if (rest === '') write([501, '', 'Syntax: EHLO hostname']);
          else {
            transaction = null;
            write([250, '', 'SMTPUTF8'], [hostName, 'PIPELINING', `SIZE ${options.maxMessageOctets}`, 'VRFY', 'ENHANCEDSTATUSCODES', '8BITMIME', 'DSN']);
          }
          break;
        case 'HELO':
          if (rest === '') write([501, '', 'Syntax: HELO hostname']);
          else {
            transaction = null;
            write([250, '', hostName]);
          }
          break;
        case 'MAIL':
          if (transaction !== null) write([503, '5.5.1', 'Error: nested MAIL command']);
          else transaction = mailCommand(rest, options, write);
          break;
        case 'RCPT':
          if (transaction === null) write(NEED_MAIL);
          else rcptCommand(rest, transaction, options, write);
          break;
        case 'DATA': {
          if (rest !== '') {
            write([501, '5.5.4', 'Syntax: DATA']);
            break;
          }
          if (transaction === null || transaction.recipients.length === 0) {
            write(NEED_RCPT);
            break;
          }
          const current: Transaction = transaction;
          transaction = null;
          write([354, '', 'End data with <CR><LF>.<CR><LF>']);
          const result = await dataCommand(reader, current, options);
          if (result === null) return { delivered, refused, ended: 'end-of-input' };
          if (result[0] === 250) delivered++;
          else refused++;
          write(result);
          break;
        }
        case 'RSET':
          transaction = null;
          write(OK);
          break;
        case 'NOOP':
          write(OK);
          break;
        case 'VRFY':
          if (rest === '') write([501, '5.5.4', 'Syntax: VRFY address']);
          else write([252, '2.0.0', printable(rest)]);
          break;
        case 'QUIT':
          write([221, '2.0.0', 'Bye']);
          return { delivered, refused, ended: 'quit' };
        case 'STARTTLS':
        case 'XCLIENT':
        case 'XFORWARD':
          write([502, '5.5.1', 'Error: command not implemented']);
          break;
        case 'AUTH':
          write([503, '5.5.1', 'Error: authentication not enabled']);
          break;
        case '':
          write([500, '5.5.2', 'Error: bad syntax']);
          break;
        default:
          write(NOT_RECOGNIZED);
      }
    }
  } catch (error) {
    const err = error instanceof Error ? error : new Error(String(error));
    // The input's deadline or idle timeout (or a read error): Postfix says 421 and hangs up.
    write([421, '4.4.2', `${hostName} Error: timeout exceeded`]);
    return { delivered, refused, ended: 'input-error', error: err };
  } finally {
    await reader.close().catch(() => undefined);
  }
}

/** The address between `FROM:`/`TO:` and the parameters: `<a@b>`, `<>`, or (as Postfix takes it) a bare `a@b`. */
function splitPath(text: string): { path: string; params: string[] } | null {
  const trimmed = text.trimStart();
  if (trimmed.startsWith('<')) {
    let quoted = false;
    for (let i = 1; i < trimmed.length; i++) {
      const char = trimmed[i];
      if (char === '\\') i++;
      else if (char === '"') quoted = !quoted;
      else if (char === '>' && !quoted) {
        return { path: trimmed.slice(1, i), params: trimmed.slice(i + 1).split(' ').filter((p) => p !== '') };
      }
    }
    return null;
  }
  const [path, ...params] = trimmed.split(' ').filter((p) => p !== '');
  return path === undefined ? null : { path, params };
}

function mailCommand(rest: string, options: SmtpSessionOptions, write: (reply: Reply) => void): Transaction | null {
  if (!/^FROM:/i.test(rest)) {
    write([501, '5.5.4', 'Syntax: MAIL FROM:<address>']);
    return null;
  }
  const split = splitPath(rest.slice(5));
  if (split === null) {
    write([501, '5.1.7', 'Bad sender address syntax']);
    return null;
  }
  let sender: Address;
  try {
    sender = parseAddress(split.path === '' ? '<>' : split.path, 'sender', { attribute: 'sender' });
  } catch {
    write([501, '5.1.7', 'Bad sender address syntax']);
    return null;
  }
  const transaction: Transaction = { sender, recipients: [] };
  for (const param of split.params) {
    const [name = '', value] = splitParam(param);
    if (name === 'SIZE' && value !== undefined && /^\d+$/.test(value)) {
      if (Number(value) > options.maxMessageOctets) return refuse(write, TOO_BIG);
    } else if (name === 'BODY' && value !== undefined && /^(7BIT|8BITMIME)$/i.test(value)) {
      // The daemon declares BODY=8BITMIME from what the message holds.
    } else if (name === 'SMTPUTF8' && value === undefined) {
      // UTF-8 addresses are taken as they come; the downstream is asked for SMTPUTF8 when they need it.
    } else if (name === 'RET' && value !== undefined) {
      try {
        transaction.returnOption = parseReturnOption(value, { attribute: 'dsn-return-option' });
      } catch {
        return refuse(write, [501, '5.5.4', 'Bad RET parameter syntax']);
      }
    } else if (name === 'ENVID' && value !== undefined) {
      const envid = decodedEnvid(value);
      if (envid === null) return refuse(write, [501, '5.5.4', 'Bad ENVID parameter syntax']);
      transaction.envelopeId = envid;
    } else if (name === 'AUTH' && value !== undefined) {
      // As Postfix without SASL: the AUTH= parameter is ignored.
    } else {
      return refuse(write, [555, '5.5.4', `Unsupported option: ${printable(param)}`]);
    }
  }
  if (!options.senderAllowed(sender)) {
    const status = statusOf('attribute-not-permitted');
    return refuse(write, [status.smtpCode, status.enhanced, `<${printable(sender.text)}>: Sender address rejected: not permitted to this caller`]);
  }
  write([250, '2.1.0', 'Ok']);
  return transaction;
}

function rcptCommand(rest: string, transaction: Transaction, options: SmtpSessionOptions, write: (reply: Reply) => void): void {
  if (!/^TO:/i.test(rest)) {
    write([501, '5.5.4', 'Syntax: RCPT TO:<address>']);
    return;
  }
  const split = splitPath(rest.slice(3));
  let recipient: Address;
  try {
    if (split === null || split.path === '') throw new Error('empty');
    recipient = parseAddress(split.path, 'recipient', { attribute: 'recipient' });
  } catch {
    write([501, '5.1.3', 'Bad recipient address syntax']);
    return;
  }
  let notify: readonly NotifyKeyword[] | undefined;
  for (const param of split.params) {
    const [name = '', value] = splitParam(param);
    if (name === 'NOTIFY' && value !== undefined) {
      try {
        notify = parseNotify(value, { attribute: 'dsn-notify-options' });
      } catch {
        write([501, '5.5.4', 'Error: Bad NOTIFY parameter syntax']);
        return;
      }
    } else if (name === 'ORCPT' && value !== undefined && value.includes(';')) {
      // Accepted; the submission sends its own ORCPT for each recipient.
    } else {
      write([555, '5.5.4', `Unsupported option: ${printable(param)}`]);
      return;
    }
  }
  if (transaction.recipients.length >= options.maxRecipients) {
    write([452, '4.5.3', 'Error: too many recipients']);
    return;
  }
  // One submission carries one NOTIFY for all its recipients: another one waits for the next transaction.
  if (transaction.recipients.length > 0 && !sameNotify(transaction.notify, notify)) {
    write([452, '4.5.3', 'Error: too many recipients (another NOTIFY: send them in a transaction of their own)']);
    return;
  }
  transaction.notify = notify;
  transaction.recipients.push(recipient);
  write([250, '2.1.5', 'Ok']);
}

/**
 * DATA after the 354: the lines up to the lone dot, dot-stuffing undone,
 * streamed to the submission as they arrive. Null: the input ended first
 * (nothing is delivered, and there is nobody left to answer).
 */
async function dataCommand(reader: LineReader, transaction: Transaction, options: SmtpSessionOptions): Promise<Reply | null> {
  const message = new PassThrough({ highWaterMark: 64 * 1024 });
  const command: SendmailCommand = Object.freeze({
    mode: 'deliver',
    verify: false,
    sender: transaction.sender,
    ignoreDots: true,
    extractRecipients: false,
    verbose: false,
    recipients: Object.freeze([...transaction.recipients]),
    ...(transaction.notify !== undefined ? { notify: transaction.notify } : {}),
    ...(transaction.returnOption !== undefined ? { returnOption: transaction.returnOption } : {}),
    ...(transaction.envelopeId !== undefined ? { envelopeId: transaction.envelopeId } : {}),
  });
  let settled = false;
  const delivery = options.deliver(command, message).finally(() => {
    settled = true;
  });
  // Keeps an early failure from being an unhandled rejection while DATA is still read.
  delivery.catch(() => undefined);
  let octets = 0;
  let tooBig = false;
  for (;;) {
    let read: { line: Buffer; complete: boolean } | null;
    try {
      read = await reader.next(null);
    } catch (error) {
      message.destroy(error instanceof Error ? error : new Error(String(error)));
      await delivery.catch(() => undefined);
      throw error;
    }
    if (read === null || !read.complete) {
      // The client went away before the dot: the submission must not end as if complete.
      message.destroy(new Error('the SMTP client went away in the middle of DATA'));
      await delivery.catch(() => undefined);
      return null;
    }
    const { line } = read;
    if (line.length === 1 && line[0] === 0x2e) break;
    const data = line[0] === 0x2e ? line.subarray(1) : line;
    octets += data.length + 2;
    if (octets > options.maxMessageOctets) tooBig = true;
    if (tooBig || settled) continue;
    if (!message.write(Buffer.concat([data, Buffer.from('\n')]))) {
      await Promise.race([new Promise((resolve) => message.once('drain', resolve)), delivery.catch(() => undefined)]);
    }
  }
  if (tooBig) {
    message.destroy(new Error('the message is over the size limit'));
    await delivery.catch(() => undefined);
    return TOO_BIG;
  }
  message.end();
  let result: SessionDelivery;
  try {
    result = await delivery;
  } catch (error) {
    const status = statusOf('internal');
    return [status.smtpCode, status.enhanced, `Error: ${printable(error instanceof Error ? error.message : String(error))}`];
  }
  if (result.outcome === 'ok') return [250, '2.0.0', result.queueId !== undefined ? `Ok: queued as ${result.queueId}` : 'Ok: queued'];
  if (result.outcome === 'queued-locally') return [250, '2.0.0', `Ok: queued as ${result.localQueueId ?? 'local'} in mailsubmit's local queue`];
  const status = statusOf(result.outcome);
  return [status.smtpCode, status.enhanced, printable(result.text)];
}

function refuse(write: (reply: Reply) => void, reply: Reply): null {
  write(reply);
  return null;
}

function splitParam(param: string): [string, string | undefined] {
  const eq = param.indexOf('=');
  return eq < 0 ? [param.toUpperCase(), undefined] : [param.slice(0, eq).toUpperCase(), param.slice(eq + 1)];
}

/** ENVID: xtext of at most 100 printable ASCII characters (as Postfix checks -V). */
function decodedEnvid(value: string): string | null {
  try {
    const envid = decodeXtext(value);
    return envid !== '' && envid.length <= MAX_ENVID_CHARS && /^[\x20-\x7e]+$/.test(envid) ? envid : null;
  } catch {
    return null;
  }
}

function sameNotify(a: readonly NotifyKeyword[] | undefined, b: readonly NotifyKeyword[] | undefined): boolean {
  return (a ?? []).join(',') === (b ?? []).join(',');
}

/** A caller's text in a reply: no control characters, bounded. */
function printable(text: string): string {
  const clean = text.replace(/[\u0000-\u001f\u007f-\u00ff]/g, '?');
  return clean.length > 200 ? `${clean.slice(0, 200)}...` : clean;
}
