/**
 * The header section that reaches Postfix's queue, read with postcat from a
 * private Postfix without a queue manager (test/support/side-by-side.ts),
 * whose re-injection listener is set up as install/ sets it up and whose
 * main.cf rewrites headers as Debian's does out of the box
 * (local_header_rewrite_clients = permit_inet_interfaces).
 *
 * - Native and qmail-queue doors: the header section is the caller's, byte
 *   for byte, but for the Received field Postfix's smtpd puts first. No
 *   Message-Id, Date or From added, no address qualified, no Bcc removed.
 * - Sendmail door: what it queues equals what Postfix's own sendmail
 *   queues for the same command line and input, once Received and the
 *   values of generated Date and Message-Id fields are masked.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { childOutput } from '../support/child-output.ts';
import { runQmailQueueMessageFirst } from '../support/qmail-queue-caller.ts';
import { incomingIds, readQueued, settledNewIds, type QueuedMessage } from '../support/queued-messages.ts';
import { comparable, SideBySide } from '../support/side-by-side.ts';
import { ensureUser, type TestUser } from '../support/test-accounts.ts';

/** A header section meant to tempt every rewrite Postfix has for local mail. */
const VARIED_HEADER = [
  'Received: from upstream.example (upstream.example [192.0.2.9])',
  '\tby mx.example (Postfix) with ESMTP id 4ABC; Tue, 24 Nov 2026 11:59:00 +0000',
  'To: bob, carol@host',
  'cc: dave (Dave Example)',
  'Subject: a folded',
  '  subject line',
  'Resent-To: erin',
  'Resent-Bcc: hidden',
  'Bcc: secret@example.org,',
  '\tother',
  'X-ODD-case:value without a space',
  'reply-to: "E. Example" <eve>',
  'Content-Length: 12',
  'Return-Path: <bogus@example>',
  'sender: frank',
  '',
].join('\n');
const BODY = 'body line\n.leading dot\n';

/** The header section of a queued message, without the first Received field (Postfix's own). */
function headerWithoutOwnReceived(message: QueuedMessage): string {
  const header = message.content.toString('latin1').split('\n\n')[0] as string;
  const lines = header.split('\n');
  expect(lines[0]).toMatch(/^Received: from localhost /);
  let i = 1;
  while (i < lines.length && /^[ \t]/.test(lines[i] as string)) i += 1;
  return `${lines.slice(i).join('\n')}\n`;
}

/** Field names of a header section, for comparable(): fields the caller wrote are never masked. */
function fieldNames(input: string): string[] {
  const header = input.split('\n\n')[0] as string;
  return header
    .split('\n')
    .filter((line) => /^[^ \t:]+:/.test(line))
    .map((line) => (line.split(':')[0] as string).toLowerCase());
}

