/**
 * The bed of three Postfix relays, checked with clients that share nothing
 * with mailsubmit: Python's smtplib and ssl (verification on, against the
 * bed's CA), and openssl s_client. What the daemon's failover, TLS and AUTH
 * tests take for granted is asserted here: each instance delivers to the
 * sink and is told apart there; the certificate chains to the test CA and
 * its fingerprint is the one the bed reports; AUTH is offered only under
 * TLS, by SCRAM-SHA-256, PLAIN and LOGIN, a wrong secret is 535 and no AUTH
 * is refused at RCPT; each instance stops and starts on its own.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childOutput, type ChildOutput } from './child-output.ts';
import { PostfixRelays, RELAY_NAMES, type RelayName } from './postfix-relays.ts';
import { PrivatePostfix } from './private-postfix.ts';
import { pythonSmtp, type PythonSmtpRequest } from './python-smtp-client.ts';
import { RecordingSink } from './recording-sink.ts';
import { TestCa } from './test-ca.ts';

const USER = 'bed-user';
const PASSWORD = 'correct horse battery';

function messageFor(id: string): Pick<PythonSmtpRequest, 'sender' | 'recipients' | 'message'> {
  return { sender: 'sender@example.org', recipients: ['rcpt@example.net'], message: `Message-ID: <${id}@relays.test>\r\nSubject: ${id}\r\n\r\nbody of ${id}\r\n` };
}

async function opensslClient(port: number, caFile: string): Promise<ChildOutput> {
  const args = ['s_client', '-connect', `127.0.0.1:${port}`, '-starttls', 'smtp', '-CAfile', caFile, '-verify_return_error', '-verify_hostname', 'localhost', '-servername', 'localhost'];
  const child = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.end('QUIT\r\n');
  return childOutput(child);
}

/** The SHA-256 fingerprint of the first certificate in a PEM text, as openssl prints it. */
async function fingerprintOf(pem: string): Promise<string> {
  const child = spawn('openssl', ['x509', '-noout', '-fingerprint', '-sha256'], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.end(pem);
  const { stdout } = await childOutput(child);
  return stdout.trim().replace(/^.*=/, '');
}

describe.skipIf(!PrivatePostfix.isAvailable())('three Postfix relays on loopback', () => {
  const sink = new RecordingSink();
  let relays: PostfixRelays;
  let otherCa: TestCa | undefined;

  /** What a well-behaved client of each instance does: TLS verified where offered, AUTH where required. */
  const clientOf = (name: RelayName): PythonSmtpRequest => ({
    host: 'localhost',
    port: relays.instance(name).port,
    ...(name === 'local' ? {} : { starttls: true, cafile: relays.ca.caFile }),
    ...(name === 'auth' ? { user: USER, password: PASSWORD, mechanism: 'PLAIN' as const } : {}),
  });

  const arrivalsOf = (id: string) => sink.messages.filter((m) => m.data.includes(`Message-ID: <${id}@relays.test>`));

  beforeAll(async () => {
    relays = await PostfixRelays.start(sink, { user: USER, password: PASSWORD });
    otherCa = TestCa.create('another test CA');
  }, 60_000);

  afterAll(async () => {
    await relays?.stop();
    otherCa?.remove();
    await sink.close();
  });

  it('delivers a message through each instance, once, and the sink tells which instance', async () => {
    for (const name of RELAY_NAMES) {
      const answer = await pythonSmtp({ ...clientOf(name), ...messageFor(`each-${name}`) });
      expect(answer.error).toBeUndefined();
      expect(answer.data?.[0]).toBe(250);
    }
    for (const name of RELAY_NAMES) {
      const message = await sink.waitForMessage((m) => m.data.includes(`Message-ID: <each-${name}@relays.test>`));
      expect(relays.via(message)).toBe(name);
      // The first header field is this instance's Received, continuation lines (TLS facts) before its `by`.
      expect(message.data.toString('latin1')).toMatch(new RegExp(`^Received: from [^\\r]*(\\r\\n[ \\t][^\\r]*)*?\\r\\n\\tby ${name}\\.relays\\.test \\(Postfix\\)`));
    }
    for (const name of RELAY_NAMES) expect(arrivalsOf(`each-${name}`)).toHaveLength(1);
    // The Received header says whether the hop was under TLS.
    expect(arrivalsOf('each-local')[0]?.data.toString('latin1')).not.toMatch(/using TLS/);
    expect(arrivalsOf('each-starttls')[0]?.data.toString('latin1')).toMatch(/\(using TLSv1\.3 with cipher /);
  });

  it('presents a certificate that verifies against the test CA, for localhost and 127.0.0.1, and not against another CA', async () => {
    for (const host of ['localhost', '127.0.0.1']) {
      const answer = await pythonSmtp({ host, port: relays.starttls.port, starttls: true, cafile: relays.ca.caFile });
      expect(answer.error).toBeUndefined();
      expect(answer.ehlo).toContain('STARTTLS');
      expect(answer.starttls?.[0]).toBe(220);
      expect(answer.peer_verified).toBe(true);
    }
    const untrusted = await pythonSmtp({ port: relays.starttls.port, starttls: true, cafile: otherCa?.caFile ?? '' });
    expect(untrusted.error).toMatch(/CERTIFICATE_VERIFY_FAILED/);
  });

  it('shows openssl s_client a chain that verifies, with the leaf fingerprint the bed reports', async () => {
    const verified = await opensslClient(relays.starttls.port, relays.ca.caFile);
    expect(verified.stdout).toContain('Verify return code: 0 (ok)');
    expect(verified.code).toBe(0);
    expect(await fingerprintOf(verified.stdout)).toBe(relays.certificate.fingerprint);
    expect(relays.certificate.sha256).toBe(relays.certificate.fingerprint.replace(/:/g, '').toLowerCase());

    const refused = await opensslClient(relays.starttls.port, otherCa?.caFile ?? '');
    expect(refused.stdout + refused.stderr).toMatch(/unable to get local issuer certificate/);
    expect(refused.code).not.toBe(0);
  });

  it('offers AUTH only after STARTTLS, by SCRAM-SHA-256, PLAIN and LOGIN', async () => {
    const answer = await pythonSmtp({ port: relays.auth.port, starttls: true, cafile: relays.ca.caFile });
    expect(answer.ehlo).toContain('STARTTLS');
    expect(answer.ehlo?.some((k) => k.startsWith('AUTH'))).toBe(false);
    expect(answer.ehlo_after_tls).toContain('AUTH SCRAM-SHA-256 PLAIN LOGIN');
  });

  for (const mechanism of ['SCRAM-SHA-256', 'PLAIN', 'LOGIN'] as const) {
    it(`answers AUTH ${mechanism} 235 with the right password and 535 with a wrong one`, async () => {
      const base = { port: relays.auth.port, starttls: true, cafile: relays.ca.caFile, user: USER, mechanism };
      const right = await pythonSmtp({ ...base, password: PASSWORD });
      expect(right.auth?.[0]).toBe(235);
      const wrong = await pythonSmtp({ ...base, password: `${PASSWORD}!` });
      expect(wrong.auth?.[0]).toBe(535);
    });
  }

  it('refuses to relay for a client that did not authenticate, at RCPT', async () => {
    const answer = await pythonSmtp({ port: relays.auth.port, starttls: true, cafile: relays.ca.caFile, ...messageFor('no-auth') });
    expect(answer.mail?.[0]).toBe(250);
    expect(answer.rcpt?.[0]?.[0]).toBe(554);
    expect(answer.data).toBeUndefined();
    expect(await relays.auth.queueSize()).toBe(0);
  });

  it('delivers through an instance authenticated by SCRAM-SHA-256', async () => {
    const answer = await pythonSmtp({ ...clientOf('auth'), mechanism: 'SCRAM-SHA-256', ...messageFor('scram') });
    expect(answer.data?.[0]).toBe(250);
    expect(relays.via(await sink.waitForMessage((m) => m.data.includes('Message-ID: <scram@relays.test>')))).toBe('auth');
  });

  it('stops and starts each instance on its own', async () => {
    await relays.starttls.stopMailSystem();
    try {
      const down = await pythonSmtp({ ...clientOf('starttls'), ...messageFor('while-down') });
      expect(down.error).toMatch(/ConnectionRefusedError/);
      for (const name of ['local', 'auth'] as const) {
        const up = await pythonSmtp({ ...clientOf(name), ...messageFor(`beside-${name}`) });
        expect(up.data?.[0]).toBe(250);
      }
    } finally {
      await relays.starttls.startMailSystem();
    }
    const back = await pythonSmtp({ ...clientOf('starttls'), ...messageFor('back') });
    expect(back.data?.[0]).toBe(250);
    expect(relays.via(await sink.waitForMessage((m) => m.data.includes('Message-ID: <back@relays.test>')))).toBe('starttls');
    for (const name of ['local', 'auth'] as const) {
      expect(relays.via(await sink.waitForMessage((m) => m.data.includes(`Message-ID: <beside-${name}@relays.test>`)))).toBe(name);
    }
    expect(arrivalsOf('while-down')).toHaveLength(0);
  });
});
