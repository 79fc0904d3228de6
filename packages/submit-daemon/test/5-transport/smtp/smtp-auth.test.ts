/**
 * SMTP AUTH in the client, against the fake server's side of PLAIN, LOGIN
 * and SCRAM-SHA-256 (fake-sasl-server.ts, where SCRAM is computed as a
 * server does, so the client's proof is checked). Every failure must be
 * temporary for the caller (75) and must not carry the secret.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { statusOf } from '@mailsubmit/shared';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SaslScramSha256Client } from '../../../src/5-transport/smtp/sasl-scram-sha-256.ts';
import type { SmtpAuth } from '../../../src/5-transport/smtp/smtp-auth.ts';
import { SmtpConnection, type SmtpConnectionOptions } from '../../../src/5-transport/smtp/smtp-connection.ts';
import { SmtpError, summarizeCommand, type SmtpErrorCode } from '../../../src/5-transport/smtp/smtp-error.ts';
import { rejection } from '../../support/rejection.ts';
import { AUTH_FAILED, loginServer, plainServer, scramServer, type ScramServerLog } from './fake-sasl-server.ts';
import { FakeSmtpServer, type FakeServerOptions, type FakeSaslStep } from './fake-smtp-server.ts';

const USER = 'relay-user';
const SECRET = 'correct horse battery staple';
const SECRET_FORMS = [SECRET, Buffer.from(SECRET).toString('base64'), Buffer.from(`\u0000${USER}\u0000${SECRET}`).toString('base64')];
const ALL = ['AUTH SCRAM-SHA-256 PLAIN LOGIN'];

let certDir = '';
let key = '';
let cert = '';

beforeAll(() => {
  certDir = mkdtempSync(join(tmpdir(), 'smtp-auth-test-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'k.pem', '-out', 'c.pem', '-subj', '/CN=localhost', '-days', '2'], {
    cwd: certDir,
    stdio: 'ignore',
  });
  key = readFileSync(join(certDir, 'k.pem'), 'utf8');
  cert = readFileSync(join(certDir, 'c.pem'), 'utf8');
});

afterAll(() => rmSync(certDir, { recursive: true, force: true }));

const servers: FakeSmtpServer[] = [];
const connections: SmtpConnection[] = [];
afterEach(async () => {
  for (const conn of connections.splice(0)) conn.destroy();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

type Mechanisms = Partial<Record<'PLAIN' | 'LOGIN' | 'SCRAM-SHA-256', () => FakeSaslStep>>;

const HONEST: Mechanisms = {
  PLAIN: () => plainServer(USER, SECRET),
  LOGIN: () => loginServer(USER, SECRET),
  'SCRAM-SHA-256': () => scramServer(USER, { password: SECRET }),
};

/** A server that announces `extensions` (under TLS when `tls`) and runs the given mechanisms. */
async function serve(mechanisms: Mechanisms, extensions: readonly string[], options: FakeServerOptions & { tls?: boolean } = {}): Promise<FakeSmtpServer> {
  const { tls = false, ...rest } = options;
  const server = await FakeSmtpServer.start({
    ...(tls ? { extensions: ['SIZE 1000'], starttls: { key, cert, extensionsAfterTls: ['SIZE 1000', ...extensions] } } : { extensions: ['SIZE 1000', ...extensions] }),
    auth: (mechanism) => mechanisms[mechanism as keyof Mechanisms]?.() ?? null,
    ...rest,
  });
  servers.push(server);
  return server;
}

async function open(server: FakeSmtpServer, auth: Partial<SmtpAuth>, options: Partial<SmtpConnectionOptions> = {}): Promise<SmtpConnection> {
  const conn = await SmtpConnection.open({
    target: { host: '127.0.0.1', port: server.port },
    heloName: 'client.test',
    auth: { username: USER, secret: SECRET, allowWithoutTls: true, ...auth },
    ...options,
  });
  connections.push(conn);
  return conn;
}

