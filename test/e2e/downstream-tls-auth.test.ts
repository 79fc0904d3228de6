/**
 * TLS and SMTP AUTH to a downstream, against the relay bed's Postfix
 * instances (test/support/postfix-relays.ts) with the real helper and
 * daemon: a certificate that does not verify under tls = "verify" is 75 and
 * nothing is sent; AUTH with the right secret delivers through the `auth`
 * instance by each mechanism asked for, a wrong secret is 75 (never 5xx)
 * and never logged, a secret file others can read stops the daemon from
 * starting; a relay's permanent refusal is the answer at once, with no
 * failover to the next downstream.
 */
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { statusOf } from '@mailsubmit/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ctl } from '../../packages/admin-cli/test/run-ctl.ts';
import { childOutput } from '../support/child-output.ts';
import { DAEMON_BUNDLE, MailsubmitUnderTest } from '../support/mailsubmit-under-test.ts';
import { PostfixRelays, type RelayName } from '../support/postfix-relays.ts';
import { PrivatePostfix } from '../support/private-postfix.ts';
import { RecordingSink, type RecordedMessage } from '../support/recording-sink.ts';
import { TestCa } from '../support/test-ca.ts';
import { ensureUser, removeAll, type TestUser } from '../support/test-accounts.ts';

const HOOK_TIMEOUT_MS = 90_000;
const WRONG_PASSWORD = 'not-the-relay-secret-7731';

function input(tag: string): string {
  return `sender: <${tag}@example.org>\nrecipient: <ops@example.net>\n\nMessage-ID: <${tag}@tls-auth.test>\nSubject: ${tag}\n\nbody of ${tag}\n`;
}

function tagOf(message: RecordedMessage): string | undefined {
  return /^Subject: ([\w-]+)\r$/m.exec(message.data.toString('latin1'))?.[1];
}

/** Postfix's smtpd summary of each session after `since`: `disconnect from ... ehlo=1 starttls=1 mail=1 ...`. */
function sessionSummaries(relay: PrivatePostfix, since: number): string[] {
  return relay.log().slice(since).split('\n').filter((line) => / disconnect from /.test(line));
}

