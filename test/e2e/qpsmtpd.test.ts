/**
 * qpsmtpd in front of mailsubmit, end to end: swaks talks SMTP to a private
 * qpsmtpd-forkserver, which queues through mailsubmit into a private
 * Postfix that relays to the recording sink. Two ways:
 *
 * (a) qpsmtpd's stock queue/qmail-queue plugin pointed at
 *     mailsubmit-qmail-queue: the client address and reverse name arrive
 *     (qpsmtpd leaves TCPREMOTEIP/TCPREMOTEHOST in the environment), and
 *     every refusal reaches the client as 451, as that plugin answers any
 *     non-zero exit;
 * (b) contrib/qpsmtpd/queue_mailsubmit, which writes the native envelope
 *     block with the session's facts (HELO, port, AUTH, TLS) and answers
 *     with the status table's code: 5xx for a permanent MTA refusal, 4xx
 *     for a temporary one.
 *
 * XFORWARD is logging-only in Postfix: its own Received header names the
 * re-injection hop, the original client shows in its log as orig_client=,
 * and qpsmtpd's Received header, which names the real client, arrives intact.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OUTCOMES, statusOf } from '@mailsubmit/shared';
import { freePort } from '../support/free-port.ts';
import { startMailPath } from '../support/mail-path.ts';
import { MailsubmitUnderTest } from '../support/mailsubmit-under-test.ts';
import { PrivatePostfix } from '../support/private-postfix.ts';
import { PrivateQpsmtpd, QPSMTPD_HOSTNAME } from '../support/private-qpsmtpd.ts';
import { RecordingSink, unstuff, type RecordedMessage } from '../support/recording-sink.ts';
import { tearDown } from '../support/tear-down.ts';
import { ensureUser, type TestUser } from '../support/test-accounts.ts';

const CONTRIB = join(import.meta.dirname, '..', '..', 'contrib', 'qpsmtpd');
const HOOK_TIMEOUT_MS = 90_000;
const HELO = 'client.example.net';
const AUTH_USER = 'alice@example.net';
const AUTH_PASSWORD = 'not-a-secret';
// CI must fail loudly when a program is missing, not skip.
const AVAILABLE = PrivatePostfix.isAvailable() && PrivateQpsmtpd.isAvailable() && existsSync('/usr/bin/swaks');

/** Postfix's inline: table with values that contain spaces. */
function inlineTable(entries: Readonly<Record<string, string>>): string {
  return `inline:{ ${Object.entries(entries)
    .map(([key, value]) => `{ ${key} = ${value} }`)
    .join(', ')} }`;
}

const REFUSING_LISTENER = [
  'smtpd_client_port_logging=yes',
  `{ smtpd_recipient_restrictions = check_recipient_access ${inlineTable({
    'refused@example.org': '550 5.1.1 no such user here',
    'busy@example.org': '450 4.2.1 mailbox busy, try later',
  })}, permit_mynetworks, reject }`,
];

interface SwaksResult {
  readonly code: number | null;
  readonly output: string;
  /** The server's reply to the end of DATA, without swaks's arrow. */
  readonly dataReply: string;
}

/** Sends `message` through swaks; `extra` adds swaks options (TLS, AUTH, a local port). */
function swaks(port: number, from: string, to: readonly string[], message: string, extra: readonly string[] = []): Promise<SwaksResult> {
  const args = ['--server', '127.0.0.1', '--port', String(port), '--ehlo', HELO, '--from', from, '--to', to.join(','), '--data', '-', '--timeout', '120', ...extra];
  return new Promise((resolve, reject) => {
    const child = spawn('swaks', args, { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: '/usr/bin:/bin' } });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('latin1')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('latin1')));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output, dataReply: dataReply(output) }));
    child.stdin.end(message);
  });
}

/**
 * swaks from a chosen local port, so the test knows the client port. A
 * port the kernel just called free may still be held by a connection in
 * TIME_WAIT, which swaks (no SO_REUSEADDR) cannot bind: then another.
 */
async function swaksFromKnownPort(port: number, from: string, to: readonly string[], message: string): Promise<SwaksResult & { localPort: number }> {
  for (let attempt = 1; ; attempt++) {
    const localPort = await freePort();
    const result = await swaks(port, from, to, message, ['--local-port', String(localPort)]);
    if (!/bind: Address already in use/.test(result.output) || attempt === 5) return { ...result, localPort };
  }
}

