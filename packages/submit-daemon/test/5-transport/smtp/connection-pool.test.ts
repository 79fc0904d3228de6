import { afterEach, describe, expect, it } from 'vitest';
import { SmtpConnectionPool } from '../../../src/5-transport/smtp/connection-pool.ts';
import { SmtpConnection } from '../../../src/5-transport/smtp/smtp-connection.ts';
import { SmtpError } from '../../../src/5-transport/smtp/smtp-error.ts';
import { sendMessage } from '../../../src/5-transport/smtp/smtp-transaction.ts';
import { FakeSmtpServer, type FakeServerOptions } from './fake-smtp-server.ts';
import { chunks, envelope, MESSAGE, recipients } from './test-envelopes.ts';

const servers: FakeSmtpServer[] = [];
const pools: SmtpConnectionPool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function setup(options: FakeServerOptions = {}, poolOptions: { maxIdle?: number; idleTimeoutMs?: number } = {}) {
  const server = await FakeSmtpServer.start(options);
  servers.push(server);
  let opened = 0;
  const pool = new SmtpConnectionPool(() => {
    opened += 1;
    return SmtpConnection.open({ target: { host: '127.0.0.1', port: server.port }, heloName: 'client.test' });
  }, poolOptions);
  pools.push(pool);
  return { server, pool, opened: () => opened };
}

async function send(pool: SmtpConnectionPool, env = envelope()): Promise<unknown> {
  const conn = await pool.acquire();
  try {
    return await sendMessage(conn, env, chunks(MESSAGE), { eightBit: false });
  } catch (err) {
    return err;
  } finally {
    await pool.release(conn);
  }
}

describe('SmtpConnectionPool', () => {
  it('reuses a connection, its next transaction starting with RSET', async () => {
    const { server, pool, opened } = await setup();
    await send(pool);
    await send(pool);
    expect(opened()).toBe(1);
    expect(server.sessions).toHaveLength(1);
    const verbs = (await server.session()).commands.map((c) => c.split(/[ :]/)[0]);
    expect(verbs).toEqual(['EHLO', 'XFORWARD', 'MAIL', 'RCPT', 'DATA', 'RSET', 'XFORWARD', 'MAIL', 'RCPT', 'DATA']);
    expect((await server.session()).messages).toHaveLength(2);
    expect(pool.idleCount).toBe(1);
  });

  it('sends the owed RSET with the envelope, not waiting for its reply', async () => {
    // A server that never answers RSET still gets the envelope behind it.
    const { server, pool } = await setup({ onCommand: (line) => (line === 'RSET' ? null : undefined) });
    await send(pool);
    const session = await server.session();
    const conn = await pool.acquire();
    const sending = sendMessage(conn, envelope(), chunks(MESSAGE), { eightBit: false }).catch((err: unknown) => err);
    while (!session.commands.slice(session.commands.indexOf('RSET')).some((line) => line.startsWith('RCPT'))) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    session.hangUp();
    const err = (await sending) as SmtpError;
    expect(err).toBeInstanceOf(SmtpError);
    expect(err.code).toBe('ERR_SMTP_CLOSED');
    expect(err.stage).toBe('rset');
    expect(session.messages).toHaveLength(1);
    await pool.release(conn);
    expect(pool.idleCount).toBe(0);
  });

  it('never reuses a connection that saw a refusal', async () => {
    const { server, pool, opened } = await setup({
      onCommand: (line) => (line.startsWith('RCPT TO:<bad@x>') ? '550 5.1.1 unknown' : undefined),
    });
    await send(pool, envelope({ recipients: recipients('bad@x') }));
    expect(pool.idleCount).toBe(0);
    const first = await server.session(0);
    await first.closed;
    expect(first.commands.slice(-2)).toEqual(['RSET', 'QUIT']);
    await send(pool);
    expect(opened()).toBe(2);
    expect((await server.session(1)).messages).toHaveLength(1);
  });

  it('goes no further on a reused connection whose RSET is refused, and does not keep it', async () => {
    const { server, pool } = await setup({ onCommand: (line) => (line === 'RSET' ? '421 4.3.2 shutting down' : undefined) });
    await send(pool);
    const err = (await send(pool)) as SmtpError;
    expect(err).toBeInstanceOf(SmtpError);
    expect(err.code).toBe('ERR_SMTP_NOT_USABLE');
    expect(err.stage).toBe('rset');
    expect(err.message).toContain('421 4.3.2 shutting down');
    const session = await server.session();
    await session.closed;
    expect(session.commands.slice(session.commands.indexOf('RSET'))).not.toContain('DATA');
    expect(session.messages).toHaveLength(1);
    expect(pool.idleCount).toBe(0);
  });

  it('replaces an idle connection the server closed', async () => {
    const { server, pool, opened } = await setup();
    await send(pool);
    const first = await server.session(0);
    first.hangUp();
    await first.closed;
    await send(pool);
    expect(opened()).toBe(2);
    expect((await server.session(1)).messages).toHaveLength(1);
  });

  it('keeps at most maxIdle connections', async () => {
    const { server, pool } = await setup({}, { maxIdle: 1 });
    const a = await pool.acquire();
    const b = await pool.acquire();
    await pool.release(a);
    await pool.release(b);
    expect(pool.idleCount).toBe(1);
    expect(server.sessions).toHaveLength(2);
    await (await server.session(1)).closed;
    expect((await server.session(1)).commands.slice(-1)).toEqual(['QUIT']);
  });

  it('closes an idle connection after the idle timeout', async () => {
    const { server, pool } = await setup({}, { idleTimeoutMs: 20 });
    await send(pool);
    const session = await server.session();
    await session.closed;
    // After a 250 to the dot the session is clean: QUIT needs no RSET before it.
    expect(session.commands.slice(-2)).toEqual(['DATA', 'QUIT']);
    expect(pool.idleCount).toBe(0);
  });

  it('QUITs idle connections on close', async () => {
    const { server, pool } = await setup();
    await send(pool);
    await pool.close();
    const session = await server.session();
    await session.closed;
    expect(session.commands.slice(-1)).toEqual(['QUIT']);
  });
});
