/**
 * MailScanner's Postfix store switched over to mailsubmit (contrib/mailscanner),
 * run by Debian's Perl through a driver that stands in for MailScanner
 * (test/fixtures/mailscanner/drive-store.pl): messages as MailScanner holds
 * them after reading Postfix's hold queue (test/fixtures/mailscanner/
 * store-cases.ts, and one queue file a second private Postfix really put on
 * hold), written out by the store's WriteHeader. The envelopes it writes must
 * pass the daemon's own validator, and through the set-gid helper, the daemon
 * and a private Postfix they must arrive with the DSN parameters and client
 * facts the queue file had. A message the store refuses, or Postfix refuses,
 * stays in MailScanner's queue.
 */
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childOutput, type ChildOutput } from '../support/child-output.ts';
import { tearDown } from '../support/tear-down.ts';
import { MailsubmitUnderTest } from '../support/mailsubmit-under-test.ts';
import { freePort } from '../support/free-port.ts';
import { PrivatePostfix } from '../support/private-postfix.ts';
import { RecordingSink, type RecordedMessage } from '../support/recording-sink.ts';
import { ensureUser, type TestUser } from '../support/test-accounts.ts';
import { CASES, HELD_SESSION, HELD_SUBJECT, HOSTILE, smtpSession, type StoreResult } from '../fixtures/mailscanner/store-cases.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const DRIVER = join(ROOT, 'test', 'fixtures', 'mailscanner', 'drive-store.pl');
const STORE_LIB = join(ROOT, 'contrib', 'mailscanner');
const MAILSUBMITCTL = join(ROOT, 'packages', 'admin-cli', 'dist', 'mailsubmitctl.cjs');
const PERL = '/usr/bin/perl';
const HOOK_TIMEOUT_MS = 60_000;
// This run's own names: a concurrent run of this file must not delete them.
const USER = `mstmscan${process.pid}`;
const GROUP = `mstmscang${process.pid}`;

/** Runs the driver; resolves with its exit code and output. */
function runDriver(args: readonly string[], user?: TestUser): Promise<ChildOutput> {
  return childOutput(spawn(PERL, [DRIVER, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: '/usr/bin:/bin' }, ...(user ? { uid: user.uid, gid: user.gid } : {}) }));
}