/** Everything an error shows a person or a log: none of it may carry the secret. */
function shownText(err: SmtpError): string {
  return [err.message, err.stack ?? '', String(err), err.command ?? '', JSON.stringify(err.reply ?? null), JSON.stringify(err)].join('\n');
}

/** The failure's code, a temporary outcome (75), and no trace of the secret. */
async function authFailure(promise: Promise<unknown>, code: SmtpErrorCode): Promise<SmtpError> {
  const err = await rejection(promise, SmtpError);
  expect(err.code).toBe(code);
  expect(err.outcome).toBe('mta-protocol');
  expect(statusOf(err.outcome).exitCode).toBe(75);
  const shown = shownText(err);
  for (const form of SECRET_FORMS) expect(shown).not.toContain(form);
  return err;
}

function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

describe('PLAIN and LOGIN', () => {
  it('PLAIN after STARTTLS: the second EHLO announces AUTH, and the message is exactly NUL user NUL secret', async () => {
    const server = await serve(HONEST, ['AUTH PLAIN LOGIN'], { tls: true });
    const conn = await open(server, { allowWithoutTls: false }, { tls: { level: 'encrypt' } });
    expect(conn.authenticated).toEqual({ mechanism: 'PLAIN', username: USER });
    const session = await server.session();
    expect(session.commands).toEqual(['EHLO client.test', 'STARTTLS', 'EHLO client.test', `AUTH PLAIN ${b64(`\u0000${USER}\u0000${SECRET}`)}`]);
    expect(session.secured).toBe(true);
  });

  it('PLAIN too long for the AUTH line follows the empty 334 instead', async () => {
    const secret = 'x'.repeat(600);
    const server = await serve({ PLAIN: () => plainServer(USER, secret) }, ['AUTH PLAIN']);
    const conn = await open(server, { secret });
    expect(conn.authenticated?.mechanism).toBe('PLAIN');
    const session = await server.session();
    expect(session.commands.slice(1)).toEqual(['AUTH PLAIN', b64(`\u0000${USER}\u0000${secret}`)]);
  });

  it('a secret too long for any response line is refused before it is sent', async () => {
    const secret = 'x'.repeat(3000);
    const server = await serve({ LOGIN: () => loginServer(USER, secret) }, ['AUTH LOGIN']);
    const err = await authFailure(open(server, { secret }), 'ERR_SMTP_AUTH_SECRET_UNUSABLE');
    expect(err.message).toMatch(/over the 2048-octet line limit/);
    expect(shownText(err)).not.toContain(secret);
    const session = await server.session();
    await session.closed;
    expect(session.commands.slice(1)).toEqual(['AUTH LOGIN', b64(USER)]);
  });

  it('LOGIN answers Username: and Password: with the username and the secret', async () => {
    const server = await serve(HONEST, ['AUTH LOGIN']);
    const conn = await open(server, {});
    expect(conn.authenticated).toEqual({ mechanism: 'LOGIN', username: USER });
    const session = await server.session();
    expect(session.commands.slice(1)).toEqual(['AUTH LOGIN', b64(USER), b64(SECRET)]);
  });

  it('LOGIN gives nothing to a challenge that is not the prompt it expects', async () => {
    const server = await serve({ LOGIN: () => loginServer(USER, SECRET, ['Password:', 'Username:']) }, ['AUTH LOGIN']);
    const err = await authFailure(open(server, {}), 'ERR_SMTP_AUTH_BAD_CHALLENGE');
    expect(err.message).toMatch(/LOGIN challenge is not a username prompt/);
    const session = await server.session();
    await session.closed;
    expect(session.commands.slice(1)).toEqual(['AUTH LOGIN']);
  });
});

