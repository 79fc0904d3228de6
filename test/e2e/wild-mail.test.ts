/**
 * Wild mail end to end: messages RFC 5322 would refuse but Postfix takes
 * (long lines, mbox From lines, no header section or no empty line before
 * the body, NUL, stray CRs, several CRs before an LF, an empty message, a
 * last line without a line end, dot lines, header fields and sections past
 * max_header_size, lines Postfix's sendmail reads in 2048-octet pieces). Each goes through all three
 * doors of a mailsubmit whose downstream is a private Postfix without a
 * queue manager, and the same bytes go, side by side, to that Postfix's own
 * smtpd (over SMTP, as a client would send them) and to its own sendmail.
 * The queued messages (postcat) must be equal: the native and qmail-queue
 * doors to what smtpd queued, the sendmail door to what Postfix's sendmail
 * queued, but for the Received field and the From, Date and Message-ID
 * fields either side adds.
 *
 * Then SMTP smuggling, against smtpd_forbid_bare_newline = no and = yes:
 * whatever a caller writes, exactly one message is queued, with the content
 * Postfix's smtpd gives the same text.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childOutput } from '../support/child-output.ts';
import { startMailPath } from '../support/mail-path.ts';
import { MailsubmitUnderTest, type SubmitResult } from '../support/mailsubmit-under-test.ts';
import { PrivatePostfix } from '../support/private-postfix.ts';
import { runQmailQueueMessageFirst } from '../support/qmail-queue-caller.ts';
import { incomingIds, readQueued, settledNewIds } from '../support/queued-messages.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import { sendOverSmtp } from '../support/smtp-client.ts';
import { tearDown } from '../support/tear-down.ts';
import { ensureUser, type TestUser } from '../support/test-accounts.ts';

const HEAD = 'From: wild@example.net\nTo: rcpt@example.org\nSubject: wild\n';

const CLASSES: ReadonlyArray<readonly [string, string | Buffer]> = [
  ['a body line of 999 octets', `${HEAD}\n${'x'.repeat(999)}\n`],
  ['a body line of 2048 octets', `${HEAD}\n${'x'.repeat(2048)}\n`],
  ['body lines of 5000 octets, one starting with a dot', `${HEAD}\n${'x'.repeat(5000)}\n.${'y'.repeat(5000)}\n`],
  ['a body line of 100000 octets', `${HEAD}\n${'x'.repeat(100_000)}\n`],
  ['a header line of 5000 octets', `${HEAD}X-Long: ${'h'.repeat(5000)}\nX-After: 1\n\nbody\n`],
  ['a header line of 100000 octets', `${HEAD}X-Long: ${'h'.repeat(100_000)}\nX-After: 1\n\nbody\n`],
  ['a leading mbox From line and >From lines', `From wild@example.net Tue Nov 24 12:00:00 2026\n>From again\n${HEAD}\nbody\n>From inside\nFrom inside\n`],
  ['no empty line between header and body', `${HEAD}body line right after the header\nmore\n`],
  ['no header section (body only)', 'just a body\nsecond line\n'],
  ['a continuation line first', ` continued\n${HEAD}\nbody\n`],
  ['an empty message', ''],
  ['a stray CR mid-line, in header and body', `Subject: a\rb\nFrom: wild@example.net\n\nab\rcd\n`],
  ['CR CR LF line ends', `${HEAD.replace(/\n/g, '\r\r\n')}\r\r\nline\r\r\nnext\r\n`],
  ['mixed CRLF and LF', 'From: wild@example.net\r\nSubject: wild\n\r\nl1\r\nl2\nl3\r\n'],
  ['NUL in header and body', `Subject: a\0b\nFrom: wild@example.net\n\na\0b\n`],
  ['a last line without LF', `${HEAD}\nlast`],
  ['a lone dot line (data with -i)', `${HEAD}\nbefore\n.\nafter\n`],
  // Past max_header_size (102400): Postfix's cleanup cuts a field over its header_size_limit, and has no limit on the section.
  ['a header field of 150 KB', `${HEAD}X-Long: ${'h'.repeat(150_000)}\nX-After: 1\n\nbody\n`],
  ['a header field of 2 MB', `${HEAD}X-Long: ${'h'.repeat(2_000_000)}\nX-After: 1\n\nbody\n`],
  ['a folded header field of 150 KB', `${HEAD}X-Long: start\n${Array.from({ length: 2200 }, (_, i) => ` ${String(i).padStart(6, '0')}${'f'.repeat(62)}`).join('\n')}\nX-After: 1\n\nbody\n`],
  ['a header section of 150 KB in short fields, Bcc and Date after the limit', `${HEAD}${Array.from({ length: 2000 }, (_, i) => `X-F${i}: ${'v'.repeat(70)}\n`).join('')}Bcc: hidden@example.org,\n more@example.org\nDate: Tue, 24 Nov 2026 12:00:00 +0000\n\nbody\n`],
  ['a header section of 2 MB in short fields, then a line that is no header line', `${HEAD}${Array.from({ length: 27_000 }, (_, i) => `X-F${i}: ${'v'.repeat(70)}\n`).join('')}no header line\nbody\n`],
  // Postfix's sendmail reads a line in 2048-octet pieces.
  ['a leading From_ line of 3000 octets', `From ${'f'.repeat(2995)}\n${HEAD}\nbody\n`],
  ['a leading From_ line of 2048 octets with its LF', `From ${'f'.repeat(2042)}\n${HEAD}\nbody\n`],
  ['a line of 3000 dots', `${HEAD}\nbefore\n${'.'.repeat(3000)}\nafter\n`],
  ['a dot and 2046 CRs before the LF', `${HEAD}\nbefore\n.${'\r'.repeat(2046)}\nafter\n`],
  ['a field name whose colon is octet 2048, and one whose colon is octet 2049', `${HEAD}${'N'.repeat(2047)}: v\n${'M'.repeat(2048)}: w\nX-After: 1\n\nbody\n`],
];

/** The queued content without the Received field (and its continuation lines) that starts it. */
function withoutReceived(content: Buffer): Buffer {
  const text = content.toString('latin1');
  const match = /^Received: [^\n]*\n([ \t][^\n]*\n)*/.exec(text);
  return match === null ? content : content.subarray(match[0].length);
}

