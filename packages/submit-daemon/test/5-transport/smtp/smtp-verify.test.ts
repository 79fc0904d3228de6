import { afterEach, describe, expect, it } from 'vitest';
import { SubmissionError } from '@mailsubmit/shared';
import { SmtpConnection } from '../../../src/5-transport/smtp/smtp-connection.ts';
import { PIPELINE_WINDOW, sendMessage } from '../../../src/5-transport/smtp/smtp-transaction.ts';
import { verifyRecipients } from '../../../src/5-transport/smtp/smtp-verify.ts';
import { FakeSmtpServer, POSTFIX_EXTENSIONS, type FakeServerOptions } from './fake-smtp-server.ts';
import { chunks, envelope, MESSAGE, recipients } from './test-envelopes.ts';

const servers: FakeSmtpServer[] = [];
const connections: SmtpConnection[] = [];
afterEach(async () => {
  for (const conn of connections.splice(0)) conn.destroy();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function setup(options: FakeServerOptions = {}) {
  const server = await FakeSmtpServer.start(options);
  servers.push(server);
  const conn = await SmtpConnection.open({ target: { host: '127.0.0.1', port: server.port }, heloName: 'client.test', protocol: options.lmtp ? 'lmtp' : 'smtp' });
  connections.push(conn);
  return { conn, session: await server.session() };
}

const NO_PIPELINING = POSTFIX_EXTENSIONS.filter((e) => e !== 'PIPELINING');
const UNKNOWN = '550 5.1.1 <b@x>: Recipient address rejected: User unknown in local recipient table';

describe('verifyRecipients', () => {
  it('sends MAIL and every RCPT, then RSET, never DATA, and returns each reply', async () => {
    const { conn, session } = await setup({ onCommand: (line) => (line.startsWith('RCPT TO:<b@x>') ? UNKNOWN : line.startsWith('RCPT TO:<c@x>') ? '450 4.2.0 <c@x>: try later' : undefined) });
    const result = await verifyRecipients(conn, envelope({ recipients: recipients('a@x', 'b@x', 'c@x') }), { xforward: false });
    expect(session.commands.slice(1)).toEqual(['MAIL FROM:<sender@example.org>', 'RCPT TO:<a@x>', 'RCPT TO:<b@x>', 'RCPT TO:<c@x>', 'RSET']);
    expect(result.verdicts.map((v) => [v.recipient.address.text, v.reply.code])).toEqual([
      ['a@x', 250],
      ['b@x', 550],
      ['c@x', 450],
    ]);
    expect(result.verdicts[1]?.reply.lines[0]).toContain('User unknown');
    expect(session.messages).toHaveLength(0);
    // The connection is left clean for the pool.
    expect(conn.usable).toBe(true);
  });

  it('sends XFORWARD SOURCE=LOCAL when asked, as for the sendmail door', async () => {
    const { conn, session } = await setup();
    await verifyRecipients(conn, envelope({ recipients: recipients('a@x') }), { xforwardSource: 'LOCAL' });
    expect(session.commands[1]).toMatch(/^XFORWARD .*SOURCE=LOCAL/);
    expect(session.commands.at(-1)).toBe('RSET');
  });

  it('gets a reply to every RCPT past a refusal, window after window, when pipelining', async () => {
    const count = PIPELINE_WINDOW * 2 + 7;
    const texts = Array.from({ length: count }, (_, i) => `r${i}@x`);
    const { conn, session } = await setup({ onCommand: (line) => (/^RCPT TO:<r\d*[05]@x>/.test(line) ? '550 5.1.1 unknown' : undefined) });
    const result = await verifyRecipients(conn, envelope({ recipients: recipients(...texts) }), { xforward: false });
    expect(result.verdicts).toHaveLength(count);
    expect(result.verdicts.filter((v) => v.reply.code === 550)).toHaveLength(texts.filter((t) => /[05]@/.test(t)).length);
    expect(session.commands.filter((c) => c.startsWith('RCPT'))).toHaveLength(count);
    expect(session.commands).not.toContain('DATA');
  });

  it('does the same one command at a time without PIPELINING', async () => {
    const { conn, session } = await setup({ extensions: NO_PIPELINING, onCommand: (line) => (line.startsWith('RCPT TO:<a@x>') ? '550 5.1.1 unknown' : undefined) });
    const result = await verifyRecipients(conn, envelope({ recipients: recipients('a@x', 'b@x') }), { xforward: false });
    expect(result.verdicts.map((v) => v.reply.code)).toEqual([550, 250]);
    expect(session.commands.slice(1)).toEqual(['MAIL FROM:<sender@example.org>', 'RCPT TO:<a@x>', 'RCPT TO:<b@x>', 'RSET']);
  });

  it('fails as a submission does when MAIL is refused: the sender decides, no verdict', async () => {
    const refuseMail = { onCommand: (line: string) => (line.startsWith('MAIL') ? '553 5.7.1 <sender@example.org>: Sender address rejected' : undefined) };
    const { conn, session } = await setup(refuseMail);
    const error = await verifyRecipients(conn, envelope({ recipients: recipients('a@x') }), { xforward: false }).then(
      () => null,
      (err: unknown) => err,
    );
    const submission = await setup(refuseMail);
    const submitted = await sendMessage(submission.conn, envelope({ recipients: recipients('a@x') }), chunks(MESSAGE), { eightBit: false, xforward: false }).then(
      () => null,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(SubmissionError);
    expect(submitted).toBeInstanceOf(SubmissionError);
    expect((error as SubmissionError).outcome).toBe((submitted as SubmissionError).outcome);
    expect((error as SubmissionError).message).toContain('Sender address rejected');
    expect(session.commands).not.toContain('DATA');
  });
});