describe('SCRAM-SHA-256', () => {
  it('matches the example exchange of RFC 7677 section 3', async () => {
    const client = new SaslScramSha256Client('user', 'pencil', 'rOprNGfwEbeRWgbNEkqO');
    expect(client.initialResponse().toString()).toBe('n,,n=user,r=rOprNGfwEbeRWgbNEkqO');
    const final = await client.respond(Buffer.from('r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096'));
    expect(final.toString()).toBe('c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=');
    expect(() => client.finish()).toThrow(/without proving/);
    expect((await client.respond(Buffer.from('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4='))).length).toBe(0);
    expect(() => client.finish()).not.toThrow();
  });

  it('is chosen first when offered; the server checks the proof and the client the server signature', async () => {
    const log: ScramServerLog = { clientFirst: null, proofVerified: false };
    const server = await serve({ ...HONEST, 'SCRAM-SHA-256': () => scramServer(USER, { password: SECRET }, log) }, ['AUTH PLAIN LOGIN SCRAM-SHA-256']);
    const conn = await open(server, {});
    expect(conn.authenticated).toEqual({ mechanism: 'SCRAM-SHA-256', username: USER });
    expect(log.proofVerified).toBe(true);
    // The exchange left no reply outstanding: the connection can carry mail.
    expect(conn.usable).toBe(true);
    expect((await conn.command('NOOP', 'rset')).code).toBe(502);
    expect(log.clientFirst).toMatch(new RegExp(`^n,,n=${USER},r=[\\x21-\\x2b\\x2d-\\x7e]{20,}$`));
    const session = await server.session();
    // The secret itself never crosses: only the proof.
    const received = Buffer.concat(session.received).toString('latin1');
    for (const form of SECRET_FORMS) expect(received).not.toContain(form);
    expect(session.commands.slice(-2)).toEqual(['', 'NOOP']);
  });

  it('escapes = and , in the username (RFC 5802 section 5.1)', async () => {
    const username = 'a=b,c';
    const log: ScramServerLog = { clientFirst: null, proofVerified: false };
    const server = await serve({ 'SCRAM-SHA-256': () => scramServer(username, { password: SECRET }, log) }, ['AUTH SCRAM-SHA-256']);
    const conn = await open(server, { username });
    expect(conn.authenticated?.username).toBe(username);
    expect(log.clientFirst).toMatch(/^n,,n=a=3Db=2Cc,r=/);
  });

  it('prepares the secret with SASLprep: a no-break space is a space, a soft hyphen nothing', async () => {
    const server = await serve({ 'SCRAM-SHA-256': () => scramServer(USER, { password: 'pen cil' }) }, ['AUTH SCRAM-SHA-256']);
    const conn = await open(server, { secret: 'pen\u00a0ci\u00adl' });
    expect(conn.authenticated?.mechanism).toBe('SCRAM-SHA-256');
  });

  it('refuses a server signature that does not verify', async () => {
    const server = await serve({ 'SCRAM-SHA-256': () => scramServer(USER, { password: SECRET, signature: 'wrong' }) }, ['AUTH SCRAM-SHA-256']);
    const err = await authFailure(open(server, {}), 'ERR_SMTP_AUTH_SERVER_UNVERIFIED');
    expect(err.message).toMatch(/server signature does not verify.*not the MTA it claims to be/);
  });

  it('refuses a 235 that comes without the server signature', async () => {
    const server = await serve({ 'SCRAM-SHA-256': () => scramServer(USER, { password: SECRET, signature: 'none' }) }, ['AUTH SCRAM-SHA-256']);
    const err = await authFailure(open(server, {}), 'ERR_SMTP_AUTH_SERVER_UNVERIFIED');
    expect(err.message).toMatch(/without proving that it knows the secret/);
  });

  const malformed: [string, (honest: string) => string, RegExp][] = [
    ['a nonce that does not extend the client nonce', (honest) => honest.replace(/^r=/, 'r=X'), /nonce does not extend/],
    ['no salt', (honest) => honest.replace(/,s=[^,]*/, ''), /lacks its nonce, salt or iteration count/],
    ['a salt that is not base64', (honest) => honest.replace(/,s=[^,]*/, ',s=*'), /salt is not base64/],
    ['an iteration count over the limit', (honest) => honest.replace(/,i=\d+/, ',i=2000000000'), /iteration count is not a number from 1 to/],
    ['a mandatory extension', (honest) => `m=ext,${honest}`, /SCRAM extension/],
    ['no attribute list at all', () => 'hello', /not a list of attributes/],
  ];
  for (const [what, serverFirst, message] of malformed) {
    it(`refuses a server-first message with ${what}, and sends no proof`, async () => {
      const log: ScramServerLog = { clientFirst: null, proofVerified: false };
      const server = await serve({ 'SCRAM-SHA-256': () => scramServer(USER, { password: SECRET, serverFirst }, log) }, ['AUTH SCRAM-SHA-256']);
      const err = await authFailure(open(server, {}), 'ERR_SMTP_AUTH_BAD_CHALLENGE');
      expect(err.message).toMatch(message);
      const session = await server.session();
      await session.closed;
      expect(session.commands.slice(1).map((line) => line.split(' ').slice(0, 2).join(' '))).toEqual(['AUTH SCRAM-SHA-256']);
      expect(log.proofVerified).toBe(false);
    });
  }

  it('refuses a challenge that is not base64', async () => {
    const server = await serve({ 'SCRAM-SHA-256': () => () => '334 not*base64' }, ['AUTH SCRAM-SHA-256']);
    const err = await authFailure(open(server, {}), 'ERR_SMTP_AUTH_BAD_CHALLENGE');
    expect(err.message).toBe('SCRAM-SHA-256 as relay-user: the MTA\'s challenge is not base64');
  });

  it('refuses a secret that SASLprep forbids, before any proof is made', async () => {
    const secret = 'bell\u0007secret';
    const server = await serve({ 'SCRAM-SHA-256': () => scramServer(USER, { password: secret }) }, ['AUTH SCRAM-SHA-256']);
    const err = await authFailure(open(server, { secret }), 'ERR_SMTP_AUTH_SECRET_UNUSABLE');
    expect(shownText(err)).not.toContain(secret);
  });
});

