/**
 * The qmail-queue front door end to end: the set-gid helper started as
 * `mailsubmit-qmail-queue` (a symlink beside it, so argv[0] picks the mode
 * and the binary keeps its set-gid bits), the message on fd 0 and the
 * envelope on fd 1, both pipes as qmail's own callers pass them. Exit codes
 * are qmail-queue(8)'s.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeRequest, MODE_QMAIL_QUEUE } from '@mailsubmit/shared';
import { childOutput } from '../support/child-output.ts';
import { directRequest } from '../support/direct-client.ts';
import { runQmailQueueMessageFirst } from '../support/qmail-queue-caller.ts';
import { tearDown } from '../support/tear-down.ts';
import { startMailPath } from '../support/mail-path.ts';
import { MailsubmitUnderTest, type SubmitResult } from '../support/mailsubmit-under-test.ts';
import { PrivatePostfix } from '../support/private-postfix.ts';
import { qmailQueueRequest } from '../support/request-frames.ts';
import { RecordingSink, unstuff, withoutFirstHeaderField } from '../support/recording-sink.ts';
import { ensureGroup, ensureUser, type TestUser } from '../support/test-accounts.ts';

/**
 * Both fds are pipe read ends: the message pipe comes in as the brace
 * group's stdin and is kept on fd 3, the envelope pipe becomes the helper's
 * fd 1, and fd 3 its fd 0.
 */
const PLUMBING = 'cat "$2" | { cat "$3" | "$1" 1<&0 0<&3 3<&-; } 3<&0';