describe.skipIf(!SideBySide.isAvailable() && !process.env.CI)('the header section that reaches Postfix\'s queue', () => {
  let sbs: SideBySide;
  let user: TestUser;
  let files: string;
  let serial = 0;

  beforeAll(async () => {
    user = ensureUser('msthdrpass');
    sbs = await SideBySide.start({ authorizations: ['root', 'msthdrpass'] });
    files = mkdtempSync(join(sbs.mailsubmit.dir, 'hdr-'));
    chmodSync(files, 0o755);
  }, 60_000);
  afterAll(() => sbs?.stop());

  async function queuedAfter(submit: () => Promise<{ code: number | null; stderr: string }>): Promise<QueuedMessage> {
    const before = new Set(incomingIds(sbs.postfix.dir));
    const result = await submit();
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const ids = await settledNewIds(sbs.postfix.dir, before);
    expect(ids).toHaveLength(1);
    return readQueued(sbs.postfix.dir, ids[0] as string);
  }

  describe('native and qmail-queue doors: the caller\'s header section, unchanged', () => {
    it('native door: postcat shows the input header section but for the Received field smtpd prepends', async () => {
      const envelope = 'sender: native@example.net\nrecipient: rcpt@example.org\n\n';
      const queued = await queuedAfter(() => sbs.mailsubmit.submit(user, `${envelope}${VARIED_HEADER}\n${BODY}`));
      expect(headerWithoutOwnReceived(queued)).toBe(VARIED_HEADER);
      expect(queued.content.toString('latin1')).toContain(`\n\n${BODY}`);
      expect(queued.envelope.get('rewrite_context') ?? ['remote']).not.toContain('local');
    });

    it('native door: a header section of one unqualified To field gets no Message-Id, Date or From', async () => {
      const header = 'To: bob\n';
      const queued = await queuedAfter(() => sbs.mailsubmit.submit(user, `sender: bare@example.net\nrecipient: rcpt@example.org\n\n${header}\nx\n`));
      expect(headerWithoutOwnReceived(queued)).toBe(header);
    });

    it('qmail-queue door: the same', async () => {
      const helper = join(dirname(sbs.mailsubmit.helperPath), 'mailsubmit-qmail-queue');
      symlinkSync(sbs.mailsubmit.helperPath, helper);
      serial += 1;
      const messageFile = join(files, `message-${serial}`);
      const envelopeFile = join(files, `envelope-${serial}`);
      writeFileSync(messageFile, `${VARIED_HEADER}\n${BODY}`, { mode: 0o644 });
      writeFileSync(envelopeFile, 'Fqq@example.net\0Trcpt@example.org\0\0', { mode: 0o644 });
      const queued = await queuedAfter(() => runQmailQueueMessageFirst({ helper, user, messageFile, envelopeFile }));
      expect(headerWithoutOwnReceived(queued)).toBe(VARIED_HEADER);
    });
  });

  describe('sendmail door: what Postfix\'s own sendmail queues', () => {
    const plain = 'Subject: side by side\n\nbody\n';
    const cases: [string, string[], string][] = [
      ['no From, Date or Message-ID', ['-i', 'bob@example.org'], plain],
      ['-F with a plain name', ['-i', '-F', 'Ann Example', 'bob@example.org'], plain],
      ['-F with specials and quotes', ['-i', '-F', 'Example, "Ann" \\ (ops)', 'bob@example.org'], plain],
      ['-F with a period', ['-i', '-F', 'Ann B. Example', 'bob@example.org'], plain],
      ['-F with non-ASCII', ['-i', '-F', 'Jörg Müller-Lüdenscheidt', 'bob@example.org'], plain],
      ['-F with non-ASCII and a comma', ['-i', '-F', 'Müller, Jörg', 'bob@example.org'], plain],
      ['-F with % and |', ['-i', '-F', 'a%b c | d', 'bob@example.org'], plain],
      ['-F empty', ['-i', '-F', '', 'bob@example.org'], plain],
      ['the null sender', ['-i', '-f', '', 'bob@example.org'], plain],
      ['the null sender and -F', ['-i', '-f', '', '-F', 'Mailer', 'bob@example.org'], plain],
      ['-f qualified', ['-i', '-f', 'ann@example.net', 'bob@example.org'], plain],
      ['-f unqualified', ['-i', '-f', 'ann', 'bob@example.org'], plain],
      ['Resent- fields', ['-i', 'bob@example.org'], 'From: a@example.org\nDate: Tue, 24 Nov 2026 12:00:00 +0000\nResent-To: carol\nSubject: s\n\nbody\n'],
      ['only a Resent-Bcc', ['-i', 'bob@example.org'], 'From: a@example.org\nResent-Bcc: hidden@example.org\nSubject: s\n\nbody\n'],
      ['unqualified header addresses', ['-i', 'bob@example.org'], 'From: alice\nTo: bob, carol@host\nCc: dave (Dave)\nReply-To: "E" <eve>\nSubject: s\n\nbody\n'],
      ['Bcc, Content-Length and Return-Path', ['-i', 'bob@example.org'], 'To: bob@example.org\nBcc: hidden@example.org,\n  other\nContent-Length: 5\nReturn-Path: <x@y>\nSubject: s\n\nbody\n'],
      ['-t', ['-i', '-t'], 'To: bob\nCc: carol@example.org\nBcc: hid@example.org\nSubject: s\n\nbody\n'],
      ['a message with From, Date and Message-ID', ['-i', 'bob@example.org'], 'From: me@example.net\nDate: Tue, 24 Nov 2026 12:00:00 +0000\nMessage-ID: <given@example.net>\nSubject: s\n\nbody\n'],
    ];
    for (const [name, args, input] of cases) {
      it(name, async () => {
        const { postfix, mailsubmit } = await sbs.runBoth(['/usr/sbin/sendmail', ...args], { input });
        expect([postfix.code, mailsubmit.code]).toEqual([0, 0]);
        expect(mailsubmit.queued).toHaveLength(1);
        expect(postfix.queued).toHaveLength(1);
        const written = fieldNames(input);
        expect(comparable(mailsubmit.queued[0] as QueuedMessage, written)).toEqual(comparable(postfix.queued[0] as QueuedMessage, written));
      }, 60_000);
    }

    it('a control character in -F never reaches the queue file', async () => {
      const run = await sbs.run('mailsubmit', ['/usr/sbin/sendmail', '-i', '-F', 'Ann\x1b[31m Example', 'bob@example.org'], { input: plain });
      if (run.code === 0) expect(run.queued[0]?.content.toString('latin1')).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/);
      else expect(run.queued).toHaveLength(0);
    }, 60_000);
  });
});