describe.skipIf(!PrivatePostfix.isAvailable())('TLS and AUTH to a downstream', () => {
  const sink = new RecordingSink();
  const secrets = mkdtempSync('/tmp/mailsubmit-auth-secret-');
  let relays: PostfixRelays;
  let otherCa: TestCa;
  let user: TestUser;

  /** A [[downstream]] table for one of the bed's instances; TLS verified against the bed's CA unless `lines` say otherwise. */
  function table(name: RelayName, lines: readonly string[] = [], priority = 1): string {
    const tls = lines.some((l) => l.startsWith('tls ')) ? [] : ['tls = "verify"', `tls_ca_file = "${relays.ca.caFile}"`];
    return ['[[downstream]]', `name = "${name}"`, `target = "127.0.0.1:${relays.instance(name).port}"`, `priority = ${priority}`, ...tls, ...lines].join('\n');
  }

  /** The secret file the daemon (root here) reads: its own, 0600, in a directory only root can write. */
  function secretFile(name: string, password: string, mode = 0o600): string {
    const path = join(secrets, name);
    writeFileSync(path, `${password}\n`, { mode });
    chmodSync(path, mode);
    return path;
  }

  function authLines(password: string, extra: readonly string[] = []): string[] {
    return [`auth_username = "${relays.user}"`, `auth_secret_file = "${secretFile(`secret-${password.length}-${extra.length}`, password)}"`, ...extra];
  }

  /** A daemon with these downstreams for the length of `body`. */
  async function withDaemon<T>(downstreams: string, body: (ms: MailsubmitUnderTest) => Promise<T>): Promise<T> {
    const ms = await MailsubmitUnderTest.start({ downstreamPort: 0, downstreams });
    try {
      ms.setAuthorizations([user.name]);
      return await body(ms);
    } finally {
      await ms.stop();
    }
  }

  beforeAll(async () => {
    relays = await PostfixRelays.start(sink);
    otherCa = TestCa.create('a CA the relays do not use');
    user = ensureUser('msttlsauth');
  }, HOOK_TIMEOUT_MS);

  afterAll(async () => {
    await relays?.stop();
    otherCa?.remove();
    await sink.close();
    rmSync(secrets, { recursive: true, force: true });
    removeAll();
  }, HOOK_TIMEOUT_MS);

  interface TlsCase {
    readonly what: string;
    readonly lines: () => string[];
    /** The TLS facts logged, when the message is delivered; the reason's pattern when it gets 75. */
    readonly outcome: { readonly delivered: Record<string, unknown> } | { readonly refused: () => RegExp };
  }

  const TLS_CASES: readonly TlsCase[] = [
    {
      what: 'a certificate that does not chain to tls_ca_file, under "verify"',
      lines: () => ['tls = "verify"', `tls_ca_file = "${otherCa.caFile}"`],
      outcome: { refused: () => /the MTA's certificate does not verify: unable to verify the first certificate/ },
    },
    {
      what: 'tls_server_name the certificate does not carry, under "verify"',
      lines: () => ['tls = "verify"', `tls_ca_file = "${relays.ca.caFile}"`, 'tls_server_name = "relay.example.net"'],
      outcome: { refused: () => /the MTA's certificate does not match relay\.example\.net: / },
    },
    {
      what: 'tls_server_name the certificate carries, under "verify"',
      lines: () => ['tls = "verify"', `tls_ca_file = "${relays.ca.caFile}"`, 'tls_server_name = "localhost"'],
      outcome: { delivered: { verified: true } },
    },
    {
      what: 'tls_fingerprints naming another certificate, under "encrypt"',
      lines: () => ['tls = "encrypt"', `tls_fingerprints = ["${otherCa.issue('pinned-elsewhere', ['localhost']).fingerprint}"]`],
      outcome: { refused: () => new RegExp(`the MTA's certificate \\(SHA-256 ${relays.certificate.sha256}\\) is none of the pinned ones`) },
    },
    {
      what: 'tls_fingerprints naming the relay\'s certificate, under "encrypt" (no CA: delivered, not verified)',
      lines: () => ['tls = "encrypt"', `tls_fingerprints = ["${relays.certificate.fingerprint}"]`],
      outcome: { delivered: { verified: false } },
    },
    {
      what: 'tls_min_version = "TLSv1.3"',
      lines: () => ['tls = "verify"', `tls_ca_file = "${relays.ca.caFile}"`, 'tls_min_version = "TLSv1.3"'],
      outcome: { delivered: { verified: true, protocol: 'TLSv1.3' } },
    },
  ];

  for (const [i, c] of TLS_CASES.entries()) {
    it(`${c.what}: ${'delivered' in c.outcome ? '0, with its TLS facts logged' : '75 naming why, and no MAIL FROM at the relay'}`, async () => {
      const tag = `tls-case-${i}`;
      const since = relays.starttls.log().length;
      await withDaemon(table('starttls', c.lines()), async (ms) => {
        const { result, logged } = await ms.submitAndLog(user, input(tag));
        if ('delivered' in c.outcome) {
          expect(result.code).toBe(0);
          expect(logged.downstream_tls).toMatchObject(c.outcome.delivered);
        } else {
          expect(result.code).toBe(75);
          expect(logged).toMatchObject({ status: 'mta-protocol', exit: 75 });
          expect(logged.reason).toMatch(c.outcome.refused());
          expect(logged.queue_id).toBeUndefined();
        }
      });
      if ('delivered' in c.outcome) {
        expect(relays.via(await sink.waitForMessage((m) => tagOf(m) === tag))).toBe('starttls');
        return;
      }
      await relays.starttls.waitForLog(/ disconnect from /, 10_000, since);
      for (const session of sessionSummaries(relays.starttls, since)) expect(session).not.toMatch(/ mail=/);
      await relays.starttls.flushAndWait();
      expect(sink.messages.filter((m) => tagOf(m) === tag)).toEqual([]);
    }, 60_000);
  }

  it('AUTH with the right secret over verified TLS: 0, delivered through the auth relay; the secret is in no log line', async () => {
    const since = relays.auth.log().length;
    await withDaemon(table('auth', authLines(relays.password)), async (ms) => {
      const { result, logged } = await ms.submitAndLog(user, input('auth-right'));
      expect(result.code).toBe(0);
      expect(logged).toMatchObject({ status: 'ok', downstream_tls: { verified: true } });
      expect(JSON.stringify(ms.logLines)).not.toContain(relays.password);
    });
    expect(relays.via(await sink.waitForMessage((m) => tagOf(m) === 'auth-right'))).toBe('auth');
    // The default order asks for SCRAM-SHA-256 first, and the relay offers it.
    expect(await relays.auth.waitForLog(/ client=localhost\[127\.0\.0\.1\], sasl_method=/, 10_000, since)).toMatch(new RegExp(`sasl_method=SCRAM-SHA-256, sasl_username=${relays.user}\\b`));
  }, 60_000);

  it('AUTH with a wrong secret: 75, not 5xx; the reason names the refused credentials and not the secret; nothing delivered', async () => {
    const since = relays.auth.log().length;
    await withDaemon(table('auth', authLines(WRONG_PASSWORD)), async (ms) => {
      const { result, logged } = await ms.submitAndLog(user, input('auth-wrong'));
      expect(result.code).toBe(75);
      expect(result.stderr).not.toContain(WRONG_PASSWORD);
      expect(logged).toMatchObject({ status: 'mta-protocol', exit: 75 });
      expect(logged.reason).toMatch(new RegExp(`the MTA refused the credentials for ${relays.user}: 535 5\\.7\\.8 `));
      expect(JSON.stringify(ms.logLines)).not.toContain(WRONG_PASSWORD);
      // mailsubmitctl status names the downstream's last error the same way, and it is unhealthy until a probe logs in.
      const status = ctl(['-c', ms.configPath, 'status', '--json']);
      expect(status.stdout).not.toContain(WRONG_PASSWORD);
      const [auth] = (JSON.parse(status.stdout) as { downstreams: { name: string; healthy: boolean; last_error: { text: string } | null }[] }).downstreams;
      expect(auth).toMatchObject({ name: 'auth', healthy: false, last_error: { text: expect.stringMatching(/refused the credentials/) } });
    });
    await relays.auth.waitForLog(/authentication failed/, 10_000, since);
    for (const session of sessionSummaries(relays.auth, since)) expect(session).not.toMatch(/ mail=/);
    await relays.auth.flushAndWait();
    expect(sink.messages.filter((m) => tagOf(m) === 'auth-wrong')).toEqual([]);
  }, 60_000);

  it('AUTH refused by the first downstream: the submission moves on to the next, which delivers it', async () => {
    await withDaemon([table('auth', authLines(WRONG_PASSWORD), 1), table('starttls', [], 2)].join('\n'), async (ms) => {
      const { result, logged } = await ms.submitAndLog(user, input('auth-moves-on'));
      expect(result.code).toBe(0);
      expect(logged).toMatchObject({ status: 'ok', downstream: 'starttls', downstream_tls: { verified: true } });
      const movedOn = await ms.waitForLog((l) => l.msg === 'submission moves on to the next downstream');
      expect(movedOn).toMatchObject({ downstream: 'auth', next: 'starttls' });
      expect(movedOn.reason).toMatch(/refused the credentials/);
      expect(JSON.stringify(ms.logLines)).not.toContain(WRONG_PASSWORD);
    });
    expect(relays.via(await sink.waitForMessage((m) => tagOf(m) === 'auth-moves-on'))).toBe('starttls');
  }, 60_000);

  for (const mechanism of ['PLAIN', 'SCRAM-SHA-256'] as const) {
    it(`auth_mechanisms = ["${mechanism}"]: the relay logs that mechanism, and the message arrives`, async () => {
      const tag = `auth-${mechanism.toLowerCase()}`;
      const since = relays.auth.log().length;
      await withDaemon(table('auth', authLines(relays.password, [`auth_mechanisms = ["${mechanism}"]`])), async (ms) => {
        const { result } = await ms.submitAndLog(user, input(tag));
        expect(result.code).toBe(0);
      });
      expect(relays.via(await sink.waitForMessage((m) => tagOf(m) === tag))).toBe('auth');
      expect(await relays.auth.waitForLog(/ client=localhost\[127\.0\.0\.1\], sasl_method=/, 10_000, since)).toContain(`sasl_method=${mechanism},`);
    }, 60_000);
  }

  const UNSAFE_SECRETS = [
    { what: 'group and others can read it (0644)', make: (path: string) => chmodSync(path, 0o644), fix: (path: string) => new RegExp(`group or others may read it \\(mode 644\\); run: chmod 600 ${path}$`, 'm') },
    { what: 'another user owns it', make: (path: string) => chownSync(path, user.uid, user.gid), fix: (path: string) => new RegExp(`belongs to uid ${user.uid}; run: chown .* ${path}$`, 'm') },
  ];

  for (const unsafe of UNSAFE_SECRETS) {
    it(`an auth_secret_file ${unsafe.what}: the daemon does not start (78), naming the fix`, async () => {
      const ms = await MailsubmitUnderTest.start({ downstreamPort: 0, downstreams: table('auth', authLines(relays.password)) });
      const path = /auth_secret_file = "([^"]*)"/.exec(readFileSync(ms.configPath, 'utf8'))?.[1] ?? '';
      try {
        await ms.stopDaemon();
        unsafe.make(path);
        const daemon = spawn(process.execPath, [DAEMON_BUNDLE, '-c', ms.configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
        const { code, stdout, stderr } = await childOutput(daemon);
        expect(code).toBe(78);
        expect(stdout + stderr).toMatch(unsafe.fix(path));
        expect(stdout + stderr).not.toContain(relays.password);
      } finally {
        await ms.stop();
        rmSync(path, { force: true });
      }
    }, 60_000);
  }

  it('a relay that refuses permanently (5xx at RCPT): the status table\'s code at once, no failover to the next downstream', async () => {
    const localSince = relays.local.log().length;
    const authSince = relays.auth.log().length;
    // auth first, without AUTH: the relay refuses to relay (554 5.7.1), as it would for anyone who did not log in.
    await withDaemon([table('auth', [], 1), table('local', ['tls = "none"'], 2)].join('\n'), async (ms) => {
      const { result, logged } = await ms.submitAndLog(user, input('refused-by-relay'));
      expect(logged.status).toBe('message-refused');
      expect(result.code).toBe(statusOf('message-refused').exitCode);
      expect(result.code).toBe(69);
      expect(result.stderr).toContain('554 5.7.1');
      // Moving on to local would have been logged, and local's smtpd would have seen a session.
      expect(ms.logLines.filter((l) => l.msg === 'submission moves on to the next downstream')).toEqual([]);
    });
    await relays.auth.waitForLog(/reject: RCPT from localhost\[127\.0\.0\.1\]: 554 5\.7\.1 /, 10_000, authSince);
    await Promise.all([relays.auth.flushAndWait(), relays.local.flushAndWait()]);
    expect(sessionSummaries(relays.local, localSince)).toEqual([]);
    expect(sink.messages.filter((m) => tagOf(m) === 'refused-by-relay')).toEqual([]);
  }, 60_000);
});
