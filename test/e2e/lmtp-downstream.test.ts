/**
 * LMTP over a Unix socket as the downstream, against a real LMTP server: a
 * private Dovecot delivering to Maildirs (test/support/private-dovecot.ts).
 *
 * - The native, sendmail and qmail-queue front doors deliver to real
 *   mailboxes byte for byte; Dovecot only puts Return-Path, Delivered-To
 *   (when the transaction has one recipient) and Received on top.
 * - A recipient Dovecot does not know is refused at RCPT: all or nothing,
 *   no DATA, nobody gets it.
 * - 620 recipients in one transaction (past the client's pipelining
 *   window): one final reply each, matched to its recipient; and LMTP over
 *   loopback TCP as well as the Unix socket.
 * - A recipient refused after the final dot (its mailbox over quota) while
 *   the other was delivered in the same transaction: the submission fails
 *   with that recipient's reply, its class decides the exit code, and the
 *   caller is told how many recipients have it already
 *   (docs/submission-interface.md, "LMTP").
 * - The same with a 4xx for a caller who may be queued: the local queue
 *   keeps the message for the recipient that does not have it only; it
 *   neither hands the others another copy nor reports them failed when the
 *   message expires.
 */
import { chmodSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseNotice } from '../support/delivery-status-notices.ts';
import { MailsubmitUnderTest } from '../support/mailsubmit-under-test.ts';
import { PrivateDovecot } from '../support/private-dovecot.ts';
import { runQmailQueueMessageFirst } from '../support/qmail-queue-caller.ts';
import { sendmail } from '../support/sendmail-caller.ts';
import { submissionInput } from '../support/submission-input.ts';
import { ensureUser, removeAll, type TestUser } from '../support/test-accounts.ts';
import { until } from '../support/until.ts';

const ONE = 'one@example.org';
const TWO = 'two@example.org';
/** Over quota: Dovecot refuses it after the final dot with 552 5.2.2. */
const FULL = 'full@example.org';
/** Over quota with quota_full_tempfail: 452 4.2.2 after the final dot. */
const FULL_FOR_NOW = 'full-for-now@example.org';
const QUOTA_OCTETS = 600;
/** A sender with a mailbox: the local queue's notices come back here. */
const SENDER = 'sender@example.org';
/** Past the client's pipelining window (500 commands): final replies read across windows. */
const MANY = Array.from({ length: 620 }, (_, i) => `many-${i}@example.org`);
/** Lines enough to take a message past QUOTA_OCTETS. */
const OVER_QUOTA = 20;

/**
 * The header fields Dovecot's LMTP puts on top of what it was sent:
 * Return-Path, Delivered-To (only when the transaction has one recipient)
 * and a Received field with its continuation lines.
 */
const ADDED_BY_DOVECOT = /^Return-Path: <[^>\n]*>\n(?:Delivered-To: [^\n]+\n)?Received: [^\n]+\n(?:\t[^\n]+\n)*/;

/** A message with every header field a sender sets, a lone dot line, and `filler` lines more. */
function message(id: string, filler = 0): string {
  return [
    'From: Alice <alice@example.net>',
    `To: ${ONE}, ${TWO}`,
    `Subject: over LMTP (${id})`,
    `Message-ID: <${id}@example.net>`,
    'Date: Sun, 06 Dec 2026 09:30:00 +0000',
    '',
    'First line.',
    '.',
    'A line with only a dot above: dot-stuffed on the way, one dot in the mailbox.',
    ...Array.from({ length: filler }, (_, i) => `filler ${i} ${'x'.repeat(60)}`),
    '',
  ].join('\n');
}

/** A stored message split into the fields Dovecot added (their names) and the rest, as it was sent. */
function storedParts(stored: Buffer): { added: string[]; sent: string } {
  const text = stored.toString('latin1');
  const added = ADDED_BY_DOVECOT.exec(text)?.[0] ?? '';
  const names = added.split('\n').filter((line) => /^[^\s]/.test(line)).map((line) => line.slice(0, line.indexOf(':')));
  return { added: names, sent: text.slice(added.length) };
}

