/**
 * A small SMTP client for tests that hand a message's bytes to a Postfix
 * smtpd themselves, as the reference for what mailsubmit's native door
 * should queue (test/e2e/wild-mail.test.ts, the differential corpus).
 */
import { connect } from 'node:net';

export interface SmtpResult {
  /** Every reply's code, in order: greeting, EHLO, XFORWARD (when sent), MAIL, RCPT, DATA, end of data. */
  readonly replies: readonly number[];
  /** True when the end of data got a 250: smtpd queued the message. */
  readonly queued: boolean;
  readonly last: string;
}

/**
 * Sends `message` over SMTP as a mail client would write it: LF line ends
 * as CRLF (a CR already before the LF stays one), lines starting with a dot
 * doubled, a line end added after an unterminated last line; everything else,
 * bare CR and NUL included, byte for byte.
 */
export async function sendOverSmtp(port: number, sender: string, recipient: string, message: Buffer, options: { xforwardSource?: 'REMOTE' | 'LOCAL' } = {}): Promise<SmtpResult> {
  const socket = connect(port, '127.0.0.1');
  const replies: number[] = [];
  let buffered = '';
  let last = '';
  let waiting: ((reply: string) => void) | undefined;
  let failed: Error | undefined;
  socket.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('latin1');
    for (;;) {
      // A reply ends with a line whose code is followed by a space (or nothing).
      const match = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\r?\n/.exec(buffered);
      if (match === null) return;
      buffered = buffered.slice(match[0].length);
      const resolve = waiting;
      waiting = undefined;
      resolve?.(match[0]);
    }
  });
  socket.on('error', (error) => {
    failed = error;
    waiting?.('');
  });
  const reply = () =>
    new Promise<number>((resolve, reject) => {
      if (failed !== undefined) return reject(failed);
      waiting = (text) => {
        if (text === '') return reject(failed ?? new Error('smtp: connection closed'));
        last = text.trimEnd().split('\n').at(-1) as string;
        const code = Number(text.slice(0, 3));
        replies.push(code);
        resolve(code);
      };
    });
  const command = (line: string) => {
    socket.write(`${line}\r\n`);
    return reply();
  };
  try {
    await reply();
    await command('EHLO client.test');
    if (options.xforwardSource !== undefined && (await command(`XFORWARD SOURCE=${options.xforwardSource}`)) !== 250) {
      throw new Error(`smtp: XFORWARD refused: ${last}`);
    }
    const eightBit = message.some((byte) => byte >= 0x80);
    if ((await command(`MAIL FROM:<${sender}>${eightBit ? ' BODY=8BITMIME' : ''}`)) !== 250) return { replies, queued: false, last };
    if ((await command(`RCPT TO:<${recipient}>`)) !== 250) return { replies, queued: false, last };
    if ((await command('DATA')) !== 354) return { replies, queued: false, last };
    socket.write(smtpData(message));
    const code = await reply();
    socket.end('QUIT\r\n');
    return { replies, queued: code === 250, last };
  } finally {
    socket.destroy();
  }
}

/** The DATA section for `message`, up to and including the final dot line. */
export function smtpData(message: Buffer): Buffer {
  const out: Buffer[] = [];
  let start = 0;
  while (start < message.length) {
    const lf = message.indexOf(0x0a, start);
    const end = lf === -1 ? message.length : lf;
    let line = message.subarray(start, end);
    if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, -1);
    if (line[0] === 0x2e) out.push(Buffer.from('.'));
    out.push(line, Buffer.from('\r\n'));
    start = end + 1;
  }
  out.push(Buffer.from('.\r\n'));
  return Buffer.concat(out);
}
