/**
 * The sendmail(1) transport end to end: the daemon (root) hands each
 * submission to Postfix's sendmail with `-C` pointing at a private Postfix
 * instance, which relays to the recording sink. The message must arrive
 * byte for byte after Postfix's Received: header, with sender, recipients,
 * NOTIFY, RET and ENVID as given. ORCPT has no sendmail option: the daemon
 * must say so in its log line instead of dropping it silently.
 *
 * sendmail -N applies to a whole run, so recipients with different NOTIFY
 * settings become separate runs, hence separate queue files and separate
 * arrivals at the sink.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tearDown } from '../support/tear-down.ts';
import { startMailPath } from '../support/mail-path.ts';
import { MailsubmitUnderTest } from '../support/mailsubmit-under-test.ts';
import { PrivatePostfix } from '../support/private-postfix.ts';
import { crlfForm, RecordingSink, withoutFirstHeaderField, type RecordedMessage } from '../support/recording-sink.ts';
import { ensureUser, type TestUser } from '../support/test-accounts.ts';

function message(id: string, eightBit: boolean): Buffer {
  return Buffer.concat([
    Buffer.from(
      [
        'From: Sender <sender@example.net>',
        'To: rcpt@example.org',
        `Subject: ${id}`,
        'Date: Tue, 24 Nov 2026 09:30:00 +0000',
        `Message-ID: <${id}@example.net>`,
        '',
        'A line, then lines sendmail could take for the end without -i:',
        '.',
        '..',
        '.x',
        '',
      ].join('\n'),
      'latin1',
    ),
    eightBit ? Buffer.concat([Buffer.from('8-bit: caf\xe9 ', 'latin1'), Buffer.from('und Grüße\n', 'utf8')]) : Buffer.alloc(0),
    Buffer.from('last line without a line end', 'latin1'),
  ]);
}

describe.skipIf(!PrivatePostfix.isAvailable())('the sendmail transport into a private Postfix', () => {
  const sink = new RecordingSink();
  let postfix: PrivatePostfix;
  let ms: MailsubmitUnderTest;
  let user: TestUser;

  beforeAll(async () => {
    ({ postfix, ms } = await startMailPath(sink, {
      mailsubmit: (pf) => ({ downstream: ['transport = "sendmail"', `sendmail_config_directory = "${pf.dir}"`].join('\n') }),
    }));
    user = ensureUser('mstsendmail');
    ms.setAuthorizations(['mstsendmail']);
  }, 30_000);

  afterAll(() => tearDown(ms, postfix, sink));

  /** Every arrival of the message with this Message-ID, once there are `count` of them. */
  async function arrivals(id: string, count: number): Promise<RecordedMessage[]> {
    const mine = (m: RecordedMessage) => m.data.includes(`\r\nMessage-ID: <${id}@example.net>\r\n`);
    await sink.waitForMessage(() => sink.messages.filter(mine).length >= count);
    return sink.messages.filter(mine);
  }

  it('delivers byte for byte with sender, recipients, NOTIFY, RET and ENVID; ORCPT is logged as omitted', async () => {
    const body = message('one-run', true);
    const input = Buffer.concat([
      Buffer.from(
        [
          'sender: <sendmail-sender@example.net>',
          'dsn-envelope-id: run+1=x',
          'dsn-return-option: headers',
          'recipient: a@example.org',
          'dsn-notify-options: failure,success',
          'dsn-orig-rcpt: rfc822;list-a@example.org',
          'recipient: b@example.org',
          'dsn-notify-options: success,failure',
          '',
          '',
        ].join('\n'),
      ),
      body,
    ]);
    const result = await ms.submit(user, input, ['-v']);
    expect(result.stderr).toBe('mailsubmit: queued\n');
    expect(result.code).toBe(0);

    const [delivered, ...more] = await arrivals('one-run', 1);
    expect(more).toEqual([]);
    expect(withoutFirstHeaderField(delivered?.data ?? Buffer.alloc(0)).equals(crlfForm(body))).toBe(true);
    // BODY=8BITMIME: the daemon declared the 8-bit body with sendmail -B 8BITMIME, as it does with SMTP.
    expect(delivered?.mailFrom).toMatch(/^MAIL FROM:<sendmail-sender@example\.net> SIZE=\d+ BODY=8BITMIME ENVID=run\+2B1\+3Dx RET=HDRS$/);
    // Without an ORCPT from the daemon, Postfix sends each address as its own original recipient.
    expect([...(delivered?.rcptTo ?? [])].sort()).toEqual([
      'RCPT TO:<a@example.org> ORCPT=rfc822;a@example.org NOTIFY=SUCCESS,FAILURE',
      'RCPT TO:<b@example.org> ORCPT=rfc822;b@example.org NOTIFY=SUCCESS,FAILURE',
    ]);

    const line = await ms.waitForSubmission((l) => l.sender === 'sendmail-sender@example.net');
    expect(line).toMatchObject({ status: 'ok', uid: user.uid, user: 'mstsendmail', nrcpt: 2, size: body.length, eight_bit: true, omitted: ['ORCPT for 1 recipient'] });
    expect(line).not.toHaveProperty('queue_id');
    await postfix.waitForLog(/: from=<sendmail-sender@example\.net>, size=\d+, nrcpt=2 \(queue active\)/);
  });

  it('runs sendmail once per NOTIFY setting; every run delivers the same octets (7-bit, null sender)', async () => {
    const body = message('three-runs', false);
    const input = Buffer.concat([
      Buffer.from(
        [
          'sender: <>',
          'dsn-envelope-id: three',
          'dsn-return-option: full',
          'recipient: never@example.org',
          'dsn-notify-options: never',
          'recipient: delay@example.org',
          'dsn-notify-options: delay',
          'recipient: plain@example.org',
          '',
          '',
        ].join('\n'),
      ),
      body,
    ]);
    const result = await ms.submit(user, input);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);

    const delivered = await arrivals('three-runs', 3);
    expect(delivered).toHaveLength(3);
    for (const m of delivered) {
      expect(withoutFirstHeaderField(m.data).equals(crlfForm(body))).toBe(true);
      // A 7-bit message is not declared 8-bit.
      expect(m.mailFrom).toMatch(/^MAIL FROM:<> SIZE=\d+ ENVID=three RET=FULL$/);
    }
    expect(delivered.flatMap((m) => m.rcptTo).sort()).toEqual([
      'RCPT TO:<delay@example.org> ORCPT=rfc822;delay@example.org NOTIFY=DELAY',
      'RCPT TO:<never@example.org> ORCPT=rfc822;never@example.org NOTIFY=NEVER',
      'RCPT TO:<plain@example.org> ORCPT=rfc822;plain@example.org',
    ]);
    const line = await ms.waitForSubmission((l) => l.sender === '' && l.nrcpt === 3);
    expect(line).toMatchObject({ status: 'ok', exit: 0 });
    expect(line).not.toHaveProperty('omitted');
  });
});