describe('which mechanism, and when not to authenticate', () => {
  it('takes the first of the allowed mechanisms, in the administrator\'s order, that the server announces', async () => {
    const server = await serve(HONEST, ALL);
    const conn = await open(server, { mechanisms: ['LOGIN', 'PLAIN'] });
    expect(conn.authenticated?.mechanism).toBe('LOGIN');
  });

  it('reads the pre-standard AUTH= announcement too', async () => {
    const server = await serve(HONEST, ['AUTH=PLAIN']);
    const conn = await open(server, {});
    expect(conn.authenticated?.mechanism).toBe('PLAIN');
  });

  it('refuses when the server offers none of the allowed mechanisms, naming both lists', async () => {
    const server = await serve(HONEST, ['AUTH CRAM-MD5 PLAIN']);
    const err = await authFailure(open(server, { mechanisms: ['SCRAM-SHA-256', 'LOGIN'] }), 'ERR_SMTP_AUTH_UNAVAILABLE');
    expect(err.message).toBe('the MTA offers AUTH CRAM-MD5 PLAIN, none of the allowed SCRAM-SHA-256 LOGIN');
  });

  it('refuses when the server offers no AUTH at all', async () => {
    const server = await serve(HONEST, []);
    const err = await authFailure(open(server, {}), 'ERR_SMTP_AUTH_UNAVAILABLE');
    expect(err.message).toBe(`the MTA offers no AUTH, and ${USER} is to log in`);
  });

  it('reads AUTH from the EHLO after STARTTLS only (RFC 3207: what was said in the clear is forgotten)', async () => {
    const server = await serve(HONEST, [], { tls: true, extensions: ['SIZE 1000', 'AUTH PLAIN'] });
    await authFailure(open(server, { allowWithoutTls: false }, { tls: { level: 'encrypt' } }), 'ERR_SMTP_AUTH_UNAVAILABLE');
  });

  for (const [what, tls] of [
    ['no TLS policy', undefined],
    ['"may" with a server that offers no STARTTLS', { level: 'may' as const }],
  ] as const) {
    it(`without TLS (${what}) and without allowWithoutTls, sends nothing of the secret`, async () => {
      const server = await serve(HONEST, ALL);
      const err = await authFailure(open(server, { allowWithoutTls: false }, tls === undefined ? {} : { tls }), 'ERR_SMTP_AUTH_NEEDS_TLS');
      expect(err.message).toMatch(/TLS is not active.*nothing of the secret was sent/);
      const session = await server.session();
      await session.closed;
      expect(session.commands).toEqual(['EHLO client.test']);
    });
  }

  it('a connection without the auth option says no AUTH and reports no login', async () => {
    const server = await serve(HONEST, ALL);
    const conn = await SmtpConnection.open({ target: { host: '127.0.0.1', port: server.port } });
    connections.push(conn);
    expect(conn.authenticated).toBeNull();
    expect((await server.session()).commands.some((line) => line.startsWith('AUTH'))).toBe(false);
  });
});