/** The reply line after swaks's ` -> .` (` ~> .` under TLS). */
function dataReply(output: string): string {
  const lines = output.split('\n').map((line) => line.replace(/\r$/, ''));
  const dot = lines.findIndex((line) => /^ [-~]> \.$/.test(line));
  const reply = dot < 0 ? undefined : lines.slice(dot + 1).find((line) => line.startsWith('<'));
  return reply === undefined ? '' : reply.replace(/^<[-~*]{1,2}\s+/, '');
}

/** A message as swaks sends it with `--data -`: swaks itself ends the last line before the dot. */
function message(id: string, subject: string): string {
  return [
    'From: Sender <sender@example.net>',
    'To: <rcpt@example.org>',
    `Subject: ${subject}`,
    `Message-ID: <${id}@example.net>`,
    'Date: Tue, 24 Nov 2026 12:00:00 +0000',
    '',
    `body of ${id}`,
    'second line',
  ].join('\r\n');
}

/** qpsmtpd's Received header for the loopback client: whatever the reverse lookup gave, then HELO and address. */
function qpsmtpdReceived(protocol: string): RegExp {
  return new RegExp(
    `^Received: from \\S+ \\(HELO ${HELO.replace(/\./g, '\\.')}\\) \\(127\\.0\\.0\\.1\\)\\r\\n by ${QPSMTPD_HOSTNAME.replace(/\./g, '\\.')} \\(qpsmtpd/[0-9.]+\\) with ${protocol}; `,
    'm',
  );
}

function deliveredText(delivered: RecordedMessage): string {
  return unstuff(delivered.data).toString('latin1');
}