function runValidate(file: string): Promise<ChildOutput> {
  return childOutput(spawn(process.execPath, [MAILSUBMITCTL, 'validate', '--json', file], { stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** The sink records lines as latin1; an address with UTF-8 must be compared the same way. */
const wire = (text: string) => Buffer.from(text, 'utf8').toString('latin1');

const perlAvailable = existsSync(PERL);

describe.skipIf((!PrivatePostfix.isAvailable() || !perlAvailable) && !process.env.CI)('MailScanner store through mailsubmit', () => {
  const sink = new RecordingSink();
  let postfix: PrivatePostfix;
  let ms: MailsubmitUnderTest;
  let user: TestUser;
  let work: string;
  /** A Postfix that holds everything, as Postfix is set up in front of MailScanner. */
  let front: PrivatePostfix | undefined;
  let heldId = '';
  const results = new Map<string, StoreResult>();

  beforeAll(async () => {
    postfix = await PrivatePostfix.start({
      relayPort: await sink.listen(),
      listenerOptions: ['{ smtpd_recipient_restrictions = check_recipient_access inline:{ { no-such-user@example.org = 550 5.1.1 no such user here }, { busy@example.org = 450 4.2.1 mailbox busy, try later } }, permit_mynetworks, reject }'],
    });
    ms = await MailsubmitUnderTest.start({ downstreamPort: postfix.port, group: GROUP });
    user = ensureUser(USER);
    ms.setAuthorizations([`${USER} client sasl`]);
    work = mkdtempSync('/tmp/mailsubmit-mailscanner-');
    chmodSync(work, 0o755);
    for (const dir of ['validate-queue', 'validate-out', 'queue']) mkdirSync(join(work, dir));
    chownSync(join(work, 'queue'), user.uid, user.gid);
    front = await PrivatePostfix.start({
      relayPort: await freePort(),
      mainCf: ['header_checks = regexp:{{/^Subject:/ HOLD}}'],
      listenerOptions: ['receive_override_options=', 'smtpd_authorized_xclient_hosts=127.0.0.0/8', 'mynetworks=0.0.0.0/0'],
    });
    const replies = await smtpSession(front.port, HELD_SESSION);
    heldId = /queued as ([0-9A-F]+)/.exec(replies.join(''))?.[1] ?? '';
    await front.waitForLog(new RegExp(`${heldId}: hold: header ${HELD_SUBJECT}`));
    const held = join(work, 'held.queue');
    copyFileSync(join(front.dir, 'queue', 'hold', heldId), held);
    chmodSync(held, 0o644);
    const cases = [...CASES, { name: 'held', id: heldId, queueFile: held }];
    writeFileSync(join(work, 'cases.json'), JSON.stringify({ lib: STORE_LIB, helper: ms.helperPath, cases }), { mode: 0o644 });
  }, HOOK_TIMEOUT_MS);

  afterAll(async () => {
    if (work) rmSync(work, { recursive: true, force: true });
    await front?.stop();
    await tearDown(ms, postfix, sink);
  }, HOOK_TIMEOUT_MS);

  describe('the envelopes it writes, checked by mailsubmitctl validate', () => {
    const verdicts = new Map<string, { code: number | null; json: Record<string, any> }>();

    beforeAll(async () => {
      const printed = await runDriver(['print', join(work, 'cases.json'), join(work, 'validate-queue'), join(work, 'validate-out')]);
      expect(printed.stderr).toBe('');
      expect(printed.code).toBe(0);
      for (const file of readdirSync(join(work, 'validate-out')).filter((f) => f.endsWith('.in'))) {
        const { code, stdout } = await runValidate(join(work, 'validate-out', file));
        verdicts.set(file.replace(/\.in$/, ''), { code, json: JSON.parse(stdout) as Record<string, any> });
      }
    }, HOOK_TIMEOUT_MS);

    it('writes a valid submission for every message it sends, and none for the hostile ones', () => {
      const sendable = [...CASES.filter((c) => !HOSTILE.has(c.name)).map((c) => c.name), 'held'];
      expect([...verdicts.keys()].sort()).toEqual([...sendable].sort());
      for (const name of sendable) {
        expect(verdicts.get(name)?.json.verdict, name).toMatch(/^ok: /);
        expect(verdicts.get(name)?.code, name).toBe(0);
      }
      for (const name of HOSTILE) {
        expect(readFileSync(join(work, 'validate-out', `${name}.refused`), 'utf8')).toMatch(/contains CR, LF or NUL/);
      }
    });

    it('carries NOTIFY, ORCPT (given, or Postfix\'s original recipient), ENVID, RET and the added recipient', () => {
      const envelope = verdicts.get('dsn')?.json.envelope;
      expect(envelope.envelopeId).toBe('20261124+42');
      expect(envelope.returnOption).toBe('HDRS');
      expect(envelope.recipients.map((r: any) => r.address.text)).toEqual(['bob@example.org', 'carol@example.org', 'dave@example.org', 'archive@example.org']);
      expect(envelope.recipients[0].notify.sort()).toEqual(['DELAY', 'FAILURE']);
      expect(envelope.recipients[0].orcpt).toEqual({ type: 'rfc822', value: 'Bob+1@example.org' });
      expect(envelope.recipients[1].orcpt).toEqual({ type: 'rfc822', value: 'info@example.com' });
      expect(envelope.recipients[1].notify).toBeUndefined();
      expect(envelope.recipients[2].notify).toEqual(['NEVER']);
      expect(envelope.recipients[3].orcpt).toBeUndefined();
    });

    it('carries the original client (Postfix\'s log_ attributes) and SASL facts', () => {
      const envelope = verdicts.get('client')?.json.envelope;
      expect(envelope.client).toEqual({
        protocolName: 'ESMTPSA',
        heloName: 'mx.example.net',
        clientName: 'mx.example.net',
        clientAddress: { family: 4, address: '192.0.2.25' },
        clientPort: 41234,
      });
      expect(envelope.sasl).toEqual({ method: 'PLAIN', username: 'carol' });
    });

    it('reads the envelope of a queue file Postfix itself put on hold', () => {
      const envelope = verdicts.get('held')?.json.envelope;
      expect(envelope.sender.text).toBe('kim@example.net');
      expect(envelope.envelopeId).toBe('hold+queue');
      expect(envelope.returnOption).toBe('FULL');
      expect(envelope.recipients.map((r: any) => r.address.text)).toEqual(['lee@example.org', 'mo@example.org']);
      expect(envelope.recipients[0].notify.sort()).toEqual(['FAILURE', 'SUCCESS']);
      expect(envelope.recipients[0].orcpt).toEqual({ type: 'rfc822', value: 'Lee+x@example.org' });
      expect(envelope.recipients[1].notify).toBeUndefined();
      expect(envelope.client).toEqual({
        protocolName: 'ESMTP',
        heloName: 'relay.example.net',
        clientName: 'relay.example.net',
        clientAddress: { family: 4, address: '192.0.2.77' },
        clientPort: 52525,
      });
      // Postfix records a login given by XCLIENT as SASL method XCLIENT.
      expect(envelope.sasl).toEqual({ method: 'XCLIENT', username: 'kim' });
    });

    it('writes the null sender as <>, and a UTF-8 recipient with its utf-8 ORCPT', () => {
      expect(verdicts.get('null-sender')?.json.envelope.sender.text).toBe('');
      const utf8 = verdicts.get('utf8')?.json.envelope.recipients[0];
      expect(utf8.address).toMatchObject({ text: 'dé@example.org', utf8: true });
      expect(utf8.orcpt).toEqual({ type: 'utf-8', value: 'dé@example.org' });
      expect(utf8.notify).toEqual(['FAILURE']);
    });
  });

  describe('delivery through the set-gid helper', () => {
    const delivered = new Map<string, RecordedMessage>();

    beforeAll(async () => {
      const run = await runDriver(['write', join(work, 'cases.json'), join(work, 'queue')], user);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      for (const line of run.stdout.split('\n').filter((l) => l !== '')) {
        const result = JSON.parse(line) as StoreResult;
        results.set(result.name, result);
      }
      const sent = ['plain', 'dsn', 'null-sender', 'client', 'utf8', 'held'];
      const messages = await sink.waitForMessages(sent.length);
      for (const name of sent) {
        const subject = name === 'held' ? HELD_SUBJECT : (CASES.find((c) => c.name === name)?.headers[2] ?? '');
        const message = messages.find((m) => m.data.toString('latin1').includes(`\r\n${wire(subject)}\r\n`));
        if (message) delivered.set(name, message);
      }
    }, HOOK_TIMEOUT_MS);

    function expectSent(name: string): StoreResult {
      const result = results.get(name);
      expect(result?.returned, `${name}: ${result?.log.join(' | ')}`).toBe(1);
      // Gone from MailScanner's queue only now that Postfix has it.
      expect(result?.queued).toBe(false);
      expect(result?.abandoned).toBe(false);
      return result as StoreResult;
    }

    it('hands a plain message over, logs Requeue with Postfix\'s queue id, and the body arrives whole', async () => {
      const result = expectSent('plain');
      const queueId = /^info: Requeue: 4C1A2B3D01 to ([0-9A-F]+)$/.exec(result.log.join('\n'))?.[1];
      expect(queueId).toBeDefined();
      await postfix.waitForLog(new RegExp(`${queueId}: from=<alice@example\\.net>`));
      const message = delivered.get('plain');
      expect(message?.mailFrom).toMatch(/^MAIL FROM:<alice@example\.net> SIZE=\d+/);
      expect(message?.rcptTo).toEqual(['RCPT TO:<bob@example.org> ORCPT=rfc822;bob@example.org']);
      expect(message?.data.toString('latin1')).toMatch(
        /\r\nFrom: <alice@example\.net>\r\nTo: <bob@example\.org>\r\nSubject: mailscanner plain\r\nDate: Tue, 24 Nov 2026 10:00:00 \+0000\r\nMessage-ID: <mailscanner\.plain@example\.net>\r\n\r\nFirst line\.\r\njoined again\r\n\.a line that starts with a dot\r\n$/,
      );
    });

    it('passes ENVID, RET, NOTIFY and ORCPT on to Postfix, which relays them', () => {
      expectSent('dsn');
      const message = delivered.get('dsn');
      expect(message?.mailFrom).toMatch(/^MAIL FROM:<sender@example\.net> /);
      expect(message?.mailFrom).toContain(' ENVID=20261124+2B42');
      expect(message?.mailFrom).toContain(' RET=HDRS');
      expect([...(message?.rcptTo ?? [])].sort()).toEqual([
        'RCPT TO:<archive@example.org> ORCPT=rfc822;archive@example.org',
        'RCPT TO:<bob@example.org> ORCPT=rfc822;Bob+2B1@example.org NOTIFY=FAILURE,DELAY',
        'RCPT TO:<carol@example.org> ORCPT=rfc822;info@example.com',
        'RCPT TO:<dave@example.org> ORCPT=rfc822;dave@example.org NOTIFY=NEVER',
      ]);
      expect(message?.data.toString('latin1')).toMatch(/\r\n\r\nA body MailScanner rebuilt\.\r\n$/);
    });

    it('sends the null sender as MAIL FROM:<>', () => {
      expectSent('null-sender');
      expect(delivered.get('null-sender')?.mailFrom).toMatch(/^MAIL FROM:<> /);
    });

    it('gives Postfix the original client by XFORWARD (its log: orig_client=) and logs the SASL facts', async () => {
      const result = expectSent('client');
      const queueId = /Requeue: 4C1A2B3D04 to ([0-9A-F]+)/.exec(result.log.join('\n'))?.[1] ?? 'none';
      await postfix.waitForLog(new RegExp(`${queueId}: client=localhost\\[127\\.0\\.0\\.1\\], orig_client=mx\\.example\\.net\\[192\\.0\\.2\\.25\\]`));
      const logged = await ms.waitForSubmission((line) => line.queue_id === queueId);
      expect(logged.sasl).toEqual({ method: 'PLAIN', username: 'carol' });
      expect(logged.client).toMatchObject({ clientName: 'mx.example.net', clientAddress: '192.0.2.25', heloName: 'mx.example.net' });
    });

    it('sends a message read back from Postfix\'s hold queue with its DSN parameters and original client', async () => {
      const result = expectSent('held');
      const queueId = new RegExp(`Requeue: ${heldId} to ([0-9A-F]+)`).exec(result.log.join('\n'))?.[1] ?? 'none';
      const message = delivered.get('held');
      expect(message?.mailFrom).toMatch(/^MAIL FROM:<kim@example\.net> /);
      expect(message?.mailFrom).toContain(' ENVID=hold+2Bqueue');
      expect(message?.mailFrom).toContain(' RET=FULL');
      expect([...(message?.rcptTo ?? [])].sort()).toEqual([
        'RCPT TO:<lee@example.org> ORCPT=rfc822;Lee+2Bx@example.org NOTIFY=SUCCESS,FAILURE',
        'RCPT TO:<mo@example.org> ORCPT=rfc822;mo@example.org',
      ]);
      // The front Postfix's Received header travels on as part of the message.
      expect(message?.data.toString('latin1')).toMatch(/\r\nReceived: from relay\.example\.net \(relay\.example\.net \[192\.0\.2\.77\]\)\r\n/);
      expect(message?.data.toString('latin1')).toMatch(/\r\n\r\nHeld by Postfix, read back by the store\.\r\n$/);
      await postfix.waitForLog(new RegExp(`${queueId}: client=localhost\\[127\\.0\\.0\\.1\\], orig_client=relay\\.example\\.net\\[192\\.0\\.2\\.77\\]`));
      const logged = await ms.waitForSubmission((line) => line.queue_id === queueId);
      expect(logged.sasl).toEqual({ method: 'XCLIENT', username: 'kim' });
    });

    it('sends a UTF-8 recipient with SMTPUTF8 and its utf-8 ORCPT', () => {
      expectSent('utf8');
      const message = delivered.get('utf8');
      expect(message?.mailFrom).toContain(' SMTPUTF8');
      expect(message?.rcptTo).toHaveLength(1);
      expect(message?.rcptTo[0]).toMatch(new RegExp(`^RCPT TO:<${wire('dé@example.org')}> ORCPT=utf-8;`));
      expect(message?.rcptTo[0]).toContain(' NOTIFY=FAILURE');
    });

    it('refuses a value with CR or LF: nothing reaches the helper, the message stays queued as a failed attempt', () => {
      for (const name of HOSTILE) {
        const result = results.get(name);
        expect(result?.returned).toBe(0);
        expect(result?.queued).toBe(true);
        expect(result?.abandoned).toBe(true);
        expect(result?.log.join('\n')).toMatch(/^warn: mailsubmit: message 4C1A2B3D0[67] not sent, kept in the queue: the .* contains CR, LF or NUL$/);
      }
      expect(sink.commandLog.join('\n')).not.toContain('evil@example.org');
      expect(ms.submissions().some((line) => JSON.stringify(line).includes('mallory'))).toBe(false);
    });

    it('keeps the message when Postfix refuses one recipient with 550 (exit 67), and delivers nothing', async () => {
      const result = results.get('refused');
      expect(result?.returned).toBe(0);
      expect(result?.queued).toBe(true);
      expect(result?.abandoned).toBe(true);
      expect(result?.log.join('\n')).toMatch(/^warn: mailsubmit: message 4C1A2B3D08 refused \(exit 67, a recipient was refused\), kept in the queue, counted as a failed attempt: mailsubmit: .*550 5\.1\.1/);
      await postfix.waitForLog(/reject: RCPT from localhost\[127\.0\.0\.1\]: 550 5\.1\.1 <no-such-user@example\.org>/);
      expect(sink.messages.some((m) => m.data.toString('latin1').includes('Subject: mailscanner refused'))).toBe(false);
    });

    it('keeps the message, without counting an attempt, when Postfix answers 450 (exit 75)', async () => {
      const result = results.get('tempfail');
      expect(result?.returned).toBe(0);
      expect(result?.queued).toBe(true);
      expect(result?.abandoned).toBe(false);
      expect(result?.log.join('\n')).toMatch(/^warn: mailsubmit: message 4C1A2B3D0A deferred \(exit 75\), kept in the queue to try again: mailsubmit: .*450 4\.2\.1/);
      await postfix.waitForLog(/reject: RCPT from localhost\[127\.0\.0\.1\]: 450 4\.2\.1 <busy@example\.org>/);
      expect(sink.messages.some((m) => m.data.toString('latin1').includes('Subject: mailscanner tempfail'))).toBe(false);
    });

    it('keeps the message, without counting an attempt, when the helper cannot be run', () => {
      const result = results.get('no-helper');
      expect(result?.returned).toBe(0);
      expect(result?.queued).toBe(true);
      expect(result?.abandoned).toBe(false);
      expect(result?.log.join('\n')).toMatch(/^warn: mailsubmit: message 4C1A2B3D09 not sent \(exit 78, mailsubmit is not set up right\), kept in the queue: mailsubmit: cannot run \/nonexistent\/mailsubmit: No such file or directory$/);
    });
  });
});
