import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { SubmissionError } from '@mailsubmit/shared';
import { DEFAULT_TIMEOUTS, SmtpConnection, type SmtpConnectionOptions } from '../../../src/5-transport/smtp/smtp-connection.ts';
import { SmtpError } from '../../../src/5-transport/smtp/smtp-error.ts';
import { PIPELINE_WINDOW, sendMessage } from '../../../src/5-transport/smtp/smtp-transaction.ts';
import { FakeSmtpServer, POSTFIX_EXTENSIONS, type FakeServerOptions } from './fake-smtp-server.ts';
import { address, chunks, envelope, failing, MESSAGE, recipients } from './test-envelopes.ts';
import { rejection } from '../../support/rejection.ts';
import { until } from '../../../../../test/support/until.ts';

const servers: FakeSmtpServer[] = [];
const connections: SmtpConnection[] = [];
afterEach(async () => {
  for (const conn of connections.splice(0)) conn.destroy();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function setup(options: FakeServerOptions = {}, connOptions: Partial<SmtpConnectionOptions> = {}) {
  const server = await FakeSmtpServer.start(options);
  servers.push(server);
  const conn = await SmtpConnection.open({
    target: { host: '127.0.0.1', port: server.port },
    heloName: 'client.test',
    protocol: options.lmtp ? 'lmtp' : 'smtp',
    ...connOptions,
  });
  connections.push(conn);
  return { server, conn, session: await server.session() };
}


const NO_PIPELINING = POSTFIX_EXTENSIONS.filter((e) => e !== 'PIPELINING');
const refuse = (target: string, reply: string) => (line: string) => (line.startsWith(`RCPT TO:<${target}>`) ? reply : undefined);

describe('sendMessage over SMTP', () => {
  it('pipelines XFORWARD, MAIL and every RCPT, then sends the message and the dot', async () => {
    // The server answers nothing until all five envelope commands are in:
    // only a pipelining client gets through.
    const { conn, session } = await setup({ holdEnvelopeReplies: 5 });
    const env = envelope({
      recipients: recipients('a@example.com', 'b@example.com', 'c@example.com'),
      client: { clientAddress: { family: 4, address: '192.0.2.1' }, heloName: 'upstream.test' },
      size: MESSAGE.length,
    });
    const result = await sendMessage(conn, env, chunks(MESSAGE.slice(0, 10), MESSAGE.slice(10)), { eightBit: false });
    expect(session.commands.slice(1)).toEqual([
      'XFORWARD ADDR=192.0.2.1 HELO=upstream.test SOURCE=REMOTE',
      `MAIL FROM:<sender@example.org> SIZE=${MESSAGE.length}`,
      'RCPT TO:<a@example.com>',
      'RCPT TO:<b@example.com>',
      'RCPT TO:<c@example.com>',
      'DATA',
    ]);
    expect(session.messages.map(String)).toEqual([MESSAGE.replace('..dot', '.dot')]);
    expect(result.queueId).toBe('FAKE1');
    expect(result.reply.code).toBe(250);
    expect(result.octets).toBe(MESSAGE.length);
    expect(conn.usable).toBe(true);
    expect(conn.sawError).toBe(false);
  });

  it('pipelines 50,000 recipients in windows: each RCPT once, in order, then the message', async () => {
    const { conn, session } = await setup();
    const many = Array.from({ length: 50_000 }, (_, i) => `r${i}@example.com`);
    const result = await sendMessage(conn, envelope({ recipients: recipients(...many) }), chunks(MESSAGE), { eightBit: false });
    expect(result.reply.code).toBe(250);
    const rcpts = session.commands.filter((line) => line.startsWith('RCPT TO:'));
    expect(rcpts).toEqual(many.map((text) => `RCPT TO:<${text}>`));
    expect(session.commands.at(-1)).toBe('DATA');
    expect(session.messages.length).toBe(1);
    expect(conn.usable).toBe(true);
  }, 60_000);

  it('writes at most two windows ahead of the replies (a server holding more replies starves it)', async () => {
    const many = Array.from({ length: 3 * PIPELINE_WINDOW }, (_, i) => `r${i}@example.com`);
    // XFORWARD and MAIL go in the first window, so two windows are 2 * PIPELINE_WINDOW commands.
    const starved = await setup({ holdEnvelopeReplies: 2 * PIPELINE_WINDOW + 1 }, { timeouts: { xforward: 200 } });
    const err = await rejection(sendMessage(starved.conn, envelope({ recipients: recipients(...many) }), chunks(MESSAGE), { eightBit: false }));
    expect(err).toMatchObject({ code: 'ERR_SMTP_TIMEOUT', outcome: 'mta-timeout' });
    expect(starved.session.commands.slice(1).length).toBe(2 * PIPELINE_WINDOW);
  });

  it('writes no more windows once a recipient is refused with 452, and sends RSET, no DATA', async () => {
    const many = Array.from({ length: 5_000 }, (_, i) => `r${i}@example.com`);
    const { conn, session } = await setup({ onCommand: (line) => (/^RCPT TO:<r(\d+)@/.exec(line) && Number(/^RCPT TO:<r(\d+)@/.exec(line)?.[1]) >= 10 ? '452 4.5.3 Error: too many recipients' : undefined) });
    const err = (await rejection(sendMessage(conn, envelope({ recipients: recipients(...many) }), chunks(MESSAGE), { eightBit: false }))) as SmtpError;
    expect(err.outcome).toBe('mta-tempfail');
    expect(err.message).toContain('RCPT TO:<r10@example.com> answered: 452 4.5.3 Error: too many recipients');
    const rcpts = session.commands.filter((line) => line.startsWith('RCPT TO:'));
    expect(rcpts.length).toBe(2 * PIPELINE_WINDOW - 2);
    expect(session.commands.at(-1)).toBe('RSET');
    expect(session.commands).not.toContain('DATA');
    expect(session.messages).toEqual([]);
  });

  it('waits for each reply when the server does not announce PIPELINING', async () => {
    const { conn, session } = await setup({ extensions: NO_PIPELINING });
    await sendMessage(conn, envelope({ recipients: recipients('a@x', 'b@x') }), chunks(MESSAGE), { eightBit: false });
    expect(session.commands.slice(1, 5)).toEqual(['XFORWARD SOURCE=REMOTE', 'MAIL FROM:<sender@example.org>', 'RCPT TO:<a@x>', 'RCPT TO:<b@x>']);
  });

  it('does not pipeline without PIPELINING (a server holding replies for a batch starves it)', async () => {
    const { conn, session } = await setup({ extensions: NO_PIPELINING, holdEnvelopeReplies: 2 }, { timeouts: { xforward: 50 } });
    const err = await rejection(sendMessage(conn, envelope(), chunks(MESSAGE), { eightBit: false }));
    expect(err).toMatchObject({ code: 'ERR_SMTP_TIMEOUT', stage: 'xforward', outcome: 'mta-timeout' });
    expect(session.commands.slice(1)).toEqual(['XFORWARD SOURCE=REMOTE']);
  });

  it('adds a CRLF to a message that does not end with one', async () => {
    const { conn, session } = await setup();
    const result = await sendMessage(conn, envelope(), chunks('Subject: x\r\n\r\nno line end'), { eightBit: false });
    expect(String(session.messages[0])).toBe('Subject: x\r\n\r\nno line end\r\n');
    expect(result.octets).toBe('Subject: x\r\n\r\nno line end\r\n'.length);
  });

  it('sends an empty message as DATA and the dot', async () => {
    const { conn, session } = await setup();
    await sendMessage(conn, envelope(), chunks(), { eightBit: false });
    expect(session.messages.map(String)).toEqual(['']);
  });

  it('reads a message from a Readable', async () => {
    const { conn, session } = await setup();
    const stream = new PassThrough();
    stream.end(MESSAGE);
    await sendMessage(conn, envelope(), stream, { eightBit: true });
    expect(session.commands).toContain('MAIL FROM:<sender@example.org> BODY=8BITMIME');
    expect(session.messages).toHaveLength(1);
  });

  it('reports DSN parameters the server cannot take', async () => {
    const { conn, session } = await setup({ extensions: ['PIPELINING'] });
    const env = envelope({
      envelopeId: 'abc',
      recipients: [{ address: address('a@x'), line: 2, notify: ['NEVER'] }],
    });
    const result = await sendMessage(conn, env, chunks(MESSAGE), { eightBit: false });
    expect(result.omitted).toEqual(['ENVID (no DSN)', 'NOTIFY (no DSN)']);
    expect(session.commands.slice(1, 3)).toEqual(['MAIL FROM:<sender@example.org>', 'RCPT TO:<a@x>']);
  });
});

describe('all or nothing', () => {
  it('sends RSET and no DATA when one recipient is refused, naming its line', async () => {
    const { conn, session } = await setup({ onCommand: refuse('b@x', '550 5.1.1 <b@x>: Recipient address rejected: User unknown') });
    const err = await rejection(sendMessage(conn, envelope({ recipients: recipients('a@x', 'b@x', 'c@x') }), chunks(MESSAGE), { eightBit: false }));
    expect(err).toMatchObject({ code: 'ERR_SMTP_RECIPIENT_REFUSED', outcome: 'recipient-refused', stage: 'rcpt' });
    expect(err.message).toBe('line 3: attribute "recipient": RCPT TO:<b@x> answered: 550 5.1.1 <b@x>: Recipient address rejected: User unknown');
    expect(session.commands.slice(-1)).toEqual(['RSET']);
    expect(session.commands).not.toContain('DATA');
    expect(session.messages).toEqual([]);
    expect(conn.sawError).toBe(true);
  });

  it('reports a temporary failure when any refusal is 4xx, even after a 5xx', async () => {
    const { conn } = await setup({
      onCommand: (line) =>
        line.startsWith('RCPT TO:<a@x>') ? '550 5.1.1 unknown' : line.startsWith('RCPT TO:<b@x>') ? '452 4.2.2 Mailbox full' : undefined,
    });
    const err = (await rejection(sendMessage(conn, envelope({ recipients: recipients('a@x', 'b@x') }), chunks(MESSAGE), { eightBit: false }))) as SmtpError;
    expect(err.outcome).toBe('mta-tempfail');
    expect(err.message).toContain('<b@x>');
    expect(err.message).toContain('(2 of 2 recipients refused)');
    expect(err.recipientReplies?.map((r) => r.code)).toEqual([550, 452]);
  });

  it('maps a bare 553 at RCPT to recipient-refused and a relay denial to message-refused', async () => {
    const bare = await setup({ onCommand: refuse('a@x', '553 sorry') });
    expect((await rejection(sendMessage(bare.conn, envelope({ recipients: recipients('a@x') }), chunks(MESSAGE), { eightBit: false }))).outcome).toBe(
      'recipient-refused',
    );
    const relay = await setup({ onCommand: refuse('a@x', '554 5.7.1 <a@x>: Relay access denied') });
    expect((await rejection(sendMessage(relay.conn, envelope({ recipients: recipients('a@x') }), chunks(MESSAGE), { eightBit: false }))).outcome).toBe(
      'message-refused',
    );
  });

  it('stops at a refused MAIL without pipelining (no RCPT, no RSET)', async () => {
    const { conn, session } = await setup({
      extensions: NO_PIPELINING,
      onCommand: (line) => (line.startsWith('MAIL') ? '552 5.3.4 Message size exceeds fixed limit' : undefined),
    });
    const err = await rejection(sendMessage(conn, envelope({ size: 99_999_999 }), chunks(MESSAGE), { eightBit: false }));
    expect(err.outcome).toBe('message-refused');
    expect(session.commands.slice(1)).toEqual(['XFORWARD SOURCE=REMOTE', 'MAIL FROM:<sender@example.org> SIZE=99999999']);
  });

  it('refuses a non-ASCII envelope before MAIL when the server lacks SMTPUTF8', async () => {
    const { conn, session } = await setup({ extensions: ['PIPELINING', 'DSN'] });
    const err = await rejection(sendMessage(conn, envelope({ recipients: recipients('j\u00f6rg@x') }), chunks(MESSAGE), { eightBit: false }));
    expect(err).toMatchObject({ code: 'ERR_SMTP_NO_SMTPUTF8', outcome: 'smtputf8-unsupported' });
    expect(session.commands).toEqual(['EHLO client.test']);
    expect(conn.usable).toBe(true);
  });

  it('sends RSET after a refused DATA', async () => {
    const { conn, session } = await setup({ onCommand: (line) => (line === 'DATA' ? '554 5.5.1 Error: no valid recipients' : undefined) });
    const err = await rejection(sendMessage(conn, envelope(), chunks(MESSAGE), { eightBit: false }));
    expect(err).toMatchObject({ stage: 'data-init', outcome: 'message-refused' });
    expect(session.commands.slice(-2)).toEqual(['DATA', 'RSET']);
  });

  it('reports a refusal at the end of data', async () => {
    const { conn } = await setup({ onMessage: () => '554 5.7.1 rejected by content filter' });
    const err = await rejection(sendMessage(conn, envelope(), chunks(MESSAGE), { eightBit: false }));
    expect(err).toMatchObject({ stage: 'data-end', outcome: 'message-refused', code: 'ERR_SMTP_REPLY' });
    expect(err.message).toBe('end of data answered: 554 5.7.1 rejected by content filter');
  });
});

describe('abandoned transactions never send the dot', () => {
  async function expectAbandoned(session: { closed: Promise<void>; received: Buffer[]; messages: Buffer[] }): Promise<void> {
    await session.closed;
    const wire = Buffer.concat(session.received).toString('latin1');
    const afterData = wire.slice(wire.indexOf('DATA\r\n') + 'DATA\r\n'.length);
    expect(afterData).not.toContain('\r\n.\r\n');
    expect(afterData.startsWith('.\r\n')).toBe(false);
    expect(session.messages).toEqual([]);
  }

  it('when the source fails with a SubmissionError half-way', async () => {
    const { conn, session } = await setup();
    const cause = new SubmissionError('size-mismatch', 'size says 500 octets, 47 were read', { attribute: 'size' });
    const err = await rejection(sendMessage(conn, envelope(), failing(cause, 'Subject: x\r\n\r\n', 'partial body\r\n'), { eightBit: false }));
    expect(err).toBe(cause);
    await expectAbandoned(session);
    expect(Buffer.concat(session.received).toString()).toContain('partial body\r\n');
    expect(conn.usable).toBe(false);
  });

  it('when the caller goes away (the source stream is destroyed)', async () => {
    const { conn, session } = await setup();
    const stream = new PassThrough();
    stream.write('Subject: x\r\n\r\nfirst line\r\n');
    const sending = sendMessage(conn, envelope(), stream, { eightBit: false });
    const firstLineSeen = new Promise<void>((resolve) => {
      const poll = (): void => {
        if (Buffer.concat(session.received).includes('first line')) resolve();
        else setImmediate(poll);
      };
      poll();
    });
    await firstLineSeen;
    stream.destroy(new SubmissionError('caller-gone', 'the caller closed its end'));
    const err = await rejection(sending);
    expect(err.outcome).toBe('caller-gone');
    await expectAbandoned(session);
  });

  it('when the caller went away after the whole message was read (the abort signal)', async () => {
    const { conn, session } = await setup();
    const aborted = new AbortController();
    async function* whole(): AsyncGenerator<Buffer> {
      yield Buffer.from('Subject: x\r\n\r\nall of it\r\n');
      aborted.abort(new SubmissionError('caller-gone', 'the caller closed its end'));
    }
    const err = await rejection(sendMessage(conn, envelope(), whole(), { eightBit: false, signal: aborted.signal }));
    expect(err.outcome).toBe('caller-gone');
    await expectAbandoned(session);
    expect(conn.usable).toBe(false);
  });

  it('when the caller went away while a silent MTA held the reply to RCPT: dropped at once, not after the command timeout', async () => {
    // A server that never answers RCPT; the command timeout (an hour) would outlast the test.
    const { conn, session } = await setup(
      { onCommand: (line) => (line.startsWith('RCPT') ? null : undefined) },
      { timeouts: { ...DEFAULT_TIMEOUTS, rcpt: 3_600_000, mail: 3_600_000 } },
    );
    const aborted = new AbortController();
    const sending = sendMessage(conn, envelope(), chunks('Subject: x\r\n\r\nnever sent\r\n'), { eightBit: false, signal: aborted.signal });
    await until(() => Buffer.concat(session.received).toString('latin1').includes('RCPT TO:'), 'the RCPT on the wire');
    aborted.abort(new SubmissionError('caller-gone', 'the caller closed its end'));
    const err = await rejection(sending);
    expect(err.outcome).toBe('caller-gone');
    await session.closed;
    expect(Buffer.concat(session.received).toString('latin1')).not.toContain('DATA\r\n');
    expect(conn.usable).toBe(false);
  });

  it('wraps a source error that is not a SubmissionError as input-error', async () => {
    const { conn, session } = await setup();
    const err = await rejection(sendMessage(conn, envelope(), failing(new Error('EIO'), 'Subject: x\r\n'), { eightBit: false }));
    expect(err.outcome).toBe('input-error');
    await expectAbandoned(session);
  });

  it('when the encoded message would end DATA early', async () => {
    const { conn, session } = await setup();
    const err = (await rejection(sendMessage(conn, envelope(), chunks('Subject: x\r\n\r\nhi\r\n.\r\nRSET\r\n'), { eightBit: false }))) as SmtpError;
    expect(err).toMatchObject({ code: 'ERR_SMTP_UNSAFE_DATA', outcome: 'internal' });
    await expectAbandoned(session);
    expect(Buffer.concat(session.received).toString()).not.toContain('hi\r\n');
  });

  it('when the message ends in a bare dot line', async () => {
    const { conn, session } = await setup();
    const err = (await rejection(sendMessage(conn, envelope(), chunks('Subject: x\r\n\r\nhi\r\n', '.'), { eightBit: false }))) as SmtpError;
    expect(err.code).toBe('ERR_SMTP_UNSAFE_DATA');
    await expectAbandoned(session);
  });
});

describe('timeouts per stage', () => {
  const stall = (prefix: string) => (line: string) => (line.startsWith(prefix) ? null : undefined);

  it.each([
    ['xforward', 'XFORWARD', { xforward: 50 }],
    ['mail', 'MAIL', { mail: 50 }],
    ['rcpt', 'RCPT', { rcpt: 50 }],
    ['data-init', 'DATA', { dataInit: 50 }],
  ] as const)('%s', async (stage, prefix, timeouts) => {
    const { conn, session } = await setup({ onCommand: stall(prefix) }, { timeouts });
    const err = (await rejection(sendMessage(conn, envelope(), chunks(MESSAGE), { eightBit: false }))) as SmtpError;
    expect(err).toMatchObject({ code: 'ERR_SMTP_TIMEOUT', outcome: 'mta-timeout', stage });
    await session.closed;
    expect(session.messages).toEqual([]);
  });

  it('data-end', async () => {
    const { conn, session } = await setup({ onMessage: () => null }, { timeouts: { dataEnd: 50 } });
    const err = (await rejection(sendMessage(conn, envelope(), chunks(MESSAGE), { eightBit: false }))) as SmtpError;
    expect(err).toMatchObject({ code: 'ERR_SMTP_TIMEOUT', outcome: 'mta-timeout', stage: 'data-end' });
    expect(session.messages).toHaveLength(1);
  });

  it('data-block (the server stops reading the message)', async () => {
    const { conn, session } = await setup({ stopReadingInData: true }, { timeouts: { dataBlock: 100 } });
    const line = Buffer.from(`${'x'.repeat(998)}\r\n`);
    async function* endless(): AsyncGenerator<Buffer> {
      for (;;) yield Buffer.concat(Array.from({ length: 64 }, () => line));
    }
    const err = (await rejection(sendMessage(conn, envelope(), endless(), { eightBit: false }))) as SmtpError;
    expect(err).toMatchObject({ code: 'ERR_SMTP_TIMEOUT', outcome: 'mta-timeout', stage: 'data-block' });
    // The paused server cannot see the close; the client side is gone.
    expect(conn.usable).toBe(false);
    expect(session.messages).toEqual([]);
  });

  it('rset (after a refused recipient)', async () => {
    const { conn } = await setup(
      { onCommand: (line) => (line === 'RSET' ? null : refuse('rcpt@example.com', '550 5.1.1 unknown')(line)) },
      { timeouts: { rset: 50 } },
    );
    // The refusal is what the caller hears; the RSET timeout only closes the connection.
    const err = await rejection(sendMessage(conn, envelope(), chunks(MESSAGE), { eightBit: false }));
    expect(err.outcome).toBe('recipient-refused');
    expect(conn.usable).toBe(false);
  });
});

describe('sendMessage over LMTP', () => {
  it('succeeds when every recipient gets a 2xx after the dot', async () => {
    const { conn, session } = await setup({ lmtp: true });
    const result = await sendMessage(conn, envelope({ recipients: recipients('a@x', 'b@x', 'c@x') }), chunks(MESSAGE), { eightBit: false });
    expect(result.lmtpReplies?.map((r) => r.code)).toEqual([250, 250, 250]);
    expect(result.queueId).toBe('FAKE1');
    expect(session.commands[0]).toBe('LHLO client.test');
    expect(conn.usable).toBe(true);
  });

  it('fails with the worst reply when some recipients are refused after the dot', async () => {
    const { conn } = await setup({
      lmtp: true,
      onMessage: () => ['250 2.0.0 <a@x> delivered', '452 4.2.2 <b@x> mailbox full', '550 5.1.1 <c@x> unknown'],
    });
    const err = (await rejection(sendMessage(conn, envelope({ recipients: recipients('a@x', 'b@x', 'c@x') }), chunks(MESSAGE), { eightBit: false }))) as SmtpError;
    expect(err).toMatchObject({ code: 'ERR_LMTP_RECIPIENT_REFUSED', outcome: 'mta-tempfail', stage: 'lmtp-data-end' });
    expect(err.position).toEqual({ line: 3, attribute: 'recipient' });
    expect(err.message).toContain('1 of 3 recipients were delivered');
    expect(err.recipientReplies?.map((r) => r.code)).toEqual([250, 452, 550]);
  });

  it('maps a permanent per-recipient refusal to recipient-refused', async () => {
    const { conn } = await setup({ lmtp: true, onMessage: () => ['550 5.1.1 <a@x> unknown'] });
    const err = await rejection(sendMessage(conn, envelope({ recipients: recipients('a@x') }), chunks(MESSAGE), { eightBit: false }));
    expect(err.outcome).toBe('recipient-refused');
  });

  it('times out waiting for a later recipient reply', async () => {
    const { conn } = await setup({ lmtp: true, onMessage: () => ['250 2.0.0 ok'] }, { timeouts: { dataEnd: 50 } });
    const err = (await rejection(sendMessage(conn, envelope({ recipients: recipients('a@x', 'b@x') }), chunks(MESSAGE), { eightBit: false }))) as SmtpError;
    expect(err).toMatchObject({ code: 'ERR_SMTP_TIMEOUT', stage: 'lmtp-data-end' });
  });
});