describe.skipIf(!PrivatePostfix.isAvailable())('the qmail-queue front door', () => {
  const sink = new RecordingSink();
  let postfix: PrivatePostfix;
  let ms: MailsubmitUnderTest;
  let qmailQueue: string;
  let files: string;
  let withClient: TestUser;
  let withoutClient: TestUser;
  let serial = 0;

  beforeAll(async () => {
    ({ postfix, ms } = await startMailPath(sink, { postfix: { listenerOptions: ['smtpd_client_port_logging=yes'] } }));
    qmailQueue = join(dirname(ms.helperPath), 'mailsubmit-qmail-queue');
    symlinkSync(ms.helperPath, qmailQueue);
    files = mkdtempSync(join(ms.dir, 'qq-'));
    chmodSync(files, 0o755);
    withClient = ensureUser('mstqqclient');
    withoutClient = ensureUser('mstqqplain');
    ms.setAuthorizations(['mstqqclient client', 'mstqqplain']);
  }, 30_000);

  afterAll(() => tearDown(ms, postfix, sink));

  /** Runs mailsubmit-qmail-queue as `user` with both inputs as pipes and `env` as its environment. */
  function qmailSubmit(
    user: TestUser,
    message: Buffer | string,
    envelope: Buffer | string,
    env: Record<string, string> = {},
    order: 'together' | 'message-first' = 'together',
  ): Promise<SubmitResult> {
    serial += 1;
    const messageFile = join(files, `message-${serial}`);
    const envelopeFile = join(files, `envelope-${serial}`);
    writeFileSync(messageFile, message, { mode: 0o644 });
    writeFileSync(envelopeFile, envelope, { mode: 0o644 });
    if (order === 'message-first') return runQmailQueueMessageFirst({ helper: qmailQueue, user, messageFile, envelopeFile, env });
    const child = spawn('/bin/sh', ['-c', PLUMBING, 'sh', qmailQueue, messageFile, envelopeFile], {
      uid: user.uid,
      gid: user.gid,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: '/usr/bin:/bin', ...env },
    });
    return childOutput(child);
  }

  it('delivers: exit 0, the envelope as given, the message byte for byte', async () => {
    const body = 'From: qq@example.net\nTo: one@example.org\nSubject: qmail-queue front door\nMessage-ID: <qq-1@example.net>\nDate: Tue, 24 Nov 2026 12:00:00 +0000\n\nline one\n.leading dot\n\ttab line\n';
    const result = await qmailSubmit(withoutClient, body, 'Fqq-sender@example.net\0Tone@example.org\0Ttwo@example.org\0\0');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const line = await ms.waitForSubmission((l) => l.sender === 'qq-sender@example.net');
    expect(line).toMatchObject({ status: 'ok', exit: 0, nrcpt: 2 });
    const message = await sink.waitForMessage((m) => m.mailFrom.startsWith('MAIL FROM:<qq-sender@example.net>'));
    expect(message.rcptTo[0]).toMatch(/^RCPT TO:<one@example\.org>/);
    expect(message.rcptTo[1]).toMatch(/^RCPT TO:<two@example\.org>/);
    expect(withoutFirstHeaderField(unstuff(message.data)).toString('latin1')).toBe(body.replace(/\n/g, '\r\n'));
  });

  it('takes a message far larger than a pipe buffer written in full before the envelope, as qmail.c does', async () => {
    const lines: string[] = [];
    // About 1.1 MB: far past the 64 KiB a pipe holds.
    for (let i = 0; i < 16384; i++) lines.push(`line ${i} ${'x'.repeat(60)}`);
    const body = `From: large@example.net\nSubject: large\nDate: Tue, 24 Nov 2026 12:00:00 +0000\nMessage-ID: <qq-large@example.net>\n\n${lines.join('\n')}\n`;
    const result = await qmailSubmit(withoutClient, body, 'Flarge@example.net\0Tlarge@example.org\0\0', {}, 'message-first');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const message = await sink.waitForMessage((m) => m.mailFrom.startsWith('MAIL FROM:<large@example.net>'));
    expect(withoutFirstHeaderField(unstuff(message.data)).toString('latin1')).toBe(body.replace(/\n/g, '\r\n'));
  });

  it('takes an empty F as the null sender', async () => {
    const result = await qmailSubmit(withoutClient, 'Subject: bounce\n\nnull sender\n', 'F\0Tnull-sender@example.org\0\0');
    expect(result.code).toBe(0);
    const message = await sink.waitForMessage((m) => m.rcptTo.some((rcpt) => rcpt.startsWith('RCPT TO:<null-sender@example.org>')));
    expect(message.mailFrom).toMatch(/^MAIL FROM:<>/);
  });

  it('refuses a malformed envelope with 91, reading no message', async () => {
    const result = await qmailSubmit(withoutClient, 'Subject: x\n\nx\n', 'Fbad-envelope@example.net\0Tx@example.org\0');
    expect(result.code).toBe(91);
    expect(result.stderr).toMatch(/malformed envelope.*final NUL/);
    const line = await ms.waitForSubmission((l) => l.status === 'envelope-syntax');
    expect(line.exit).toBe(91);
  });

  it('refuses a recipient with a CR LF in it with a permanent code', async () => {
    const result = await qmailSubmit(withoutClient, 'Subject: x\n\nx\n', 'Fa@example.net\0Tx@example.org\r\nRCPT TO:<y@example.org>\0\0');
    expect(result.code).toBe(31);
    expect(result.stderr).toMatch(/malformed recipient/);
  });

  it('refuses a user who is not on the list with 81', async () => {
    const stranger = ensureUser('mstqqstranger');
    const result = await qmailSubmit(stranger, 'Subject: x\n\nx\n', 'Fa@example.net\0Tx@example.org\0\0');
    expect(result.stderr).toMatch(/not authorized/);
    expect(result.code).toBe(81);
    // The helper checks the list itself and never reaches the daemon.
    expect(ms.submissions().some((l) => l.uid === stranger.uid)).toBe(false);
  });

  it('refuses TCPREMOTEIP without the client capability with 81', async () => {
    const result = await qmailSubmit(withoutClient, 'Subject: x\n\nx\n', 'Fno-client-cap@example.net\0Tx@example.org\0\0', { TCPREMOTEIP: '192.0.2.25' });
    expect(result.code).toBe(81);
    expect(result.stderr).toMatch(/client_address.*"client" capability/);
    // Refused from the request's client facts alone: neither the envelope nor the message was read.
    const line = await ms.waitForSubmission((l) => l.status === 'attribute-not-permitted' && l.uid === withoutClient.uid);
    expect(line.exit).toBe(81);
    expect(line.sender).toBeUndefined();
  });

  it('forwards TCPREMOTEIP, TCPREMOTEHOST and TCPREMOTEPORT with the client capability', async () => {
    const result = await qmailSubmit(withClient, 'Subject: from tcpserver\n\nhello\n', 'Fwith-client@example.net\0Tx@example.org\0\0', {
      TCPREMOTEIP: '192.0.2.25',
      TCPREMOTEHOST: 'mx.example.net',
      TCPREMOTEPORT: '41234',
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const line = await ms.waitForSubmission((l) => l.status === 'ok' && l.sender === 'with-client@example.net');
    const queueId = String(line.queue_id);
    await postfix.waitForLog(new RegExp(`${queueId}: client=localhost\\[127\\.0\\.0\\.1\\]:\\d+, orig_client=mx\\.example\\.net\\[192\\.0\\.2\\.25\\]:41234$`, 'm'));
  });

  it('refuses a malformed TCPREMOTEIP with 91', async () => {
    const result = await qmailSubmit(withClient, 'Subject: x\n\nx\n', 'Fbad-ip@example.net\0Tx@example.org\0\0', { TCPREMOTEIP: '192.0.2.999' });
    expect(result.code).toBe(91);
    expect(result.stderr).toMatch(/client_address/);
  });

  it('answers a caller the daemon refuses before reading its request in qmail codes too', async () => {
    // Past the helper (as if its copy of the list were stale): the daemon's own refusal.
    const outsider = ensureUser('mstqqoutsider');
    const frame = qmailQueueRequest();
    const fds = [{ open: '/dev/null', flags: 'read' }, { open: '/dev/null', flags: 'read' }] as const;
    const refused = await directRequest({ socketPath: ms.socketPath, uid: outsider.uid, gid: ensureGroup(ms.group), frame, fds });
    expect(refused.reply).toMatchObject({ status: 81, outcome: 'not-authorized' });
    const line = await ms.waitForSubmission((l) => l.status === 'not-authorized' && l.uid === outsider.uid);
    expect(line.exit).toBe(81);
  });

  it('refuses a qmail-queue request without the envelope fd with 81 (usage)', async () => {
    const frame = encodeRequest({ mode: MODE_QMAIL_QUEUE, argv: ['qmail-queue'] });
    const result = await directRequest({ socketPath: ms.socketPath, uid: withoutClient.uid, gid: ensureGroup(ms.group), frame, fds: [{ open: '/dev/null', flags: 'read' }] });
    expect(result.reply).toMatchObject({ status: 81, outcome: 'usage' });
    expect(result.reply?.text).toMatch(/two file descriptors/);
  });
});
