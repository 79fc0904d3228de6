/**
 * Many recipients and long command lines, as Postfix takes them: 5,000
 * recipients on the command line (and a command line close to ARG_MAX)
 * through the real mailsubmit-sendmail, side by side with Postfix's own
 * sendmail on the same argv; -t with 5,000 addresses in To:; the native and
 * qmail-queue doors with 5,000 recipients. Each message is queued once in a
 * private Postfix (started without a queue manager, so it stays in the
 * incoming queue) with every recipient, counted with postcat.
 *
 * All or nothing: behind a re-injection listener whose smtpd_recipient_limit
 * is 10, Postfix answers 452 from the eleventh RCPT on; the submission is
 * abandoned, the caller gets 75, and nothing is queued.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childOutput } from '../support/child-output.ts';
import { startMailPath } from '../support/mail-path.ts';
import { MailsubmitUnderTest } from '../support/mailsubmit-under-test.ts';
import { PrivatePostfix } from '../support/private-postfix.ts';
import { incomingIds, readQueued, settledNewIds, type QueuedMessage } from '../support/queued-messages.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import { SideBySide } from '../support/side-by-side.ts';
import { tearDown } from '../support/tear-down.ts';

const ROOT = { uid: 0, gid: 0 };
const MESSAGE = 'Subject: many recipients\n\nOne message, queued once.\n';

const addresses = (count: number, prefix: string, domain = 'example.org'): string[] =>
  Array.from({ length: count }, (_, i) => `${prefix}${i}@${domain}`);

/** Compared as one string: element-wise equality of 60,000 strings is slow in the matcher's diffing. */
const sorted = (list: readonly string[] | undefined): string => [...(list ?? [])].sort().join('\n');

/** What is new in the private Postfix's incoming queue after `action`. */
async function queuedBy(postfix: PrivatePostfix, action: () => Promise<unknown>): Promise<QueuedMessage[]> {
  const before = new Set(incomingIds(postfix.dir));
  await action();
  const ids = await settledNewIds(postfix.dir, before);
  return Promise.all(ids.map((id) => readQueued(postfix.dir, id)));
}

