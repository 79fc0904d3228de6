/**
 * Postfix itself refusing, end to end: access maps on the re-injection
 * listener refuse chosen senders and recipients at MAIL, RCPT, DATA and the
 * end of data. For each refusal the caller of the set-gid helper must get the
 * exit code of the contract's table, one line on stderr carrying the MTA's
 * own words, and nothing may be delivered or left in Postfix's queue (all or
 * nothing: a refused recipient means no DATA for the accepted ones either).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { tearDown } from '../support/tear-down.ts';
import { startMailPath } from '../support/mail-path.ts';
import { MailsubmitUnderTest, type SubmitResult } from '../support/mailsubmit-under-test.ts';
import { PrivatePostfix } from '../support/private-postfix.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import { ensureUser, type TestUser } from '../support/test-accounts.ts';

/** Starting Postfix and a daemon (the helper is compiled each time) is slow on a busy machine. */
const HOOK_TIMEOUT_MS = 60_000;
// Names of this run's own: a concurrent run of this file must not delete them under us.
const USER = `mstrefuse${process.pid}`;
const GROUP = `mstrefuseg${process.pid}`;

/** Postfix's inline: tables with values that contain spaces need the `{ key = value }` form. */
function inlineTable(entries: Readonly<Record<string, string>>): string {
  return `inline:{ ${Object.entries(entries)
    .map(([key, value]) => `{ ${key} = ${value} }`)
    .join(', ')} }`;
}

/** A master.cf `-o` whose value has spaces: Postfix 3's `-o { name = value }` form. */
function option(name: string, value: string): string {
  return `{ ${name} = ${value} }`;
}

const REFUSING_LISTENER = [
  // Sender restrictions are applied at RCPT unless told otherwise.
  'smtpd_delay_reject=no',
  option(
    'smtpd_sender_restrictions',
    `check_sender_access ${inlineTable({
      'mail-tempfail@example.org': '450 4.7.1 sender greylisted for now',
      'mail-refused@example.org': '554 5.7.1 sender blocked by policy',
    })}`,
  ),
  option(
    'smtpd_recipient_restrictions',
    `check_recipient_access ${inlineTable({
      'no-such-user@example.org': '550 5.1.1 no such user here',
      'busy@example.org': '450 4.2.1 mailbox busy, try later',
    })}, permit_mynetworks, reject`,
  ),
  option('smtpd_data_restrictions', `check_sender_access ${inlineTable({ 'data-refused@example.org': '554 5.7.1 no DATA from this sender' })}`),
  option(
    'smtpd_end_of_data_restrictions',
    `check_sender_access ${inlineTable({
      'eod-tempfail@example.org': '451 4.7.1 content check unavailable',
      'eod-refused@example.org': '554 5.7.1 content refused by policy',
    })}`,
  ),
];

function submission(sender: string, recipients: readonly string[]): string {
  return [
    `sender: <${sender}>`,
    ...recipients.map((r) => `recipient: <${r}>`),
    '',
    `From: <${sender}>`,
    `To: ${recipients.map((r) => `<${r}>`).join(', ')}`,
    'Subject: refusal test',
    '',
    'This message must not be delivered.',
    '',
  ].join('\n');
}

