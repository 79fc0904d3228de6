/**
 * STARTTLS in the SMTP client, against the fake server with real TLS and
 * certificates made by openssl (test/support/test-ca.ts): a test CA, a
 * certificate for localhost/127.0.0.1 signed by it, one for another name,
 * an expired one, and a self-signed one. Each policy level is run against
 * each case.
 */
import { statusOf } from '@mailsubmit/shared';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SmtpConnection, type SmtpConnectionOptions } from '../../../src/5-transport/smtp/smtp-connection.ts';
import { SmtpError, type SmtpErrorCode } from '../../../src/5-transport/smtp/smtp-error.ts';
import type { TlsPolicy } from '../../../src/5-transport/smtp/tls-policy.ts';
import { FakeSmtpServer, POSTFIX_EXTENSIONS, type FakeServerOptions } from './fake-smtp-server.ts';
import { rejection } from '../../support/rejection.ts';
import { TestCa, type TestCertificate } from '../../../../../test/support/test-ca.ts';

let ca: TestCa | undefined;
let caFile = '';
let good: TestCertificate;
let wrongName: TestCertificate;
let expired: TestCertificate;
let selfSigned: TestCertificate;

beforeAll(() => {
  ca = TestCa.create();
  caFile = ca.caFile;
  good = ca.issue('good', ['localhost', '127.0.0.1']);
  wrongName = ca.issue('wrong-name', ['other.example'], { commonName: 'localhost' });
  expired = ca.issue('expired', ['localhost', '127.0.0.1'], { days: -1 });
  selfSigned = ca.selfSigned('self', ['localhost', '127.0.0.1']);
});

afterAll(() => ca?.remove());