/** Also without the From, Date and Message-ID fields (either side adds them where missing, each its own way). */
function withoutAddedFields(content: Buffer): string {
  const text = withoutReceived(content).toString('latin1');
  const blank = text.indexOf('\n\n');
  const head = blank === -1 ? text : text.slice(0, blank + 1);
  const rest = blank === -1 ? '' : text.slice(blank + 1);
  return head.replace(/^(From|Date|Message-I[dD]): [^\n]*\n([ \t][^\n]*\n)*/gm, '') + rest;
}

describe.skipIf(!PrivatePostfix.isAvailable() && !process.env.CI)('wild mail through the three doors, side by side with Postfix', () => {
  const sink = new RecordingSink();
  let postfix: PrivatePostfix;
  let ms: MailsubmitUnderTest;
  let sendmail: string;
  let qmailQueue: string;
  let files: string;
  let user: TestUser;
  let serial = 0;

  beforeAll(async () => {
    ({ postfix, ms } = await startMailPath(sink, { postfix: { queueManager: false } }));
    sendmail = join(dirname(ms.helperPath), 'mailsubmit-sendmail');
    symlinkSync(ms.helperPath, sendmail);
    qmailQueue = join(dirname(ms.helperPath), 'mailsubmit-qmail-queue');
    symlinkSync(ms.helperPath, qmailQueue);
    files = mkdtempSync(join(ms.dir, 'wild-'));
    chmodSync(files, 0o755);
    user = ensureUser('mstwild');
    ms.setAuthorizations(['mstwild']);
  }, 30_000);

  afterAll(() => tearDown(ms, postfix, sink));

  /** Runs `submit`, expects it to succeed, and returns the one message it queued. */
  async function queuedBy(submit: () => Promise<SubmitResult | string>): Promise<Buffer> {
    const before = new Set(incomingIds(postfix.dir));
    const result = await submit();
    if (typeof result === 'string') expect(result).toMatch(/^250 /);
    else {
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
    }
    const ids = await settledNewIds(postfix.dir, before);
    expect(ids).toHaveLength(1);
    return (await readQueued(postfix.dir, ids[0] as string)).content;
  }

  const native = (message: Buffer) => () => ms.submit(user, Buffer.concat([Buffer.from('sender: wild@example.net\nrecipient: rcpt@example.org\n\n'), message]));

  const qmail = (message: Buffer) => () => {
    serial += 1;
    const messageFile = join(files, `message-${serial}`);
    const envelopeFile = join(files, `envelope-${serial}`);
    writeFileSync(messageFile, message, { mode: 0o644 });
    writeFileSync(envelopeFile, 'Fwild@example.net\0Trcpt@example.org\0\0', { mode: 0o644 });
    return runQmailQueueMessageFirst({ helper: qmailQueue, user, messageFile, envelopeFile });
  };

  const ours = (message: Buffer, args: readonly string[]) => () => {
    const child = spawn(sendmail, [...args, '-f', 'wild@example.net', 'rcpt@example.org'], { uid: user.uid, gid: user.gid, stdio: ['pipe', 'pipe', 'pipe'], env: {} });
    const output = childOutput(child).finally(() => child.stdin.destroy());
    child.stdin.end(message);
    return output;
  };

  const postfixSendmail = (message: Buffer, args: readonly string[]) => () => {
    const child = spawn('/usr/sbin/sendmail', [...args, '-f', 'wild@example.net', 'rcpt@example.org'], { stdio: ['pipe', 'pipe', 'pipe'], env: { MAIL_CONFIG: postfix.dir } });
    const output = childOutput(child);
    child.stdin.end(message);
    return output;
  };

  it.each(CLASSES)('%s: the native and qmail-queue doors queue what Postfix\'s smtpd queues from the same text', async (_name, input) => {
    const message = Buffer.from(input as string, 'latin1');
    const reference = withoutReceived(await queuedBy(async () => (await sendOverSmtp(postfix.port, 'wild@example.net', 'rcpt@example.org', message)).last));
    expect(withoutReceived(await queuedBy(native(message))).toString('latin1')).toBe(reference.toString('latin1'));
    expect(withoutReceived(await queuedBy(qmail(message))).toString('latin1')).toBe(reference.toString('latin1'));
  }, 60_000);

  it.each(CLASSES)('%s: the sendmail door queues what Postfix\'s sendmail queues, with -i and without', async (_name, input) => {
    const message = Buffer.from(input as string, 'latin1');
    for (const args of [['-i'], []]) {
      const reference = withoutAddedFields(await queuedBy(postfixSendmail(message, args)));
      expect(withoutAddedFields(await queuedBy(ours(message, args)))).toBe(reference);
    }
  }, 60_000);

  it('the sendmail door cuts at a dot line with CRs before its LF, and keeps a last `.` CR as data, as Postfix\'s sendmail', async () => {
    for (const input of [`${HEAD}\nbefore\n.\r\r\nafter\n`, `${HEAD}\nbefore\n.\r`]) {
      const message = Buffer.from(input, 'latin1');
      const reference = withoutAddedFields(await queuedBy(postfixSendmail(message, [])));
      expect(withoutAddedFields(await queuedBy(ours(message, [])))).toBe(reference);
    }
  }, 60_000);
});