describe.skipIf(!SideBySide.isAvailable() && !process.env.CI)('sendmail door: the full name from the user database', () => {
  let sbs: SideBySide;
  let user: TestUser;
  let rootGecos: string;
  const GECOS = 'Zoë O\'Neil,Room 2,555-0100';

  beforeAll(async () => {
    rootGecos = execFileSync('getent', ['passwd', 'root'], { encoding: 'utf8' }).split(':')[4] as string;
    user = ensureUser('msthdrgecos');
    execFileSync('usermod', ['-c', GECOS, 'msthdrgecos']);
    // Postfix's sendmail takes MAIL_CONFIG only from root: both sides run as root, root's GECOS changed for the run.
    execFileSync('usermod', ['-c', GECOS, 'root']);
    sbs = await SideBySide.start({ authorizations: ['root', 'msthdrgecos'] });
  }, 60_000);
  afterAll(async () => {
    execFileSync('usermod', ['-c', rootGecos, 'root']);
    await sbs?.stop();
  });

  it('takes the GECOS field up to the first comma, as Postfix\'s sendmail does', async () => {
    const input = 'Subject: gecos\n\nbody\n';
    const { postfix, mailsubmit } = await sbs.runBoth(['/usr/sbin/sendmail', '-i', 'bob@example.org'], { input });
    expect([postfix.code, mailsubmit.code]).toEqual([0, 0]);
    const [p, m] = [postfix.queued[0] as QueuedMessage, mailsubmit.queued[0] as QueuedMessage];
    expect(p.content.toString('utf8')).toMatch(/^From: Zoë O'Neil <root@[^>]+>$/m);
    expect(comparable(m, ['subject'])).toEqual(comparable(p, ['subject']));
  }, 60_000);

  it('-F wins over the GECOS field', async () => {
    const input = 'Subject: gecos\n\nbody\n';
    const { postfix, mailsubmit } = await sbs.runBoth(['/usr/sbin/sendmail', '-i', '-F', 'Given Name', 'bob@example.org'], { input });
    expect(comparable(mailsubmit.queued[0] as QueuedMessage, ['subject'])).toEqual(comparable(postfix.queued[0] as QueuedMessage, ['subject']));
    expect(mailsubmit.queued[0]?.content.toString('utf8')).toMatch(/^From: Given Name </m);
  }, 60_000);

  it('a real user set with usermod -c gets the same name in From as Postfix gives root with that GECOS', async () => {
    const sendmail = join(dirname(sbs.mailsubmit.helperPath), 'mailsubmit-sendmail');
    symlinkSync(sbs.mailsubmit.helperPath, sendmail);
    const before = new Set(incomingIds(sbs.postfix.dir));
    const child = spawn(sendmail, ['-i', 'bob@example.org'], { uid: user.uid, gid: user.gid, stdio: ['pipe', 'pipe', 'pipe'], env: {} });
    const result = childOutput(child);
    child.stdin.end('Subject: real user\n\nbody\n');
    expect((await result).code).toBe(0);
    const [id] = await settledNewIds(sbs.postfix.dir, before);
    const queued = await readQueued(sbs.postfix.dir, id as string);
    expect(queued.content.toString('utf8')).toMatch(/^From: Zoë O'Neil <msthdrgecos@[^>]+>$/m);
    const header = queued.content.toString('utf8').split('\n\n')[0] as string;
    expect(header.split('\n').filter((l) => /^[^ \t]/.test(l)).map((l) => l.split(':')[0])).toEqual(['Received', 'Subject', 'Message-Id', 'Date', 'From']);
  }, 60_000);
});