const servers: FakeSmtpServer[] = [];
const connections: SmtpConnection[] = [];
afterEach(async () => {
  for (const conn of connections.splice(0)) conn.destroy();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** Before TLS the server announces a small SIZE and no PIPELINING; under TLS, Postfix's list. */
const CLEAR_EXTENSIONS = ['SIZE 1000'];

async function serve(certificate: TestCertificate | null, starttls: Partial<NonNullable<FakeServerOptions['starttls']>> = {}, options: FakeServerOptions = {}): Promise<FakeSmtpServer> {
  const server = await FakeSmtpServer.start({
    extensions: CLEAR_EXTENSIONS,
    ...(certificate === null ? {} : { starttls: { key: certificate.key, cert: certificate.cert, extensionsAfterTls: POSTFIX_EXTENSIONS, ...starttls } }),
    ...options,
  });
  servers.push(server);
  return server;
}

async function open(server: FakeSmtpServer, tls: TlsPolicy, options: Partial<SmtpConnectionOptions> = {}): Promise<SmtpConnection> {
  const conn = await SmtpConnection.open({ target: { host: '127.0.0.1', port: server.port }, heloName: 'client.test', tls, ...options });
  connections.push(conn);
  return conn;
}

/** The failure of open(), checked to be temporary (75, never 5xx) and to have closed the connection. */
async function refused(server: FakeSmtpServer, tls: TlsPolicy, code: SmtpErrorCode): Promise<SmtpError> {
  const err = await rejection(open(server, tls), SmtpError);
  expect(err.code).toBe(code);
  expect(err.outcome).toBe('mta-protocol');
  expect(statusOf(err.outcome).exitCode).toBe(75);
  expect(statusOf(err.outcome).smtpClass).toBe(4);
  for (const session of server.sessions) await session.closed;
  return err;
}

/** The connection works under TLS: a command goes out and its reply comes back through the TLS socket. */
async function worksUnderTls(server: FakeSmtpServer, conn: SmtpConnection): Promise<void> {
  const reply = await conn.command('MAIL FROM:<sender@example.org>', 'mail');
  expect(reply.code).toBe(250);
  const session = server.sessions.at(-1);
  expect(session?.secured).toBe(true);
  expect(session?.commands).toEqual(['EHLO client.test', 'STARTTLS', 'EHLO client.test', 'MAIL FROM:<sender@example.org>']);
}

describe('level none', () => {
  it('never sends STARTTLS, even when offered', async () => {
    const server = await serve(good);
    const conn = await open(server, { level: 'none' });
    expect(conn.tls).toBeNull();
    expect((await server.session()).commands).toEqual(['EHLO client.test']);
    expect(conn.capabilities.size).toBe(1000);
  });
});

describe('level may', () => {
  it('starts TLS when offered, and takes the capabilities from the second EHLO', async () => {
    const server = await serve(good);
    const conn = await open(server, { level: 'may', caFile });
    expect(conn.capabilities.pipelining).toBe(true);
    expect(conn.capabilities.size).toBe(10_240_000);
    expect(conn.tls).toMatchObject({ verified: true, verifyError: null, expectedName: '127.0.0.1', pinMatched: null });
    expect(conn.tls?.protocol).toMatch(/^TLSv1\.[23]$/);
    expect(conn.tls?.cipher).not.toBe('');
    expect(conn.tls?.peerSubject).toBe('CN=localhost');
    expect(conn.tls?.peerFingerprint).toBe(good.fingerprint.replace(/:/g, '').toLowerCase());
    await worksUnderTls(server, conn);
  });

  it('goes on in the clear when STARTTLS is not offered', async () => {
    const server = await serve(good, { offerStartTls: false });
    const conn = await open(server, { level: 'may' });
    expect(conn.tls).toBeNull();
    expect(conn.capabilities.size).toBe(1000);
    expect((await server.session()).commands).toEqual(['EHLO client.test']);
  });

  it('uses an untrusted certificate, marked unverified', async () => {
    const server = await serve(selfSigned);
    const conn = await open(server, { level: 'may', caFile });
    expect(conn.tls?.verified).toBe(false);
    expect(conn.tls?.verifyError).toBe("the MTA's certificate does not verify: self-signed certificate");
    await worksUnderTls(server, conn);
  });

  it('reports a pin mismatch without enforcing it', async () => {
    const server = await serve(good);
    const conn = await open(server, { level: 'may', pins: [selfSigned.fingerprint] });
    expect(conn.tls?.pinMatched).toBe(false);
  });

  it('connects again in the clear when the handshake fails', async () => {
    const server = await serve(good, { maxVersion: 'TLSv1.2' });
    const conn = await open(server, { level: 'may', minVersion: 'TLSv1.3' });
    expect(conn.tls).toBeNull();
    expect(conn.tlsFailedBefore).toMatch(/^the TLS handshake with the MTA failed: /);
    expect(server.sessions).toHaveLength(2);
    expect(server.sessions[0]?.commands).toEqual(['EHLO client.test', 'STARTTLS']);
    expect(server.sessions[1]?.commands).toEqual(['EHLO client.test']);
    expect(conn.capabilities.size).toBe(1000);
    expect((await conn.command('MAIL FROM:<sender@example.org>', 'mail')).code).toBe(250);
  });

  it('goes on in the clear, with the first capabilities, after a 454 to STARTTLS', async () => {
    const server = await serve(good, {}, { onCommand: (line) => (line === 'STARTTLS' ? '454 4.7.0 TLS not available due to local problem' : undefined) });
    const conn = await open(server, { level: 'may' });
    expect(conn.tls).toBeNull();
    expect(conn.capabilities.size).toBe(1000);
    expect((await conn.command('MAIL FROM:<sender@example.org>', 'mail')).code).toBe(250);
  });
});

describe('level encrypt', () => {
  it('fails when STARTTLS is not offered', async () => {
    const server = await serve(good, { offerStartTls: false });
    const err = await refused(server, { level: 'encrypt' }, 'ERR_SMTP_TLS_UNAVAILABLE');
    expect(err.message).toContain('the MTA does not offer STARTTLS, and the TLS policy (encrypt) requires it');
    expect(server.sessions[0]?.commands).toEqual(['EHLO client.test']);
  });

  it('fails when the server has no TLS at all', async () => {
    const server = await serve(null);
    await refused(server, { level: 'encrypt' }, 'ERR_SMTP_TLS_UNAVAILABLE');
  });

  it('fails when STARTTLS is refused', async () => {
    const server = await serve(good, {}, { onCommand: (line) => (line === 'STARTTLS' ? '454 4.7.0 TLS not available' : undefined) });
    const err = await refused(server, { level: 'encrypt' }, 'ERR_SMTP_TLS_UNAVAILABLE');
    expect(err.message).toContain('the MTA refused STARTTLS: 454 4.7.0 TLS not available');
  });

  it('accepts an unverified certificate', async () => {
    const server = await serve(selfSigned);
    const conn = await open(server, { level: 'encrypt' });
    expect(conn.tls?.verified).toBe(false);
    await worksUnderTls(server, conn);
  });

  it('accepts a pinned certificate (colons and case do not matter)', async () => {
    const server = await serve(selfSigned);
    const conn = await open(server, { level: 'encrypt', pins: [good.fingerprint, selfSigned.fingerprint.replace(/:/g, '').toLowerCase()] });
    expect(conn.tls?.pinMatched).toBe(true);
    await worksUnderTls(server, conn);
  });

  it('refuses a certificate that is not pinned', async () => {
    const server = await serve(selfSigned);
    const err = await refused(server, { level: 'encrypt', pins: [good.fingerprint] }, 'ERR_SMTP_TLS_PIN');
    expect(err.message).toContain(selfSigned.fingerprint.replace(/:/g, '').toLowerCase());
    expect(server.sessions).toHaveLength(1);
  });

  it('fails when the handshake fails, without a second try in the clear', async () => {
    const server = await serve(good, { maxVersion: 'TLSv1.2' });
    const err = await refused(server, { level: 'encrypt', minVersion: 'TLSv1.3' }, 'ERR_SMTP_TLS_HANDSHAKE');
    expect(err.message).toMatch(/^the TLS handshake with the MTA failed: /);
    expect(server.sessions).toHaveLength(1);
  });

  it('negotiates TLSv1.3 with a server that requires it', async () => {
    const server = await serve(good, { minVersion: 'TLSv1.3' });
    const conn = await open(server, { level: 'encrypt' });
    expect(conn.tls?.protocol).toBe('TLSv1.3');
  });

  it('fails when the server requires more than the client allows', async () => {
    // The client's ceiling is Node's (TLSv1.3); a server that only does TLSv1.2 is refused by a TLSv1.3 floor.
    const server = await serve(good, { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' });
    await refused(server, { level: 'verify', caFile, minVersion: 'TLSv1.3' }, 'ERR_SMTP_TLS_HANDSHAKE');
  });
});

describe('a server that says 220 to STARTTLS and then never does the handshake', () => {
  const silentAfterStartTls: FakeServerOptions = {
    extensions: [...CLEAR_EXTENSIONS, 'STARTTLS'],
    onCommand: (line, session) => (line === 'STARTTLS' ? '220 2.0.0 Ready to start TLS' : session.commands.includes('STARTTLS') ? null : undefined),
  };

  it('fails encrypt after the EHLO timeout', async () => {
    const server = await serve(null, {}, silentAfterStartTls);
    const err = await rejection(open(server, { level: 'encrypt' }, { timeouts: { ehlo: 1500 } }), SmtpError);
    expect(err.code).toBe('ERR_SMTP_TLS_HANDSHAKE');
    expect(err.message).toBe('the TLS handshake with the MTA took more than 1500 ms');
    expect(statusOf(err.outcome).exitCode).toBe(75);
  });

  it('makes may connect again in the clear', async () => {
    const server = await serve(null, {}, silentAfterStartTls);
    const conn = await open(server, { level: 'may' }, { timeouts: { ehlo: 1500 } });
    expect(conn.tls).toBeNull();
    expect(conn.tlsFailedBefore).toBe('the TLS handshake with the MTA took more than 1500 ms');
    expect(server.sessions).toHaveLength(2);
  });
});

describe('a connection under TLS', () => {
  it('fails with the usual error when the server closes with a reply outstanding', async () => {
    const server = await serve(good, {}, { onCommand: (line) => (line.startsWith('MAIL') ? null : undefined) });
    const conn = await open(server, { level: 'encrypt' });
    const reply = conn.command('MAIL FROM:<sender@example.org>', 'mail');
    (await server.session()).hangUp();
    const err = await rejection(reply, SmtpError);
    expect(err.code).toBe('ERR_SMTP_CLOSED');
    expect(conn.usable).toBe(false);
  });

  it('is closed by QUIT', async () => {
    const server = await serve(good);
    const conn = await open(server, { level: 'encrypt' });
    await conn.quit();
    const session = await server.session();
    await session.closed;
    expect(session.commands.at(-1)).toBe('QUIT');
  });
});

describe('level verify', () => {
  it('accepts a certificate from the CA file that matches the address', async () => {
    const server = await serve(good);
    const conn = await open(server, { level: 'verify', caFile });
    expect(conn.tls).toMatchObject({ verified: true, expectedName: '127.0.0.1' });
    await worksUnderTls(server, conn);
  });

  it('matches the expected server name, sent as SNI', async () => {
    const server = await serve(good);
    const conn = await open(server, { level: 'verify', caFile, serverName: 'localhost' });
    expect(conn.tls).toMatchObject({ verified: true, expectedName: 'localhost' });
  });

  it('fails when STARTTLS is not offered', async () => {
    const server = await serve(good, { offerStartTls: false });
    await refused(server, { level: 'verify', caFile }, 'ERR_SMTP_TLS_UNAVAILABLE');
  });

  it('refuses a self-signed certificate', async () => {
    const server = await serve(selfSigned);
    const err = await refused(server, { level: 'verify', caFile }, 'ERR_SMTP_TLS_UNVERIFIED');
    expect(err.message).toBe("the MTA's certificate does not verify: self-signed certificate");
  });

  it('refuses a certificate from a CA it does not trust (Node store, no CA file)', async () => {
    const server = await serve(good);
    const err = await refused(server, { level: 'verify' }, 'ERR_SMTP_TLS_UNVERIFIED');
    expect(err.message).toBe("the MTA's certificate does not verify: unable to verify the first certificate");
  });

  it('refuses a certificate for another name', async () => {
    const server = await serve(wrongName);
    const err = await refused(server, { level: 'verify', caFile, serverName: 'localhost' }, 'ERR_SMTP_TLS_UNVERIFIED');
    expect(err.message).toMatch(/^the MTA's certificate does not match localhost: /);
  });

  it('refuses an expired certificate', async () => {
    const server = await serve(expired);
    const err = await refused(server, { level: 'verify', caFile }, 'ERR_SMTP_TLS_UNVERIFIED');
    expect(err.message).toBe("the MTA's certificate does not verify: certificate has expired");
  });

  it('checks pins on top of the chain and the name', async () => {
    const matching = await serve(good);
    const conn = await open(matching, { level: 'verify', caFile, pins: [good.fingerprint] });
    expect(conn.tls).toMatchObject({ verified: true, pinMatched: true });

    const other = await serve(good);
    await refused(other, { level: 'verify', caFile, pins: [selfSigned.fingerprint] }, 'ERR_SMTP_TLS_PIN');

    const pinnedButUntrusted = await serve(selfSigned);
    await refused(pinnedButUntrusted, { level: 'verify', caFile, pins: [selfSigned.fingerprint] }, 'ERR_SMTP_TLS_UNVERIFIED');
  });
});

describe('bytes in the clear after the 220 to STARTTLS', () => {
  for (const [what, injected] of [
    ['a whole reply', '250 2.0.0 injected\r\n'],
    ['part of a reply', '250-injected'],
  ] as const) {
    for (const level of ['may', 'encrypt'] as const) {
      it(`are refused (${what}, ${level})`, async () => {
        const server = await serve(good, { injectAfter220: injected });
        const err = await refused(server, { level }, 'ERR_SMTP_TLS_INJECTION');
        expect(err.message).toContain('after its 220 to STARTTLS');
        expect(server.sessions).toHaveLength(1);
        expect(server.sessions[0]?.secured).toBe(false);
      });
    }
  }
});