const SMUGGLING: ReadonlyArray<readonly [string, string]> = [
  ['LF . CRLF', `${HEAD}\nbefore\n.\r\nMAIL FROM:<evil@example.net>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n`],
  ['CRLF . CR', `${HEAD}\nbefore\r\n.\rMAIL FROM:<evil@example.net>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\n\r\nevil\r\n.\r\n`],
  ['CR . CR', `${HEAD}\nbefore\r.\rMAIL FROM:<evil@example.net>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\n\r\nevil\r\n.\r\n`],
  ['LF . LF', `${HEAD}\nbefore\n.\nMAIL FROM:<evil@example.net>\nRCPT TO:<victim@example.org>\nDATA\n\nevil\n.\n`],
  ['CR LF . CR CR LF', `${HEAD}\nbefore\r\n.\r\r\nMAIL FROM:<evil@example.net>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\n\r\nevil\r\n.\r\n`],
  ['NUL before the dot', `${HEAD}\nbefore\n\0.\r\nMAIL FROM:<evil@example.net>\r\n`],
];

describe.each(['no', 'yes'])('SMTP smuggling stays closed with smtpd_forbid_bare_newline = %s', (forbid) => {
  const sink = new RecordingSink();
  let postfix: PrivatePostfix;
  let ms: MailsubmitUnderTest;
  let user: TestUser;

  beforeAll(async () => {
    ({ postfix, ms } = await startMailPath(sink, { postfix: { queueManager: false, listenerOptions: [`smtpd_forbid_bare_newline=${forbid}`] } }));
    user = ensureUser('mstwild');
    ms.setAuthorizations(['mstwild']);
  }, 30_000);

  afterAll(() => tearDown(ms, postfix, sink));

  it.each(SMUGGLING)('%s: one message queued, its content as smtpd takes the text', async (_name, payload) => {
    const message = Buffer.from(payload, 'latin1');
    const before = new Set(incomingIds(postfix.dir));
    const result = await ms.submit(user, Buffer.concat([Buffer.from('sender: wild@example.net\nrecipient: rcpt@example.org\n\n'), message]));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const ids = await settledNewIds(postfix.dir, before);
    expect(ids).toHaveLength(1);
    const queued = await readQueued(postfix.dir, ids[0] as string);
    expect(queued.sender).toBe('wild@example.net');
    expect(queued.recipients).toEqual(['rcpt@example.org']);
    const content = withoutReceived(queued.content).toString('latin1');
    // Everything the caller wrote is in the one message, the would-be commands as text.
    expect(content).toContain('MAIL FROM:<evil@example.net>');
    // Postfix's smtpd, fed the text as one message with every line end made CRLF, queues the same.
    const text = message.toString('latin1').replace(/\r+\n/g, '\n').replace(/\r/g, ' ');
    const before2 = new Set(incomingIds(postfix.dir));
    expect((await sendOverSmtp(postfix.port, 'wild@example.net', 'rcpt@example.org', Buffer.from(text, 'latin1'))).last).toMatch(/^250 /);
    const [referenceId] = await settledNewIds(postfix.dir, before2);
    expect(content).toBe(withoutReceived((await readQueued(postfix.dir, referenceId as string)).content).toString('latin1'));
  }, 60_000);
});
