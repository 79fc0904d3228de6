/**
 * The test harness itself: a private Postfix relays to the recording sink
 * exactly what it was given, and announces what the re-injection listener
 * must announce. Every end-to-end test stands on this.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrivatePostfix } from './private-postfix.ts';
import { RecordingSink } from './recording-sink.ts';

/** A scripted SMTP client: sends each line after reading the previous reply. */
async function converse(port: number, lines: readonly string[]): Promise<string[]> {
  const socket = connect(port, '127.0.0.1');
  const replies: string[] = [];
  let buffered = '';
  const nextReply = () =>
    new Promise<string>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        buffered += chunk.toString('latin1');
        const match = /(^|\r\n)(\d{3}) [^\r\n]*\r\n/.exec(buffered);
        if (match) {
          const end = match.index + match[0].length;
          const reply = buffered.slice(0, end);
          buffered = buffered.slice(end);
          socket.off('data', onData);
          resolve(reply);
        }
      };
      socket.on('data', onData);
      socket.once('error', reject);
    });
  replies.push(await nextReply());
  for (const line of lines) {
    socket.write(Buffer.from(line, 'latin1'));
    replies.push(await nextReply());
  }
  socket.destroy();
  return replies;
}

describe.skipIf(!PrivatePostfix.isAvailable())('private Postfix harness', () => {
  const sink = new RecordingSink();
  let postfix: PrivatePostfix;

  beforeAll(async () => {
    postfix = await PrivatePostfix.start({ relayPort: await sink.listen() });
  });

  afterAll(async () => {
    await postfix?.stop();
    await sink.close();
  });

  it('announces what the re-injection listener needs', async () => {
    const [, ehlo] = await converse(postfix.port, ['EHLO harness.test\r\n', 'QUIT\r\n']);
    for (const keyword of ['PIPELINING', 'SIZE', 'XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT', 'ENHANCEDSTATUSCODES', '8BITMIME', 'DSN', 'SMTPUTF8']) {
      expect(ehlo).toContain(keyword);
    }
  });

  it('relays a message to the sink byte for byte, with the envelope and DSN parameters', async () => {
    const body = 'Subject: harness\r\nFrom: a@example.org\r\n\r\n..dot line\r\n8bit: \xe9\r\n';
    const replies = await converse(postfix.port, [
      'EHLO harness.test\r\n',
      'MAIL FROM:<a@example.org> ENVID=harness+2B1 RET=HDRS\r\n',
      'RCPT TO:<b@example.net> NOTIFY=FAILURE ORCPT=rfc822;b@example.net\r\n',
      'DATA\r\n',
      `${body}.\r\n`,
      'QUIT\r\n',
    ]);
    expect(replies[5]).toMatch(/^250 2\.0\.0 Ok: queued as [0-9A-F]+/);
    const [message] = await sink.waitForMessages(1);
    expect(message?.mailFrom).toMatch(/^MAIL FROM:<a@example\.org> SIZE=\d+ ENVID=harness\+2B1 RET=HDRS$/);
    expect(message?.rcptTo).toEqual(['RCPT TO:<b@example.net> ORCPT=rfc822;b@example.net NOTIFY=FAILURE']);
    const delivered = message?.data.toString('latin1') ?? '';
    const afterReceived = delivered.replace(/^Received: [^\r]*\r\n(\t[^\r]*\r\n)*/, '');
    expect(afterReceived).toBe(body.replace('..dot', '.dot'));
    await postfix.waitForLog(/status=sent/);
  });
});