describe.skipIf(!SideBySide.isAvailable())('many recipients and long command lines', () => {
  let sbs: SideBySide;
  let qmailQueue: string;
  let files: string;

  beforeAll(async () => {
    sbs = await SideBySide.start();
    qmailQueue = join(dirname(sbs.mailsubmit.helperPath), 'mailsubmit-qmail-queue');
    symlinkSync(sbs.mailsubmit.helperPath, qmailQueue);
    files = mkdtempSync(join(sbs.mailsubmit.dir, 'many-'));
    chmodSync(files, 0o755);
  }, 60_000);

  afterAll(() => sbs?.stop());

  it('takes 5,000 recipients on the command line as Postfix\'s sendmail does: exit 0, one message, every recipient', async () => {
    const recipients = addresses(5_000, 'cmd');
    const { postfix, mailsubmit } = await sbs.runBoth(['/usr/sbin/sendmail', '-i', '-f', 'sender@example.net', ...recipients], { input: MESSAGE });
    expect(postfix.code).toBe(0);
    expect({ code: mailsubmit.code, stderr: mailsubmit.stderr }).toEqual({ code: postfix.code, stderr: '' });
    for (const run of [postfix, mailsubmit]) {
      expect(run.queued.length, run.door).toBe(1);
      const [queued] = run.queued as [QueuedMessage];
      expect(queued.sender).toBe('sender@example.net');
      expect(queued.recipients.length, run.door).toBe(5_000);
      expect(sorted(queued.recipients)).toEqual(sorted(recipients));
    }
  }, 180_000);

  it('takes a command line close to ARG_MAX, as Postfix\'s sendmail does', async () => {
    // What exec(2) counts: each argument with its NUL and an 8-octet pointer. The
    // margin is for the environment and the wrappers that start the sendmail.
    const argMax = Number(execFileSync('getconf', ['ARG_MAX'], { encoding: 'utf8' }));
    const argv = ['/usr/sbin/sendmail', '-i', '-f', 'sender@example.net'];
    let used = argv.reduce((sum, arg) => sum + arg.length + 9, 0);
    const recipients: string[] = [];
    // Long addresses (about 230 octets, RFC 5321 allows 256): Postfix's own
    // queueing takes time that grows faster than the number of recipients.
    const domain = `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(40)}.example`;
    for (let i = 0; used < argMax - 32 * 1024; i++) {
      const recipient = `r${i}-${'x'.repeat(54)}@${domain}`;
      recipients.push(recipient);
      used += recipient.length + 9;
    }
    // More than a frame held before (64 KiB), and more than a single packet would carry.
    expect(used).toBeGreaterThan(argMax - 40 * 1024);
    const { postfix, mailsubmit } = await sbs.runBoth([...argv, ...recipients], { input: MESSAGE });
    expect(postfix.code).toBe(0);
    expect({ code: mailsubmit.code, stderr: mailsubmit.stderr }).toEqual({ code: postfix.code, stderr: '' });
    for (const run of [postfix, mailsubmit]) {
      expect(run.queued.length, run.door).toBe(1);
      expect(run.queued[0]?.recipients.length, run.door).toBe(recipients.length);
      expect(sorted(run.queued[0]?.recipients)).toEqual(sorted(recipients));
    }
  }, 300_000);

  it('takes -t with 5,000 addresses in To: as Postfix\'s sendmail does', async () => {
    const recipients = addresses(5_000, 't', 'x.example');
    const lines: string[] = [];
    for (let i = 0; i < recipients.length; i += 10) lines.push(recipients.slice(i, i + 10).join(', '));
    const input = `To: ${lines.join(',\n ')}\n${MESSAGE}`;
    const { postfix, mailsubmit } = await sbs.runBoth(['/usr/sbin/sendmail', '-t', '-i', '-f', 'sender@example.net'], { input });
    expect(postfix.code).toBe(0);
    expect({ code: mailsubmit.code, stderr: mailsubmit.stderr }).toEqual({ code: postfix.code, stderr: '' });
    for (const run of [postfix, mailsubmit]) {
      expect(run.queued.length, run.door).toBe(1);
      expect(run.queued[0]?.recipients.length, run.door).toBe(5_000);
      expect(sorted(run.queued[0]?.recipients)).toEqual(sorted(recipients));
    }
  }, 180_000);

  it('takes 5,000 recipients through the native door', async () => {
    const recipients = addresses(5_000, 'native');
    const input = `sender: sender@example.net\n${recipients.map((r) => `recipient: ${r}\n`).join('')}\n${MESSAGE}`;
    let result: { code: number | null; stderr: string } | undefined;
    const queued = await queuedBy(sbs.postfix, async () => {
      result = await sbs.mailsubmit.submit(ROOT, input);
    });
    expect({ code: result?.code, stderr: result?.stderr }).toEqual({ code: 0, stderr: '' });
    expect(queued.length).toBe(1);
    expect(queued[0]?.recipients.length).toBe(5_000);
    expect(sorted(queued[0]?.recipients)).toEqual(sorted(recipients));
  }, 120_000);

  it('takes 5,000 recipients through the qmail-queue door', async () => {
    const recipients = addresses(5_000, 'qmail');
    const messageFile = join(files, 'qmail-message');
    const envelopeFile = join(files, 'qmail-envelope');
    writeFileSync(messageFile, MESSAGE);
    writeFileSync(envelopeFile, `Fsender@example.net\0${recipients.map((r) => `T${r}\0`).join('')}\0`);
    let result: { code: number | null; stderr: string } | undefined;
    const queued = await queuedBy(sbs.postfix, async () => {
      const child = spawn('/bin/sh', ['-c', 'exec "$0" <"$1" 1<"$2"', qmailQueue, messageFile, envelopeFile], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: '/usr/bin:/bin' } });
      result = await childOutput(child);
    });
    expect({ code: result?.code, stderr: result?.stderr }).toEqual({ code: 0, stderr: '' });
    expect(queued.length).toBe(1);
    expect(queued[0]?.recipients.length).toBe(5_000);
    expect(sorted(queued[0]?.recipients)).toEqual(sorted(recipients));
  }, 120_000);
});

describe.skipIf(!PrivatePostfix.isAvailable())('all or nothing behind a listener that takes 10 recipients', () => {
  const sink = new RecordingSink();
  let postfix: PrivatePostfix;
  let ms: MailsubmitUnderTest;
  let sendmail: string;

  beforeAll(async () => {
    // The 75 path: with the local queue (the sendmail door's default) the caller would hear 0 and the whole message wait there.
    ({ postfix, ms } = await startMailPath(sink, { postfix: { queueManager: false, listenerOptions: ['smtpd_recipient_limit=10'] }, mailsubmit: { queue: 'sendmail_door = false' } }));
    ms.setAuthorizations(['root']);
    sendmail = join(dirname(ms.helperPath), 'mailsubmit-sendmail');
    symlinkSync(ms.helperPath, sendmail);
  }, 60_000);

  afterAll(() => tearDown(ms, postfix, sink));

  it.each([11, 5_000])('answers 75 to %i recipients and queues nothing, not even for the first ten', async (count) => {
    const recipients = addresses(count, `limited${count}-`);
    let result: { code: number | null; stderr: string } | undefined;
    const queued = await queuedBy(postfix, async () => {
      const child = spawn(sendmail, ['-i', '-f', 'sender@example.net', ...recipients], { stdio: ['pipe', 'pipe', 'pipe'], env: {} });
      const output = childOutput(child);
      child.stdin.end(MESSAGE);
      result = await output;
    });
    expect(result?.code).toBe(75);
    expect(result?.stderr).toMatch(/^mailsubmit-sendmail: .*452 4\.5\.3 Error: too many recipients/);
    expect(queued).toEqual([]);
    // cleanup never saw the message: no DATA was sent.
    expect(postfix.log()).not.toMatch(/cleanup\[\d+\]: \w+: message-id=/);
  }, 120_000);
});
