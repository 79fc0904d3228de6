import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SmtpConnection, type SmtpConnectionOptions } from '../../../src/5-transport/smtp/smtp-connection.ts';
import { SmtpError } from '../../../src/5-transport/smtp/smtp-error.ts';
import { FakeSmtpServer, type FakeServerOptions } from './fake-smtp-server.ts';
import { rejection } from '../../support/rejection.ts';

const servers: FakeSmtpServer[] = [];
const connections: SmtpConnection[] = [];
afterEach(async () => {
  for (const conn of connections.splice(0)) conn.destroy();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(options: FakeServerOptions = {}): Promise<FakeSmtpServer> {
  const server = await FakeSmtpServer.start(options);
  servers.push(server);
  return server;
}

async function open(server: FakeSmtpServer, options: Partial<SmtpConnectionOptions> = {}): Promise<SmtpConnection> {
  const conn = await SmtpConnection.open({ target: { host: '127.0.0.1', port: server.port }, heloName: 'client.test', ...options });
  connections.push(conn);
  return conn;
}

const failure = (promise: Promise<unknown>): Promise<SmtpError> => rejection(promise, SmtpError);

describe('SmtpConnection.open', () => {
  it('reads a multi-line EHLO reply into capabilities', async () => {
    const server = await serve();
    const conn = await open(server);
    expect(conn.capabilities.pipelining).toBe(true);
    expect(conn.capabilities.size).toBe(10_240_000);
    expect([...conn.capabilities.xforward]).toContain('SOURCE');
    expect((await server.session()).commands).toEqual(['EHLO client.test']);
    expect(conn.usable).toBe(true);
  });

  it('connects over a Unix socket', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailsubmit-smtp-'));
    try {
      const path = join(dir, 'lmtp.sock');
      const server = await FakeSmtpServer.start({ lmtp: true }, path);
      servers.push(server);
      const conn = await open(server, { target: { path }, protocol: 'lmtp' });
      expect((await server.session()).commands).toEqual(['LHLO client.test']);
      expect(conn.protocol).toBe('lmtp');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails with mta-tempfail on a 421 greeting', async () => {
    const server = await serve({ greeting: '421 4.3.2 Service shutting down', closeAfterGreeting: true });
    const err = await failure(open(server));
    expect(err.code).toBe('ERR_SMTP_REPLY');
    expect(err.outcome).toBe('mta-tempfail');
    expect(err.stage).toBe('greeting');
    expect(err.reply?.code).toBe(421);
    expect(err.message).toContain('421 4.3.2 Service shutting down');
  });

  it('fails with mta-unreachable when nothing listens', async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as net.AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const err = await failure(SmtpConnection.open({ target: { host: '127.0.0.1', port } }));
    expect(err.code).toBe('ERR_SMTP_CONNECT');
    expect(err.outcome).toBe('mta-unreachable');
  });

  it('fails with mta-unreachable for a missing socket path', async () => {
    const err = await failure(SmtpConnection.open({ target: { path: join(tmpdir(), 'no-such-dir-mailsubmit', 's') } }));
    expect(err.code).toBe('ERR_SMTP_CONNECT');
    expect(err.outcome).toBe('mta-unreachable');
  });

  it('times out while connecting', async () => {
    // A socket that never connects stands in for a peer that drops SYNs.
    const spy = vi.spyOn(net, 'connect').mockImplementation(() => new net.Socket());
    try {
      const err = await failure(SmtpConnection.open({ target: { host: '192.0.2.1', port: 25 }, timeouts: { connect: 50 } }));
      expect(err).toMatchObject({ code: 'ERR_SMTP_TIMEOUT', outcome: 'mta-timeout', stage: 'connect' });
      expect(spy).toHaveBeenCalledTimes(1);
    } finally {
      spy.mockRestore();
    }
  });

  it('times out at the greeting', async () => {
    const server = await serve({ greeting: null });
    const err = await failure(open(server, { timeouts: { greeting: 50 } }));
    expect(err.code).toBe('ERR_SMTP_TIMEOUT');
    expect(err.outcome).toBe('mta-timeout');
    expect(err.stage).toBe('greeting');
  });

  it('times out at EHLO', async () => {
    const server = await serve({ onCommand: (line) => (line.startsWith('EHLO') ? null : undefined) });
    const err = await failure(open(server, { timeouts: { ehlo: 50 } }));
    expect(err.code).toBe('ERR_SMTP_TIMEOUT');
    expect(err.stage).toBe('ehlo');
    expect(err.command).toBe('EHLO client.test');
  });

  it('falls back to HELO (and no extensions) when EHLO is refused', async () => {
    const server = await serve({ onCommand: (line) => (line.startsWith('EHLO') ? '502 5.5.2 Error: command not recognized' : undefined) });
    const conn = await open(server);
    expect((await server.session()).commands).toEqual(['EHLO client.test', 'HELO client.test']);
    expect(conn.capabilities.pipelining).toBe(false);
    expect(conn.capabilities.xforward.size).toBe(0);
  });

  it('does not fall back to HELO for LMTP', async () => {
    const server = await serve({ lmtp: true, onCommand: (line) => (line.startsWith('LHLO') ? '500 5.5.1 no' : undefined) });
    const err = await failure(open(server, { protocol: 'lmtp' }));
    expect(err.stage).toBe('ehlo');
    expect((await server.session()).commands).toEqual(['LHLO client.test']);
  });

  it('fails on a reply line over the cap', async () => {
    const server = await serve({ greeting: `220 ${'x'.repeat(5000)}` });
    const err = await failure(open(server));
    expect(err.code).toBe('ERR_SMTP_REPLY_TOO_LONG');
    expect(err.outcome).toBe('mta-protocol');
  });
});

describe('SmtpConnection commands', () => {
  it('matches pipelined replies to their commands in order', async () => {
    const server = await serve({
      onCommand: (line) => (line === 'NOOP 2' ? '550-5.0.0 two\r\n550 5.0.0 lines' : line.startsWith('NOOP') ? `250 ${line}` : undefined),
    });
    const conn = await open(server);
    const replies = await Promise.all(conn.pipeline(['NOOP 1', 'NOOP 2', 'NOOP 3'].map((line) => ({ line, stage: 'mail' as const }))));
    expect(replies.map((r) => r.code)).toEqual([250, 550, 250]);
    expect(replies[0]?.lines).toEqual(['NOOP 1']);
    expect(replies[1]?.lines).toEqual(['5.0.0 two', '5.0.0 lines']);
    expect(replies[2]?.lines).toEqual(['NOOP 3']);
  });

  it('refuses to send an unsafe line', async () => {
    const conn = await open(await serve());
    expect(() => conn.command('NOOP\r\nQUIT', 'mail')).toThrow(expect.objectContaining({ code: 'ERR_UNSAFE_COMMAND' }));
  });

  it('fails every pending reply when the server closes', async () => {
    const server = await serve({
      onCommand: (line, session) => {
        if (line !== 'NOOP 1') return undefined;
        session.hangUp();
        return null;
      },
    });
    const conn = await open(server);
    const pending = conn.pipeline([
      { line: 'NOOP 1', stage: 'mail' },
      { line: 'NOOP 2', stage: 'rcpt' },
    ]);
    const errors = await Promise.all(pending.map((p) => failure(p)));
    expect(errors.map((e) => e.code)).toEqual(['ERR_SMTP_CLOSED', 'ERR_SMTP_CLOSED']);
    expect(errors[0]?.outcome).toBe('mta-protocol');
    expect(errors[0]?.command).toBe('NOOP 1');
    expect(conn.usable).toBe(false);
    expect(conn.sawError).toBe(true);
  });

  it('treats a reply nobody asked for as a protocol error', async () => {
    const server = await serve();
    const conn = await open(server);
    const closed = new Promise<void>((resolve) => conn.onClose(resolve));
    (await server.session()).write('421 4.4.2 Error: timeout exceeded\r\n');
    await closed;
    expect(conn.usable).toBe(false);
    const err = await failure(conn.command('NOOP', 'mail'));
    expect(err.code).toBe('ERR_SMTP_UNEXPECTED_REPLY');
  });

  it('says QUIT and closes', async () => {
    const server = await serve();
    const conn = await open(server);
    await conn.quit();
    const session = await server.session();
    await session.closed;
    expect(session.commands).toEqual(['EHLO client.test', 'QUIT']);
  });

  it('times out at QUIT and still closes', async () => {
    const server = await serve({ onCommand: (line) => (line === 'QUIT' ? null : undefined) });
    const conn = await open(server, { timeouts: { quit: 50 } });
    await conn.quit();
    await (await server.session()).closed;
    expect(conn.usable).toBe(false);
  });
});