describe.skipIf(!AVAILABLE && !process.env.CI)('qpsmtpd in front of mailsubmit', () => {
  const sink = new RecordingSink();
  let postfix: PrivatePostfix;
  let ms: MailsubmitUnderTest;
  let user: TestUser;
  let stock: PrivateQpsmtpd | undefined;
  let contrib: PrivateQpsmtpd | undefined;

  beforeAll(async () => {
    ({ postfix, ms } = await startMailPath(sink, { postfix: { listenerOptions: REFUSING_LISTENER } }));
    const qmailQueue = join(dirname(ms.helperPath), 'mailsubmit-qmail-queue');
    symlinkSync(ms.helperPath, qmailQueue);
    user = ensureUser(`mstqp${process.pid}`);
    ms.setAuthorizations([`${user.name} client sasl tls`]);
    stock = await PrivateQpsmtpd.start({ user, plugins: ['rcpt_ok', `queue/qmail-queue ${qmailQueue}`] });
    contrib = await PrivateQpsmtpd.start({
      user,
      tls: true,
      pluginDirs: [CONTRIB],
      plugins: ['auth/auth_flat_file', 'rcpt_ok', `queue_mailsubmit ${ms.helperPath}`],
      config: { flat_auth_pw: `${AUTH_USER}:${AUTH_PASSWORD}\n` },
    });
  }, HOOK_TIMEOUT_MS);

  afterAll(async () => {
    await stock?.stop();
    await contrib?.stop();
    await tearDown(ms, postfix, sink);
  }, HOOK_TIMEOUT_MS);

  /** Nothing from `sender` reaches the sink, and Postfix's queue is empty. */
  async function expectNothingDelivered(sender: string): Promise<void> {
    await postfix.flushAndWait();
    expect(sink.messages.filter((m) => m.mailFrom.startsWith(`MAIL FROM:<${sender}>`))).toHaveLength(0);
    expect(await postfix.queueSize()).toBe(0);
  }

  describe('(a) the stock queue/qmail-queue plugin and mailsubmit-qmail-queue', () => {
    it('delivers, with the client address and reverse name qpsmtpd leaves in the environment', async () => {
      const sender = 'stock-ok@example.net';
      const sent = message('stock-ok', 'through queue/qmail-queue');
      const result = await swaks(stock!.port, sender, ['rcpt@example.org'], sent);
      expect(result.dataReply).toMatch(/^250 Queued! /);
      expect(result.code).toBe(0);

      const line = await ms.waitForSubmission((l) => l.sender === sender);
      expect(line).toMatchObject({ status: 'ok', exit: 0, nrcpt: 1 });
      // Only what qpsmtpd-forkserver exports: no TCPREMOTEPORT, no HELO, no AUTH.
      const client = line.client as Record<string, unknown>;
      expect(client.clientAddress).toBe('127.0.0.1');
      expect(client.clientName).toEqual(expect.any(String));
      expect(client).not.toHaveProperty('clientPort');
      expect(client).not.toHaveProperty('heloName');
      expect(line).not.toHaveProperty('sasl');

      const queueId = String(line.queue_id);
      await postfix.waitForLog(new RegExp(`${queueId}: client=localhost\\[127\\.0\\.0\\.1\\]:\\d+, orig_client=\\S+\\[127\\.0\\.0\\.1\\]:unknown$`, 'm'));
      const delivered = await sink.waitForMessage((m) => m.mailFrom.startsWith(`MAIL FROM:<${sender}>`));
      expect(delivered.rcptTo).toHaveLength(1);
      expect(delivered.rcptTo[0]).toMatch(/^RCPT TO:<rcpt@example\.org>/);
      const text = deliveredText(delivered);
      expect(text).toMatch(qpsmtpdReceived('ESMTP'));
      expect(text.endsWith(`\r\n${sent}\r\n`)).toBe(true);
    });

    it('answers a permanent refusal by Postfix with 451: the stock plugin declines on any non-zero exit', async () => {
      const sender = 'stock-refused@example.net';
      const result = await swaks(stock!.port, sender, ['refused@example.org'], message('stock-refused', 'refused'));
      // qmail-queue code 31 is permanent, but the plugin only says "Unable to queue message (31)" and declines.
      expect(result.dataReply).toBe('451 Unable to queue message (31)');
      const line = await ms.waitForSubmission((l) => l.sender === sender);
      expect(line).toMatchObject({ status: 'recipient-refused', exit: 31 });
      // The helper's line goes to qpsmtpd's stderr, not to the client.
      await stock!.waitForLog(/mailsubmit-qmail-queue: the MTA refused a recipient permanently: .*550 5\.1\.1.*no such user here/);
      await expectNothingDelivered(sender);
    });

    it('answers a temporary refusal by Postfix with 451', async () => {
      const sender = 'stock-busy@example.net';
      const result = await swaks(stock!.port, sender, ['busy@example.org'], message('stock-busy', 'busy'));
      expect(result.dataReply).toBe('451 Unable to queue message (71)');
      const line = await ms.waitForSubmission((l) => l.sender === sender);
      expect(line).toMatchObject({ status: 'mta-tempfail', exit: 71 });
      await expectNothingDelivered(sender);
    });

    it('needs the client capability: without it every message is refused for now (qmail-queue 81, SMTP 451)', async () => {
      const sender = 'stock-no-client@example.net';
      ms.setAuthorizations([user.name]);
      try {
        const result = await swaks(stock!.port, sender, ['rcpt@example.org'], message('stock-no-client', 'no client capability'));
        expect(result.dataReply).toBe('451 Unable to queue message (81)');
        // Refused from the request, before the envelope on fd 1 is read: the line names the caller, not a sender.
        const line = await ms.waitForSubmission((l) => l.uid === user.uid && l.status === 'attribute-not-permitted');
        expect(line).toMatchObject({ status: 'attribute-not-permitted', exit: 81 });
        expect(line).not.toHaveProperty('sender');
      } finally {
        ms.setAuthorizations([`${user.name} client sasl tls`]);
      }
      // Refused before the daemon spoke to Postfix: nothing to deliver.
      expect(sink.messages.some((m) => m.mailFrom.startsWith(`MAIL FROM:<${sender}>`))).toBe(false);
    });
  });

  describe('(b) contrib/qpsmtpd/queue_mailsubmit and the native envelope block', () => {
    it('delivers with the client address, port, HELO and protocol, and answers with the queue id', async () => {
      const sender = 'contrib-ok@example.net';
      const sent = message('contrib-ok', 'through queue_mailsubmit');
      const result = await swaksFromKnownPort(contrib!.port, sender, ['rcpt@example.org', 'second@example.org'], sent);
      const { localPort } = result;
      expect(result.code).toBe(0);

      const line = await ms.waitForSubmission((l) => l.sender === sender);
      expect(line).toMatchObject({ status: 'ok', exit: 0, nrcpt: 2 });
      const queueId = String(line.queue_id);
      expect(result.dataReply).toBe(`250 2.0.0 queued as ${queueId}`);
      expect(line.client).toMatchObject({ protocolName: 'ESMTP', heloName: HELO, clientAddress: '127.0.0.1', clientPort: localPort });
      expect(line).not.toHaveProperty('sasl');
      expect(line).not.toHaveProperty('tls');

      await postfix.waitForLog(new RegExp(`${queueId}: client=localhost\\[127\\.0\\.0\\.1\\]:\\d+, orig_client=\\S+\\[127\\.0\\.0\\.1\\]:${localPort}$`, 'm'));
      const delivered = await sink.waitForMessage((m) => m.mailFrom.startsWith(`MAIL FROM:<${sender}>`));
      expect(delivered.rcptTo.map((r) => r.replace(/^(RCPT TO:<[^>]*>).*$/, '$1'))).toEqual(['RCPT TO:<rcpt@example.org>', 'RCPT TO:<second@example.org>']);
      const text = deliveredText(delivered);
      expect(text).toMatch(qpsmtpdReceived('ESMTP'));
      expect(text.endsWith(`\r\n${sent}\r\n`)).toBe(true);
    });

    it('passes the AUTH user and mechanism and the TLS facts of a STARTTLS session', async () => {
      const sender = 'contrib-auth@example.net';
      const sent = message('contrib-auth', 'with AUTH over TLS');
      const result = await swaks(contrib!.port, sender, ['rcpt@example.org'], sent, [
        '--tls', '--auth', 'PLAIN', '--auth-user', AUTH_USER, '--auth-password', AUTH_PASSWORD,
      ]);
      expect(result.output).toMatch(/235 PLAIN authentication successful/);
      expect(result.dataReply).toMatch(/^250 2\.0\.0 queued as [0-9A-Za-z]+$/);
      expect(result.code).toBe(0);

      const line = await ms.waitForSubmission((l) => l.sender === sender);
      expect(line).toMatchObject({ status: 'ok', client: { protocolName: 'ESMTPSA', heloName: HELO }, sasl: { method: 'PLAIN', username: AUTH_USER } });
      const tls = line.tls as Record<string, unknown>;
      expect(tls.encryptionProtocol).toMatch(/^TLSv1\.[23]$/);
      expect(tls.encryptionCipher).toMatch(/^[A-Z0-9_-]+$/);
      expect(tls.encryptionKeysize).toBeGreaterThanOrEqual(128);
      // swaks presents no client certificate.
      expect(tls).not.toHaveProperty('ccertSubject');

      const delivered = await sink.waitForMessage((m) => m.mailFrom.startsWith(`MAIL FROM:<${sender}>`));
      const text = deliveredText(delivered);
      expect(text).toMatch(/^Received: from \S+ \(HELO client\.example\.net\) \(127\.0\.0\.1\)\r\n by qpsmtpd\.test\.localdomain \(qpsmtpd\/[0-9.]+\) with \(\S+ encrypted\) ESMTPSA; /m);
      expect(text).toContain(`auth=pass (plain) smtp.auth=${AUTH_USER}`);
      expect(text.endsWith(`\r\n${sent}\r\n`)).toBe(true);
    });

    it('answers 451 4.7.0 when the user may not assert the AUTH facts (no sasl capability)', async () => {
      const sender = 'contrib-no-sasl@example.net';
      ms.setAuthorizations([`${user.name} client tls`]);
      try {
        const result = await swaks(contrib!.port, sender, ['rcpt@example.org'], message('contrib-no-sasl', 'no sasl capability'), [
          '--tls', '--auth', 'PLAIN', '--auth-user', AUTH_USER, '--auth-password', AUTH_PASSWORD,
        ]);
        expect(result.dataReply).toMatch(/^451 4\.7\.0 not permitted to assert this attribute: .*sasl_method/);
        const line = await ms.waitForSubmission((l) => l.sender === sender);
        expect(line).toMatchObject({ status: 'attribute-not-permitted', exit: 77 });
      } finally {
        ms.setAuthorizations([`${user.name} client sasl tls`]);
      }
      // Refused before the daemon spoke to Postfix: nothing to deliver.
      expect(sink.messages.some((m) => m.mailFrom.startsWith(`MAIL FROM:<${sender}>`))).toBe(false);
    });

    it('streams a message far larger than a pipe buffer, with 8-bit text, unchanged', async () => {
      const sender = 'contrib-large@example.net';
      const lines: string[] = [];
      // About 1.1 MB: the plugin writes while the daemon reads, far past the 64 KiB a pipe holds.
      for (let i = 0; i < 16384; i++) lines.push(`line ${i} Grüße ${'x'.repeat(54)}`);
      const sent = [message('contrib-large', 'large, 8-bit'), ...lines].join('\r\n');
      const result = await swaks(contrib!.port, sender, ['rcpt@example.org'], sent);
      expect(result.dataReply).toMatch(/^250 2\.0\.0 queued as /);
      const line = await ms.waitForSubmission((l) => l.sender === sender);
      expect(line).toMatchObject({ status: 'ok', eight_bit: true });
      const delivered = await sink.waitForMessage((m) => m.mailFrom.startsWith(`MAIL FROM:<${sender}>`));
      expect(delivered.mailFrom).toMatch(/ BODY=8BITMIME/);
      expect(unstuff(delivered.data).toString('utf8').endsWith(`\r\n${sent}\r\n`)).toBe(true);
    });

    it('answers 501 5.5.4 when a session fact does not fit the contract (an 8-bit HELO argument): the daemon decides', async () => {
      const sender = 'contrib-bad-helo@example.net';
      const result = await swaks(contrib!.port, sender, ['rcpt@example.org'], message('contrib-bad-helo', 'bad HELO'), ['--ehlo', 'h\u00e9lo.example.net']);
      expect(result.dataReply).toMatch(/^501 5\.5\.4 malformed envelope: .*helo_name/);
      const line = await ms.waitForSubmission((l) => l.status === 'envelope-syntax' && String(l.reason).includes('helo_name'));
      expect(line.exit).toBe(65);
      await expectNothingDelivered(sender);
    });

    it('takes the null sender', async () => {
      const sent = message('contrib-null', 'a bounce');
      const result = await swaks(contrib!.port, '<>', ['null-sender@example.org'], sent);
      expect(result.dataReply).toMatch(/^250 2\.0\.0 queued as /);
      const delivered = await sink.waitForMessage((m) => m.rcptTo.some((r) => r.startsWith('RCPT TO:<null-sender@example.org>')));
      expect(delivered.mailFrom).toMatch(/^MAIL FROM:<>/);
    });

    it('answers a permanent recipient refusal by Postfix with 550 5.1.1 and its words, delivering nothing', async () => {
      const sender = 'contrib-refused@example.net';
      const result = await swaks(contrib!.port, sender, ['refused@example.org'], message('contrib-refused', 'refused'));
      expect(result.dataReply).toMatch(/^550 5\.1\.1 the MTA refused a recipient permanently: .*550 5\.1\.1 .*no such user here/);
      expect(result.code).not.toBe(0);
      const line = await ms.waitForSubmission((l) => l.sender === sender);
      expect(line).toMatchObject({ status: 'recipient-refused', exit: 67 });
      await expectNothingDelivered(sender);
    });

    it('answers a temporary refusal by Postfix with 451 4.0.0 and its words, delivering nothing', async () => {
      const sender = 'contrib-busy@example.net';
      const result = await swaks(contrib!.port, sender, ['busy@example.org'], message('contrib-busy', 'busy'));
      expect(result.dataReply).toMatch(/^451 4\.0\.0 the MTA refused the message for now: .*450 4\.2\.1 .*mailbox busy, try later/);
      const line = await ms.waitForSubmission((l) => l.sender === sender);
      expect(line).toMatchObject({ status: 'mta-tempfail', exit: 75 });
      await expectNothingDelivered(sender);
    });

    it('refuses all when one recipient of two is refused: 550, and the accepted one gets nothing', async () => {
      const sender = 'contrib-partial@example.net';
      const result = await swaks(contrib!.port, sender, ['rcpt@example.org', 'refused@example.org'], message('contrib-partial', 'partial'));
      expect(result.dataReply).toMatch(/^550 5\.1\.1 /);
      await expectNothingDelivered(sender);
    });
  });
});

describe('contrib/qpsmtpd/queue_mailsubmit', () => {
  it('answers each outcome with the code and enhanced code of the status table', () => {
    const source = readFileSync(join(CONTRIB, 'queue_mailsubmit'), 'utf8');
    const table = new Map<string, [number, string]>();
    for (const match of source.matchAll(/^\s+'([^']+)'\s+=> \[(\d{3}), '(\d\.\d\.\d)'\],$/gm)) {
      table.set(match[1] ?? '', [Number(match[2]), match[3] ?? '']);
    }
    expect(table.size).toBe(OUTCOMES.length);
    for (const outcome of OUTCOMES) {
      const row = statusOf(outcome);
      expect(table.get(row.text), outcome).toEqual([row.smtpCode, row.enhanced]);
    }
  });
});