describe.skipIf(!PrivatePostfix.isAvailable())('Postfix refusing a submission', () => {
  const sink = new RecordingSink();
  let postfix: PrivatePostfix;
  let ms: MailsubmitUnderTest;
  let user: TestUser;
  let logMark = 0;

  beforeAll(async () => {
    ({ postfix, ms } = await startMailPath(sink, { postfix: { listenerOptions: REFUSING_LISTENER }, mailsubmit: { group: GROUP } }));
    user = ensureUser(USER);
    ms.setAuthorizations([USER]);
  }, HOOK_TIMEOUT_MS);

  afterAll(() => tearDown(ms, postfix, sink), HOOK_TIMEOUT_MS);

  beforeEach(() => {
    logMark = postfix.log().length;
  });

  /** Postfix's log lines written since this test began. */
  const logSinceStart = () => postfix.log().slice(logMark);

  async function submitAndLog(sender: string, recipients: readonly string[]): Promise<{ result: SubmitResult; logged: Record<string, unknown> }> {
    return ms.submitAndLog(user, submission(sender, recipients));
  }

  function expectOneLine(result: SubmitResult, words: string): void {
    expect(result.stderr).toMatch(/^mailsubmit: [^\n]+\n$/);
    expect(result.stderr).toContain(words);
  }

  async function expectNothingDelivered(deliveredBefore: number): Promise<void> {
    await postfix.flushAndWait();
    expect(sink.messages.length).toBe(deliveredBefore);
    expect(await postfix.queueSize()).toBe(0);
  }

  it('delivers to an address nothing refuses (the maps do not block ordinary mail)', async () => {
    const { result, logged } = await submitAndLog('someone@example.org', ['ok@example.org']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(logged.status).toBe('ok');
    const [message] = await sink.waitForMessages(1);
    expect(message?.rcptTo).toHaveLength(1);
    expect(message?.rcptTo[0]).toMatch(/^RCPT TO:<ok@example\.org>/);
  });

  it('4xx at MAIL: 75 (mta-tempfail)', async () => {
    const delivered = sink.messages.length;
    const { result, logged } = await submitAndLog('mail-tempfail@example.org', ['ok@example.org']);
    expectOneLine(result, '450 4.7.1');
    expect(result.stderr).toContain('sender greylisted for now');
    expect(result.code).toBe(75);
    expect(logged.status).toBe('mta-tempfail');
    await postfix.waitForLog(/reject: MAIL from localhost\[127\.0\.0\.1\]: 450 4\.7\.1 <mail-tempfail@example\.org>/, 10_000, logMark);
    await expectNothingDelivered(delivered);
  });

  it('5xx at MAIL: 69 (message-refused)', async () => {
    const delivered = sink.messages.length;
    const { result, logged } = await submitAndLog('mail-refused@example.org', ['ok@example.org']);
    expectOneLine(result, '554 5.7.1');
    expect(result.stderr).toContain('sender blocked by policy');
    expect(result.code).toBe(69);
    expect(logged.status).toBe('message-refused');
    await postfix.waitForLog(/reject: MAIL from localhost\[127\.0\.0\.1\]: 554 5\.7\.1 <mail-refused@example\.org>/, 10_000, logMark);
    await expectNothingDelivered(delivered);
  });

  it('5xx 5.1.1 at RCPT: 67 (recipient-refused)', async () => {
    const delivered = sink.messages.length;
    const { result, logged } = await submitAndLog('someone@example.org', ['no-such-user@example.org']);
    expectOneLine(result, '550 5.1.1');
    expect(result.stderr).toContain('no such user here');
    expect(result.code).toBe(67);
    expect(logged.status).toBe('recipient-refused');
    await postfix.waitForLog(/reject: RCPT from localhost\[127\.0\.0\.1\]: 550 5\.1\.1 <no-such-user@example\.org>/, 10_000, logMark);
    await expectNothingDelivered(delivered);
  });

  it('one recipient of three refused with 4xx, another with 5xx: 75, and the accepted one gets nothing (RSET, no DATA)', async () => {
    const delivered = sink.messages.length;
    const { result, logged } = await submitAndLog('someone@example.org', ['ok@example.org', 'no-such-user@example.org', 'busy@example.org']);
    // The worst class is the temporary one: the 4xx is what the caller reads.
    expectOneLine(result, '450 4.2.1');
    expect(result.stderr).toContain('mailbox busy, try later');
    expect(result.code).toBe(75);
    expect(logged.status).toBe('mta-tempfail');
    await expectNothingDelivered(delivered);
    // Postfix's own account of the session: three RCPTs, one accepted, then
    // RSET, and no DATA command at all.
    const disconnect = await postfix.waitForLog(/disconnect from localhost\[127\.0\.0\.1\].* rcpt=1\/3/, 10_000, logMark);
    expect(disconnect).toMatch(/ rset=1\b/);
    expect(disconnect).not.toMatch(/ data=/);
    expect(logSinceStart()).not.toMatch(/lost connection after DATA/);
  });

  it('5xx at DATA: 69 (message-refused)', async () => {
    const delivered = sink.messages.length;
    const { result, logged } = await submitAndLog('data-refused@example.org', ['ok@example.org']);
    expectOneLine(result, '554 5.7.1');
    expect(result.stderr).toContain('no DATA from this sender');
    expect(result.code).toBe(69);
    expect(logged.status).toBe('message-refused');
    await postfix.waitForLog(/reject: DATA from localhost\[127\.0\.0\.1\]: 554 5\.7\.1 <data-refused@example\.org>/, 10_000, logMark);
    await expectNothingDelivered(delivered);
  });

  it('4xx at the end of data: 75 (mta-tempfail)', async () => {
    const delivered = sink.messages.length;
    const { result, logged } = await submitAndLog('eod-tempfail@example.org', ['ok@example.org']);
    expectOneLine(result, '451 4.7.1');
    expect(result.stderr).toContain('content check unavailable');
    expect(result.code).toBe(75);
    expect(logged.status).toBe('mta-tempfail');
    await postfix.waitForLog(/reject: END-OF-MESSAGE from localhost\[127\.0\.0\.1\]: 451 4\.7\.1 <eod-tempfail@example\.org>/, 10_000, logMark);
    await expectNothingDelivered(delivered);
  });

  it('5xx at the end of data: 69 (message-refused)', async () => {
    const delivered = sink.messages.length;
    const { result, logged } = await submitAndLog('eod-refused@example.org', ['ok@example.org']);
    expectOneLine(result, '554 5.7.1');
    expect(result.stderr).toContain('content refused by policy');
    expect(result.code).toBe(69);
    expect(logged.status).toBe('message-refused');
    await postfix.waitForLog(/reject: END-OF-MESSAGE from localhost\[127\.0\.0\.1\]: 554 5\.7\.1 <eod-refused@example\.org>/, 10_000, logMark);
    await expectNothingDelivered(delivered);
  });
});