describe('refusals are temporary and never show the secret', () => {
  const answers = ['535 5.7.8 Error: authentication failed: authentication failure', '534 5.7.9 Authentication mechanism is too weak', '454 4.7.0 Temporary authentication failure', '550 5.7.1 No'];
  for (const mechanism of ['PLAIN', 'LOGIN', 'SCRAM-SHA-256'] as const) {
    for (const answer of answers) {
      it(`${mechanism}: "${answer.slice(0, 3)}" is ERR_SMTP_AUTH_REFUSED, exit 75`, async () => {
        const server = await serve(HONEST, [`AUTH ${mechanism}`], {
          onCommand: (line) => (line.startsWith('AUTH') ? answer : undefined),
        });
        const err = await authFailure(open(server, {}), 'ERR_SMTP_AUTH_REFUSED');
        expect(err.message).toBe(`the MTA refused the credentials for ${USER}: ${answer}`);
        expect(err.command).toBe(`AUTH ${mechanism}`);
      });
    }

    it(`${mechanism}: a wrong secret, checked by the server, is refused with its 535`, async () => {
      const server = await serve(
        { PLAIN: () => plainServer(USER, 'other'), LOGIN: () => loginServer(USER, 'other'), 'SCRAM-SHA-256': () => scramServer(USER, { password: 'other' }) },
        [`AUTH ${mechanism}`],
      );
      const err = await authFailure(open(server, {}), 'ERR_SMTP_AUTH_REFUSED');
      expect(err.message).toBe(`the MTA refused the credentials for ${USER}: ${AUTH_FAILED}`);
    });
  }

  it('a server that echoes the secret in its refusal has it redacted', async () => {
    const echo = (response: string | undefined): string => `535 5.7.8 bad: ${response} ${Buffer.from(response ?? '', 'base64').toString('latin1').replace(/\0/g, ' ')}`;
    const server = await serve({ PLAIN: () => echo }, ['AUTH PLAIN']);
    const err = await authFailure(open(server, {}), 'ERR_SMTP_AUTH_REFUSED');
    expect(err.message).toContain('[secret]');
    expect(err.reply?.lines.join(' ')).toContain('[secret]');
  });

  it('a timeout while the secret is on the wire names the step, not the line', async () => {
    const hangsAtPassword = (): FakeSaslStep => {
      const honest = loginServer(USER, SECRET);
      return (response) => (response === b64(SECRET) ? null : honest(response));
    };
    const server = await serve({ LOGIN: hangsAtPassword }, ['AUTH LOGIN']);
    const err = await rejection(open(server, {}, { timeouts: { ehlo: 300 } }), SmtpError);
    expect(err.code).toBe('ERR_SMTP_TIMEOUT');
    expect(statusOf(err.outcome).exitCode).toBe(75);
    expect(err.message).toBe('no reply to AUTH within 300 ms');
    expect(err.command).toBe('AUTH LOGIN response');
    for (const form of SECRET_FORMS) expect(shownText(err)).not.toContain(form);
  });

  it('summarizeCommand shows an AUTH line as its verb alone', () => {
    expect(summarizeCommand(`AUTH PLAIN ${SECRET_FORMS[2]}`)).toBe('AUTH');
  });
});