describe.skipIf(!PrivateDovecot.isAvailable())('LMTP to a real Dovecot over a Unix socket', () => {
  let dovecot: PrivateDovecot;
  let ms: MailsubmitUnderTest;
  let alice: TestUser;

  /** The copies of the message with this Message-ID id in `address`'s mailbox. */
  const copies = (address: string, id: string): Buffer[] => dovecot.messages(address).filter((m) => m.includes(`Message-ID: <${id}@example.net>`));
  const envelope = (...recipients: string[]): string[] => ['sender: <alice@example.net>', ...recipients.map((r) => `recipient: <${r}>`)];

  beforeAll(async () => {
    dovecot = await PrivateDovecot.start({
      mailboxes: [
        { address: ONE },
        { address: TWO },
        { address: FULL, quotaOctets: QUOTA_OCTETS },
        { address: FULL_FOR_NOW, quotaOctets: QUOTA_OCTETS, quotaFullTempfail: true },
        { address: SENDER },
        ...MANY.map((address) => ({ address })),
      ],
      tcp: true,
    });
    ms = await MailsubmitUnderTest.start({
      downstreamPort: 0,
      downstream: ['transport = "lmtp"', `target = "unix:${dovecot.lmtpSocket}"`].join('\n'),
      // The sendmail door's callers may be queued (the default); retried every second here.
      queue: 'probe_interval = 1\nminimal_backoff_time = 1\nmaximal_backoff_time = 1',
    });
    alice = ensureUser('mstlmtpalice');
    ms.setAuthorizations(['mstlmtpalice']);
  }, 30_000);

  afterAll(async () => {
    await ms?.stop();
    await dovecot?.stop();
    removeAll();
  });

  it('native door: both mailboxes get the message byte for byte; the log names the LMTP reply Dovecot saved it under', async () => {
    const body = message('native-1');
    const { result, logged } = await ms.submitAndLog(alice, submissionInput(envelope(ONE, TWO), body));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(logged).toMatchObject({ status: 'ok', exit: 0, nrcpt: 2, commitment: 'mta' });
    // Dovecot's 250 names the first recipient and its session id, the one in its Received field.
    const session = /^250 2\.0\.0 <one@example\.org> (\S+) Saved$/.exec(String(logged.mta_reply))?.[1];
    expect(session).toBeDefined();
    for (const address of [ONE, TWO]) {
      const [stored] = await dovecot.waitForMessages(address, 1);
      const { added, sent } = storedParts(stored as Buffer);
      expect(added).toEqual(['Return-Path', 'Received']);
      expect(sent).toBe(body);
      expect(stored?.toString('latin1').startsWith(`Return-Path: <alice@example.net>\nReceived: from localhost\n\tby ${dovecot.hostname} with LMTP\n\tid ${session}\n`)).toBe(true);
    }
  });

  it('sendmail door: delivered byte for byte to both mailboxes', async () => {
    const body = message('sendmail-1');
    const result = await sendmail(ms, alice, ['-i', '-f', 'alice@example.net', ONE, TWO], body);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const logged = await ms.waitForSubmission((line) => line.status === 'ok' && line.uid === alice.uid && line.size === Buffer.byteLength(body));
    expect(logged).toMatchObject({ commitment: 'mta', nrcpt: 2, mta_reply: expect.stringMatching(/^250 2\.0\.0 <one@example\.org> \S+ Saved$/) });
    await until(() => copies(ONE, 'sendmail-1').length === 1 && copies(TWO, 'sendmail-1').length === 1, 'both copies');
    for (const address of [ONE, TWO]) expect(storedParts(copies(address, 'sendmail-1')[0] as Buffer)).toEqual({ added: ['Return-Path', 'Received'], sent: body });
  });

  it('qmail-queue door: one recipient, so Dovecot adds Delivered-To as well', async () => {
    const helper = join(dirname(ms.helperPath), 'mailsubmit-qmail-queue');
    symlinkSync(ms.helperPath, helper);
    const files = mkdtempSync(join(ms.dir, 'qq-'));
    chmodSync(files, 0o755);
    const body = message('qmail-queue-1');
    writeFileSync(join(files, 'message'), body, { mode: 0o644 });
    writeFileSync(join(files, 'envelope'), `Falice@example.net\0T${TWO}\0\0`, { mode: 0o644 });
    const result = await runQmailQueueMessageFirst({ helper, user: alice, messageFile: join(files, 'message'), envelopeFile: join(files, 'envelope') });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const logged = await ms.waitForSubmission((line) => line.uid === alice.uid && line.size === Buffer.byteLength(body) && line.nrcpt === 1);
    expect(logged).toMatchObject({ status: 'ok', exit: 0, commitment: 'mta', mta_reply: expect.stringMatching(/^250 2\.0\.0 <two@example\.org> \S+ Saved$/) });
    await until(() => copies(TWO, 'qmail-queue-1').length === 1, 'the copy');
    const stored = copies(TWO, 'qmail-queue-1')[0] as Buffer;
    expect(storedParts(stored)).toEqual({ added: ['Return-Path', 'Delivered-To', 'Received'], sent: body });
    expect(stored.toString('latin1')).toMatch(/^Return-Path: <alice@example\.net>\nDelivered-To: two@example\.org\n/);
  });

  it('620 recipients in one transaction: one final reply each, every mailbox has the message', async () => {
    const body = message('many-1');
    const { result, logged } = await ms.submitAndLog(alice, submissionInput(envelope(...MANY), body));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(logged).toMatchObject({ status: 'ok', nrcpt: MANY.length });
    await until(() => MANY.every((address) => copies(address, 'many-1').length === 1), 'a copy in every mailbox', 30_000);
    expect(storedParts(copies(MANY[MANY.length - 1] as string, 'many-1')[0] as Buffer).sent).toBe(body);
  }, 60_000);

  it('620 recipients and the last one over quota: its reply is matched to it across the pipelining windows', async () => {
    const { result } = await ms.submitAndLog(alice, submissionInput(envelope(...MANY, FULL), message('many-2', OVER_QUOTA)));
    expect(result.code).toBe(69);
    expect(result.stderr).toMatch(
      /^mailsubmit: the MTA refused the message permanently: line 622: attribute "recipient": end of data for <full@example\.org> answered: 552 5\.2\.2 <full@example\.org> Quota exceeded \(mailbox for user is full\); 620 of 621 recipients were delivered and would get it again on a retry\n$/,
    );
    await until(() => MANY.every((address) => copies(address, 'many-2').length === 1), 'a copy in every other mailbox', 30_000);
    expect(copies(FULL, 'many-2')).toHaveLength(0);
  }, 60_000);

  it('LMTP over loopback TCP too: target host:port', async () => {
    const overTcp = await MailsubmitUnderTest.start({ downstreamPort: 0, downstream: ['transport = "lmtp"', `target = "127.0.0.1:${dovecot.port}"`].join('\n') });
    try {
      overTcp.setAuthorizations(['mstlmtpalice']);
      const body = message('tcp-1');
      const { result, logged } = await overTcp.submitAndLog(alice, submissionInput(envelope(TWO), body));
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(logged).toMatchObject({ status: 'ok', mta_reply: expect.stringMatching(/^250 2\.0\.0 <two@example\.org> \S+ Saved$/) });
      await until(() => copies(TWO, 'tcp-1').length === 1, 'the copy');
      const stored = copies(TWO, 'tcp-1')[0] as Buffer;
      expect(storedParts(stored)).toEqual({ added: ['Return-Path', 'Delivered-To', 'Received'], sent: body });
      expect(stored.toString('latin1')).toMatch(/\nReceived: from localhost \(\[127\.0\.0\.1\]\)\n/);
    } finally {
      await overTcp.stop();
    }
  });

  it('a recipient Dovecot does not know: its RCPT 550 is the exit code (67) and nobody gets the message', async () => {
    const { result, logged } = await ms.submitAndLog(alice, submissionInput(envelope(ONE, 'nobody@example.org', TWO), message('unknown-1')));
    expect(result.code).toBe(67);
    expect(result.stderr).toBe(
      'mailsubmit: the MTA refused a recipient permanently: line 3: attribute "recipient": RCPT TO:<nobody@example.org> answered: 550 5.1.1 <nobody@example.org> User doesn\'t exist: nobody@example.org\n',
    );
    expect(logged).toMatchObject({ status: 'recipient-refused', exit: 67 });
    // No DATA was sent: Dovecot logs no delivery for it, and neither mailbox has it.
    expect(dovecot.log()).not.toMatch(/unknown-1/);
    expect(copies(ONE, 'unknown-1')).toHaveLength(0);
    expect(copies(TWO, 'unknown-1')).toHaveLength(0);
  });

  it('a mailbox over quota after the final dot (552): exit 69, never 0; the other recipient has it, and the caller is told so', async () => {
    const { result, logged } = await ms.submitAndLog(alice, submissionInput(envelope(ONE, FULL), message('full-1', OVER_QUOTA)));
    expect(result.code).toBe(69);
    expect(result.stderr).toBe(
      'mailsubmit: the MTA refused the message permanently: line 3: attribute "recipient": end of data for <full@example.org> answered: 552 5.2.2 <full@example.org> Quota exceeded (mailbox for user is full); 1 of 2 recipients were delivered and would get it again on a retry\n',
    );
    expect(logged).toMatchObject({ status: 'message-refused', exit: 69 });
    await dovecot.waitForLog(/lmtp\(full@example\.org\).*save failed to INBOX: Quota exceeded/);
    expect(copies(ONE, 'full-1')).toHaveLength(1);
    expect(copies(FULL, 'full-1')).toHaveLength(0);
  });

  it('a mailbox full for now after the final dot (452), a caller who is not queued: exit 75; a retry delivers to the other recipient again', async () => {
    const input = submissionInput(envelope(FULL_FOR_NOW, ONE), message('full-for-now-1', OVER_QUOTA));
    const first = await ms.submitAndLog(alice, input);
    expect(first.result.code).toBe(75);
    expect(first.result.stderr).toBe(
      'mailsubmit: the MTA refused the message for now: line 2: attribute "recipient": end of data for <full-for-now@example.org> answered: 452 4.2.2 <full-for-now@example.org> Quota exceeded (mailbox for user is full); 1 of 2 recipients were delivered and would get it again on a retry\n',
    );
    expect(first.logged).toMatchObject({ status: 'mta-tempfail', exit: 75 });
    expect(copies(ONE, 'full-for-now-1')).toHaveLength(1);
    // The caller keeps the message and tries again, as 75 tells it to: the duplicate the contract names.
    const again = await ms.submitAndLog(alice, input);
    expect(again.result.code).toBe(75);
    expect(copies(ONE, 'full-for-now-1')).toHaveLength(2);
    expect(copies(FULL_FOR_NOW, 'full-for-now-1')).toHaveLength(0);
  });

  it('a mailbox full for now after the final dot, a caller who is queued (sendmail door): the local queue retries only the recipient that has not got it', async () => {
    const result = await sendmail(ms, alice, ['-i', '-f', 'alice@example.net', FULL_FOR_NOW, ONE], message('full-for-now-2', OVER_QUOTA));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const queued = await ms.waitForSubmission((line) => line.status === 'queued-locally' && line.uid === alice.uid);
    const deferrals = (): number => ms.logLines.filter((line) => line.msg === 'local queue: deferred' && line.queue_id === queued.local_queue_id).length;
    // Three attempts by the queue, each refused for full-for-now@ with 452.
    await until(() => deferrals() >= 3, 'three attempts of the local queue');
    expect(copies(FULL_FOR_NOW, 'full-for-now-2')).toHaveLength(0);
    // one@ took it in the first attempt (the caller's); a retry must not hand it over again.
    expect(copies(ONE, 'full-for-now-2')).toHaveLength(1);
  }, 30_000);

  it('such a message expiring in the local queue: the notice lists as failed only the recipient that never got it', async () => {
    const expiring = await MailsubmitUnderTest.start({
      downstreamPort: 0,
      downstream: ['transport = "lmtp"', `target = "unix:${dovecot.lmtpSocket}"`].join('\n'),
      queue: 'probe_interval = 1\nminimal_backoff_time = 1\nmaximal_backoff_time = 1\nmaximal_queue_lifetime = 2',
    });
    try {
      expiring.setAuthorizations(['mstlmtpalice']);
      const result = await sendmail(expiring, alice, ['-i', '-f', SENDER, FULL_FOR_NOW, ONE], message('expiring-1', OVER_QUOTA));
      expect(result.code).toBe(0);
      await until(() => dovecot.messages(SENDER).some((m) => m.includes('expiring-1')), 'the notice', 30_000);
      const notice = dovecot.messages(SENDER).find((m) => m.includes('expiring-1')) as Buffer;
      const parsed = parseNotice(Buffer.from(storedParts(notice).sent, 'latin1'));
      expect(parsed.recipients).toEqual([expect.objectContaining({ 'final-recipient': `rfc822; ${FULL_FOR_NOW}`, action: 'failed', status: '4.2.2' })]);
    } finally {
      await expiring.stop();
    }
  }, 40_000);
});
