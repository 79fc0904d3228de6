/**
 * The local queue against a real Postfix: a message the MTA cannot take now
 * waits in mailsubmit's queue (exit 0, the log line says which commitment),
 * and is delivered once when Postfix is back; who is queued follows the
 * front door and the list's queue capability; a message refused later, and
 * one that outlives its lifetime, go back to the sender as one delivery
 * status notice each, which independent parsers read.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childOutput } from '../support/child-output.ts';
import { parseNotice } from '../support/delivery-status-notices.ts';
import { runQmailQueueMessageFirst } from '../support/qmail-queue-caller.ts';
import { startMailPath } from '../support/mail-path.ts';
import { MailsubmitUnderTest, type SubmitResult } from '../support/mailsubmit-under-test.ts';
import { PrivatePostfix } from '../support/private-postfix.ts';
import { RecordingSink, type RecordedMessage } from '../support/recording-sink.ts';
import { tearDown } from '../support/tear-down.ts';
import { ensureUser, type TestUser } from '../support/test-accounts.ts';
import { matchingLine, until } from '../support/until.ts';

const HOOK_TIMEOUT_MS = 60_000;
const MAILSUBMITCTL = join(import.meta.dirname, '..', '..', 'node_modules', '.bin', 'mailsubmitctl');

/** The built mailsubmitctl, as root, on an instance's configuration. */
function ctl(instance: MailsubmitUnderTest, args: readonly string[]): { code: number | null; stdout: string; stderr: string } {
  const run = spawnSync(MAILSUBMITCTL, ['-c', instance.configPath, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

describe.skipIf(!PrivatePostfix.isAvailable() && !process.env.CI)('the local queue', () => {
  const sink = new RecordingSink();
  const maps = mkdtempSync('/tmp/mailsubmit-queue-maps-');
  let postfix: PrivatePostfix;
  let ms: MailsubmitUnderTest;
  let user: TestUser;
  let filter: TestUser;

  beforeAll(async () => {
    // Postfix refuses this one recipient at RCPT, as an MTA refuses an unknown user.
    // Postfix refuses one recipient at RCPT, as an MTA refuses an unknown user, and puts another off, as a greylist does.
    writeFileSync(join(maps, 'refused'), 'refused@example.net 550 5.1.1 <refused@example.net>: Recipient address rejected: no such user\nlater@example.net 450 4.2.0 <later@example.net>: Recipient address rejected: try again later\n');
    ({ postfix, ms } = await startMailPath(sink, {
      postfix: { listenerOptions: [`smtpd_recipient_restrictions=check_recipient_access,texthash:${join(maps, 'refused')},permit_mynetworks,reject`] },
      mailsubmit: { queue: 'probe_interval = 1\nminimal_backoff_time = 1\nmaximal_backoff_time = 2' },
    }));
    symlinkSync(ms.helperPath, join(dirname(ms.helperPath), 'mailsubmit-sendmail'));
    user = ensureUser('mstqueue');
    filter = ensureUser('mstqfilter');
    ms.setAuthorizations(['mstqueue', 'mstqfilter client']);
  }, HOOK_TIMEOUT_MS);

  afterAll(async () => {
    await tearDown(ms, postfix, sink);
    rmSync(maps, { recursive: true, force: true });
  }, HOOK_TIMEOUT_MS);

  function sendmail(instance: MailsubmitUnderTest, who: TestUser, args: readonly string[], input: string | Buffer): Promise<SubmitResult> {
    const child = spawn(join(dirname(instance.helperPath), 'mailsubmit-sendmail'), args, { uid: who.uid, gid: who.gid, stdio: ['pipe', 'pipe', 'pipe'], env: {} });
    const output = childOutput(child).finally(() => child.stdin.destroy());
    child.stdin.end(input);
    return output;
  }

  /** The messages with this subject that arrived, notices (which return it) aside. */
  function arrivals(subject: string): RecordedMessage[] {
    return sink.messages.filter((m) => !isNotice(m) && m.data.includes(`Subject: ${subject}\r\n`));
  }

  function notices(about: string): RecordedMessage[] {
    return sink.messages.filter((m) => isNotice(m) && m.data.includes(about));
  }

  function queueFiles(instance: MailsubmitUnderTest): string[] {
    return readdirSync(join(instance.dir, 'queue', 'ready'));
  }

  /** Postfix down while `during` runs, then up again. */
  async function withPostfixDown<T>(during: () => Promise<T>): Promise<T> {
    await postfix.stopMailSystem();
    try {
      return await during();
    } finally {
      await postfix.startMailSystem();
    }
  }

  it('Postfix stopped: mailsubmit-sendmail exits 0 from the local queue; back up, the message arrives once with its envelope', async () => {
    const message = 'From: cron@example.org\nTo: ops@example.org\nSubject: lq-basic\n\nbackup done\n..dot line\n';
    const result = await withPostfixDown(async () => {
      const submitted = await sendmail(ms, user, ['-i', '-f', 'cron@example.org', '-N', 'failure,delay', 'ops@example.org'], message);
      const line = await matchingLine(() => ms.logLines.map((l) => JSON.stringify(l)).join('\n'), /"status":"queued-locally"/, 10_000, 'no queued-locally line');
      const logged = JSON.parse(line) as Record<string, unknown>;
      expect(logged.commitment).toBe('local-queue');
      expect(logged.mta_reply).toMatch(/connect/);
      // The caller's terminal stays quiet (no -v); the log keeps the line it would have printed.
      expect(logged.reason).toMatch(/^held in the local queue until the MTA can take it: [0-9A-Z]+-[0-9A-Z]+: cannot connect/);
      expect(logged.exit).toBe(0);
      expect(queueFiles(ms)).toEqual([logged.local_queue_id]);
      return submitted;
    });
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const [delivered] = await sink.waitForMessage((m) => m.data.includes('Subject: lq-basic\r\n')).then((m) => [m]);
    expect(delivered?.mailFrom).toMatch(/^MAIL FROM:<cron@example\.org>/);
    expect(delivered?.rcptTo.map((r) => r.split(' ')[1])).toEqual(['TO:<ops@example.org>']);
    expect(delivered?.data.toString()).toContain('\r\n..dot line\r\n');
    await until(() => queueFiles(ms).length === 0, 'the local queue to empty', 10_000);
    await postfix.flushAndWait();
    expect(arrivals('lq-basic')).toHaveLength(1);
    const deliveredLine = ms.logLines.find((l) => l.msg === 'local queue: delivered');
    expect(deliveredLine?.mta_queue_id).toMatch(/^[0-9A-Za-z]+$/);
  }, 60_000);

  it('a sendmail -bs session while Postfix is down: 250 for the message, naming the local queue; delivered when it is back', async () => {
    const session = ['EHLO client.example.org', 'MAIL FROM:<bs@example.org>', 'RCPT TO:<ops@example.org>', 'DATA', 'Subject: lq-bs', '', 'over SMTP on stdin', '.', 'QUIT', ''].join('\r\n');
    const result = await withPostfixDown(() => sendmail(ms, user, ['-bs'], session));
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^250 2\.0\.0 Ok: queued as [0-9A-Z]+-[0-9A-Z]+ in mailsubmit's local queue\r$/m);
    await sink.waitForMessage((m) => !isNotice(m) && m.data.includes('Subject: lq-bs\r\n'));
  }, 60_000);

  it('the native door answers 75 while the MTA is down, unless the list grants the queue capability', async () => {
    const input = (subject: string) => `sender: <filter@example.org>\nrecipient: <ops@example.org>\n\nSubject: ${subject}\n\nscanned\n`;
    const [refused, granted] = await withPostfixDown(async () => {
      const first = await ms.submit(filter, input('lq-native-75'));
      ms.setAuthorizations(['mstqueue', 'mstqfilter client queue']);
      const second = await ms.submit(filter, input('lq-native-queued'));
      return [first, second];
    });
    ms.setAuthorizations(['mstqueue', 'mstqfilter client']);
    expect(refused.code).toBe(75);
    expect(refused.stderr).toContain('cannot connect to the MTA');
    expect(granted).toMatchObject({ code: 0, stderr: '' });
    await sink.waitForMessage((m) => m.data.includes('Subject: lq-native-queued\r\n'));
    await postfix.flushAndWait();
    expect(arrivals('lq-native-75')).toHaveLength(0);
    expect(arrivals('lq-native-queued')).toHaveLength(1);
  }, 60_000);

  it('the qmail-queue door the same way: qmail\'s temporary code while the MTA is down, 0 with the queue capability', async () => {
    const qmailQueue = join(dirname(ms.helperPath), 'mailsubmit-qmail-queue');
    if (!existsSync(qmailQueue)) symlinkSync(ms.helperPath, qmailQueue);
    const files = mkdtempSync('/tmp/mailsubmit-qmail-files-');
    try {
      const call = (subject: string) => {
        writeFileSync(join(files, `${subject}.message`), `From: filter@example.org\nSubject: ${subject}\n\nscanned\n`);
        writeFileSync(join(files, `${subject}.envelope`), 'Ffilter@example.org\0Tops@example.org\0\0');
        return runQmailQueueMessageFirst({ helper: qmailQueue, user: filter, messageFile: join(files, `${subject}.message`), envelopeFile: join(files, `${subject}.envelope`) });
      };
      const [refused, granted] = await withPostfixDown(async () => {
        const first = await call('lq-qmail-73');
        ms.setAuthorizations(['mstqueue', 'mstqfilter client queue']);
        const second = await call('lq-qmail-queued');
        return [first, second];
      });
      ms.setAuthorizations(['mstqueue', 'mstqfilter client']);
      // qmail-queue(8): 73 is "unable to connect", temporary; 0 is "queued".
      expect(refused.code).toBe(73);
      expect(granted.code).toBe(0);
      await sink.waitForMessage((m) => !isNotice(m) && m.data.includes('Subject: lq-qmail-queued\r\n'));
      await postfix.flushAndWait();
      expect(arrivals('lq-qmail-73')).toHaveLength(0);
      expect(arrivals('lq-qmail-queued')).toHaveLength(1);
    } finally {
      rmSync(files, { recursive: true, force: true });
    }
  }, 60_000);

  it('a message longer than the read-ahead goes through the queue: 0 with the MTA up or down, and arrives whole', async () => {
    const body = `${'0123456789abcdef'.repeat(4)}\n`.repeat(8000);
    const make = (subject: string) => `From: big@example.org\nTo: ops@example.org\nSubject: ${subject}\n\n${body}`;
    const up = await sendmail(ms, user, ['-i', 'ops@example.org'], make('lq-big-up'));
    expect(up).toMatchObject({ code: 0, stderr: '' });
    const down = await withPostfixDown(() => sendmail(ms, user, ['-i', 'ops@example.org'], make('lq-big-down')));
    expect(down).toMatchObject({ code: 0, stderr: '' });
    for (const subject of ['lq-big-up', 'lq-big-down']) {
      const delivered = await sink.waitForMessage((m) => m.data.includes(`Subject: ${subject}\r\n`));
      const text = delivered.data.toString('latin1');
      const arrivedBody = text.slice(text.indexOf('\r\n\r\n') + 4);
      expect(sha256(arrivedBody)).toBe(sha256(body.replace(/\n/g, '\r\n')));
    }
    await until(() => queueFiles(ms).length === 0, 'the local queue to empty', 10_000);
  }, 60_000);

  it('a recipient refused once Postfix is back: one notice to the sender, which parsers read as a permanent failure', async () => {
    const message = 'From: app@example.org\nTo: refused@example.net\nSubject: lq-refused\nMessage-ID: <lq-refused@example.org>\n\nhello\n';
    const result = await withPostfixDown(() => sendmail(ms, user, ['-i', '-f', 'app@example.org', 'refused@example.net'], message));
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const notice = await sink.waitForMessage((m) => isNotice(m) && m.data.includes('lq-refused'));
    expect(notice.rcptTo.map((r) => r.split(' ')[1])).toEqual(['TO:<app@example.org>']);
    const parsed = parseNotice(withoutReceived(notice.data));
    expect(parsed.reportType).toBe('delivery-status');
    expect(parsed.recipients).toEqual([expect.objectContaining({ 'final-recipient': 'rfc822; refused@example.net', action: 'failed', status: '5.1.1' })]);
    expect(parsed.recipients[0]?.['diagnostic-code']).toContain('550 5.1.1');
    expect(parsed.flufl).toEqual({ temporary: [], permanent: ['refused@example.net'] });
    expect(parsed.returned.headers).toContainEqual(['Message-ID', '<lq-refused@example.org>']);
    await until(() => queueFiles(ms).length === 0, 'the local queue to empty', 10_000);
    await postfix.flushAndWait();
    expect(notices('lq-refused')).toHaveLength(1);
    expect(arrivals('lq-refused')).toHaveLength(0);
  }, 60_000);

  it('mailsubmitctl queue on the running daemon: list, hold (not delivered when the MTA is back), release (delivered), delete (never delivered)', async () => {
    const make = (subject: string) => `From: ops@example.org\nTo: ops@example.org\nSubject: ${subject}\n\nbody\n`;
    await postfix.stopMailSystem();
    let held: string;
    let deleted: string;
    try {
      expect(await sendmail(ms, user, ['-i', '-f', 'held@example.org', 'ops@example.org'], make('lq-ctl-held'))).toMatchObject({ code: 0 });
      expect(await sendmail(ms, user, ['-i', '-f', 'deleted@example.org', 'ops@example.org'], make('lq-ctl-deleted'))).toMatchObject({ code: 0 });
      const listed = ctl(ms, ['queue', 'list', '--json']);
      expect(listed).toMatchObject({ code: 0, stderr: '' });
      const { messages, summary } = JSON.parse(listed.stdout) as { messages: { id: string; sender: string; state: string; recipients: string[] }[]; summary: { messages: number } };
      expect(summary.messages).toBe(2);
      held = messages.find((m) => m.sender === 'held@example.org')?.id ?? '';
      deleted = messages.find((m) => m.sender === 'deleted@example.org')?.id ?? '';
      expect(messages.map((m) => [m.state, m.recipients])).toEqual([['deferred', ['ops@example.org']], ['deferred', ['ops@example.org']]]);
      const human = ctl(ms, ['queue', 'list']);
      expect(human.stdout).toContain(held);
      expect(human.stdout).toMatch(/-- \d+ Kbytes in 2 Requests\.\n$/);
      expect(ctl(ms, ['queue', 'hold', held])).toMatchObject({ code: 0 });
      expect(ctl(ms, ['queue', 'delete', deleted, '--yes'])).toMatchObject({ code: 0 });
      expect(ctl(ms, ['queue', 'delete', deleted, '--yes']).code).toBe(66);
    } finally {
      await postfix.startMailSystem();
    }
    // The MTA is found back and what waits for it is tried: not the held one.
    expect(await sendmail(ms, user, ['-i', 'ops@example.org'], make('lq-ctl-direct'))).toMatchObject({ code: 0 });
    await sink.waitForMessage((m) => m.data.includes('Subject: lq-ctl-direct\r\n'));
    await until(() => ms.logLines.some((l) => l.msg === 'local queue: held by the administrator' && l.queue_id === held), 'the hold in the log');
    expect(JSON.parse(ctl(ms, ['queue', 'list', '--json']).stdout).messages).toEqual([expect.objectContaining({ id: held, state: 'held' })]);
    expect(arrivals('lq-ctl-held')).toHaveLength(0);
    expect(ctl(ms, ['queue', 'release', held])).toMatchObject({ code: 0 });
    await sink.waitForMessage((m) => m.data.includes('Subject: lq-ctl-held\r\n'));
    await until(() => queueFiles(ms).length === 0, 'the local queue to empty');
    await postfix.flushAndWait();
    expect(arrivals('lq-ctl-held')).toHaveLength(1);
    expect(arrivals('lq-ctl-deleted')).toHaveLength(0);
    expect(ms.logLines.filter((l) => l.msg === 'local queue: deleted by the administrator, without a notice').map((l) => l.queue_id)).toEqual([deleted]);
  }, 60_000);

  describe('with a lifetime of two seconds', () => {
    let short: MailsubmitUnderTest;

    beforeAll(async () => {
      short = await MailsubmitUnderTest.start({ downstreamPort: postfix.port, queue: 'probe_interval = 1\nminimal_backoff_time = 1\nmaximal_queue_lifetime = 2' });
      symlinkSync(short.helperPath, join(dirname(short.helperPath), 'mailsubmit-sendmail'));
      short.setAuthorizations(['mstqueue']);
    }, HOOK_TIMEOUT_MS);

    afterAll(async () => short?.stop(), HOOK_TIMEOUT_MS);

    it('a message the MTA keeps putting off (450) goes back to its sender once, as expired; a null-sender one is dropped without a notice', async () => {
      const message = 'From: late@example.org\nTo: later@example.net\nSubject: lq-expired\n\nlate\n';
      const nullSender = 'From: MAILER-DAEMON@example.org\nTo: later@example.net\nSubject: lq-null-sender\n\nnotice\n';
      expect(await sendmail(short, user, ['-i', '-f', 'late@example.org', 'later@example.net'], message)).toMatchObject({ code: 0, stderr: '' });
      expect(await sendmail(short, user, ['-i', '-f', '<>', 'later@example.net'], nullSender)).toMatchObject({ code: 0, stderr: '' });
      const notice = await sink.waitForMessage((m) => isNotice(m) && m.data.includes('lq-expired'));
      expect(notice.rcptTo.map((r) => r.split(' ')[1])).toEqual(['TO:<late@example.org>']);
      const parsed = parseNotice(withoutReceived(notice.data));
      expect(parsed.recipients).toEqual([expect.objectContaining({ 'final-recipient': 'rfc822; later@example.net', action: 'failed', status: '4.2.0' })]);
      expect(parsed.recipients[0]?.['diagnostic-code']).toContain('450 4.2.0');
      await until(() => short.logLines.filter((l) => l.msg === 'local queue: removed, expired').length === 2 && queueFiles(short).length === 0, 'both messages to expire and the queue to empty', 20_000);
      await postfix.flushAndWait();
      expect(arrivals('lq-expired')).toHaveLength(0);
      expect(notices('lq-expired')).toHaveLength(1);
      expect(sink.messages.filter((m) => m.data.includes('lq-null-sender'))).toHaveLength(0);
    }, 60_000);
  });
});

function isNotice(message: RecordedMessage): boolean {
  return message.mailFrom.startsWith('MAIL FROM:<>');
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'latin1').digest('hex');
}

/** The notice as mailsubmit wrote it: without the Received field Postfix put on top. */
function withoutReceived(data: Buffer): Buffer {
  const text = data.toString('latin1');
  return Buffer.from(text.replace(/^Received:.*\r\n(?:[ \t].*\r\n)*/, ''), 'latin1');
}
