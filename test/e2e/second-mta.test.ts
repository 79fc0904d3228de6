/**
 * The downstream interface is not Postfix's: the same daemon, through the
 * same set-gid helper, delivers into OpenSMTPD (Debian's package, unpacked
 * and run in a private mount namespace, see test/support/second-mta.ts),
 * which relays to the recording sink. OpenSMTPD announces 8BITMIME, SIZE
 * and DSN but neither XFORWARD nor SMTPUTF8, so this file checks that what
 * it cannot take degrades as docs/integrations.md (an MTA other than Postfix) says:
 * client attributes are logged and listed as omitted, mail that needs
 * SMTPUTF8 gets a clear 69 and nothing is sent, and DSN parameters pass.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MailsubmitUnderTest } from '../support/mailsubmit-under-test.ts';
import { crlfForm, RecordingSink, type RecordedMessage } from '../support/recording-sink.ts';
import { SECOND_MTA_HOSTNAME, SecondMta } from '../support/second-mta.ts';
import { submissionInput } from '../support/submission-input.ts';
import { tearDown } from '../support/tear-down.ts';
import { ensureUser, type TestUser } from '../support/test-accounts.ts';

const CLIENT_ENVELOPE = [
  'protocol_name: ESMTP',
  'helo_name: mx.example.net',
  'client_name: mx.example.net',
  'client_address: [192.0.2.25]',
  'client_port: 41234',
  'sasl_method: plain',
  'sasl_username: alice',
];

/** A message with From, Date and Message-ID, so no MTA has a reason to add any. */
function message(id: string, body = 'The figures are attached.\n.\nA line with only a dot above.\n'): Buffer {
  return Buffer.from(
    [
      'From: Alice <alice@example.net>',
      'To: Bob <bob@example.org>',
      `Subject: ${id}`,
      'Date: Tue, 24 Nov 2026 09:30:00 +0000',
      `Message-ID: <${id}@example.net>`,
      '',
      body,
    ].join('\n'),
    'utf8',
  );
}

/** The header fields in front of `tail` in `delivered`, one string per field (continuations joined). */
function addedFields(delivered: Buffer, tail: Buffer): string[] {
  expect(delivered.subarray(delivered.length - tail.length).equals(tail)).toBe(true);
  const prefix = delivered.subarray(0, delivered.length - tail.length).toString('latin1');
  return prefix
    .split(/\r\n(?![ \t])/)
    .filter((field) => field !== '');
}

describe.skipIf(!SecondMta.isAvailable() && !process.env.CI)('mailsubmit into a second MTA (OpenSMTPD)', () => {
  const sink = new RecordingSink();
  let mta: SecondMta;
  let ms: MailsubmitUnderTest;
  let user: TestUser;
  let keywords: string[];

  const arrived = (id: string): Promise<RecordedMessage> => sink.waitForMessage((m) => m.data.includes(`Subject: ${id}\r\n`));

  beforeAll(async () => {
    mta = await SecondMta.start({ relayPort: await sink.listen() });
    ms = await MailsubmitUnderTest.start({ downstreamPort: mta.port });
    user = ensureUser('mstsecondmta');
    ms.setAuthorizations(['mstsecondmta client sasl']);
    keywords = await mta.ehloKeywords();
  });

  afterAll(() => tearDown(ms, undefined, sink).finally(() => mta?.stop()));

  it('announces what this file assumes: DSN and 8BITMIME, no XFORWARD', () => {
    expect(keywords).toEqual(expect.arrayContaining(['DSN', '8BITMIME', 'SIZE']));
    expect(keywords).not.toContain('XFORWARD');
    expect(keywords).not.toContain('XCLIENT');
  });

  it('delivers a plain message byte for byte behind the MTA\'s own Received: field', async () => {
    const content = message('second-mta-plain');
    const result = await ms.submit(user, submissionInput(['sender: <alice@example.net>', 'recipient: <bob@example.org>'], content), ['-v']);
    // OpenSMTPD's reply names its message id, which its own log uses: the caller, the daemon's log and the MTA's log meet there.
    const msgid = /^mailsubmit: queued as ([0-9a-f]{8})\n$/.exec(result.stderr)?.[1];
    expect(result.stderr).toBe(`mailsubmit: queued as ${msgid}\n`);
    expect(result.code).toBe(0);
    const delivered = await arrived('second-mta-plain');
    expect(delivered.mailFrom).toMatch(/^MAIL FROM:<alice@example\.net>/);
    expect(delivered.rcptTo).toEqual([expect.stringMatching(/^RCPT TO:<bob@example\.org>/)]);
    const added = addedFields(delivered.data, crlfForm(content));
    expect(added).toHaveLength(1);
    expect(added[0]).toMatch(/^Received: from localhost \(localhost \[127\.0\.0\.1\]\)\r\n\tby (\S+) \(OpenSMTPD\) with ESMTP id ([0-9a-f]{8})\r\n/);
    expect(added[0]).toContain(`by ${SECOND_MTA_HOSTNAME} (OpenSMTPD) with ESMTP id ${msgid}\r\n`);
    const line = await ms.waitForSubmission((l) => l.status === 'ok' && l.sender === 'alice@example.net' && l.nrcpt === 1 && !('client' in l));
    expect(line).toMatchObject({ exit: 0, uid: user.uid, size: content.length });
    expect(line).not.toHaveProperty('omitted');
    expect(line).toMatchObject({ queue_id: msgid, mta_reply: `250 2.0.0 ${msgid} Message accepted for delivery` });
    expect(mta.log()).toMatch(new RegExp(`smtp message msgid=${msgid} size=\\d+ nrcpt=1 `));
  });

  it('accepts client attributes without XFORWARD: logged, listed as omitted, never sent', async () => {
    const content = message('second-mta-client');
    const envelope = [...CLIENT_ENVELOPE, 'sender: <client@example.net>', 'recipient: <bob@example.org>'];
    const result = await ms.submit(user, submissionInput(envelope, content));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const delivered = await arrived('second-mta-client');
    // What the MTA records is the daemon's connection, not the original client.
    const [received] = addedFields(delivered.data, crlfForm(content));
    expect(received).toMatch(/^Received: from localhost \(localhost \[127\.0\.0\.1\]\)/);
    expect(received).not.toContain('192.0.2.25');
    const line = await ms.waitForSubmission((l) => l.sender === 'client@example.net');
    expect(line).toMatchObject({
      status: 'ok',
      exit: 0,
      client: { protocolName: 'ESMTP', heloName: 'mx.example.net', clientName: 'mx.example.net', clientAddress: '192.0.2.25', clientPort: 41234 },
      sasl: { method: 'plain', username: 'alice' },
    });
    expect(line.omitted).toEqual([
      'XFORWARD NAME (no XFORWARD)',
      'XFORWARD ADDR (no XFORWARD)',
      'XFORWARD PORT (no XFORWARD)',
      'XFORWARD PROTO (no XFORWARD)',
      'XFORWARD HELO (no XFORWARD)',
    ]);
    expect(mta.log()).not.toMatch(/XFORWARD|XCLIENT/i);
  });

  it('passes NOTIFY, ORCPT, RET and ENVID through the MTA to the next hop', async () => {
    const content = message('second-mta-dsn');
    const envelope = [
      'sender: <dsn@example.net>',
      'dsn-envelope-id: 20261124+42',
      'dsn-return-option: headers',
      'recipient: bob@example.org',
      'dsn-notify-options: failure,delay',
      'dsn-orig-rcpt: rfc822;bob+orig@example.org',
      'recipient: <carol@example.org>',
      'dsn-notify-options: success',
    ];
    const result = await ms.submit(user, submissionInput(envelope, content));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const delivered = await arrived('second-mta-dsn');
    expect(delivered.mailFrom).toMatch(/^MAIL FROM:<dsn@example\.net>/);
    expect(delivered.mailFrom).toMatch(/ RET=HDRS(\s|$)/);
    expect(delivered.mailFrom).toMatch(/ ENVID=20261124\+2B42(\s|$)/);
    // What the daemon said to the MTA, per recipient (smtpd's -T smtp trace).
    expect(mta.log()).toContain('<<< MAIL FROM:<dsn@example.net> SIZE=');
    expect(mta.log()).toMatch(/<<< MAIL FROM:<dsn@example\.net> SIZE=\d+ RET=HDRS ENVID=20261124\+2B42\n/);
    expect(mta.log()).toContain('<<< RCPT TO:<bob@example.org> NOTIFY=DELAY,FAILURE ORCPT=rfc822;bob+2Borig@example.org\n');
    expect(mta.log()).toContain('<<< RCPT TO:<carol@example.org> NOTIFY=SUCCESS\n');
    // What the MTA passed on. OpenSMTPD 6.8 keeps DSN state per transaction,
    // not per recipient: a later recipient inherits the earlier ones' NOTIFY
    // keywords and ORCPT (docs/integrations.md (an MTA other than Postfix)), so only the first
    // recipient's parameters are exactly the caller's here.
    const rcpt = (address: string) => delivered.rcptTo.find((l) => l.startsWith(`RCPT TO:<${address}>`)) ?? '';
    expect(rcpt('bob@example.org')).toMatch(/ NOTIFY=(FAILURE,DELAY|DELAY,FAILURE)(\s|$)/);
    expect(rcpt('bob@example.org')).toMatch(/ ORCPT=rfc822;bob\+2Borig@example\.org(\s|$)/i);
    expect(rcpt('carol@example.org')).toMatch(/ NOTIFY=([A-Z]+,)*SUCCESS(,[A-Z]+)*(\s|$)/);
    const line = await ms.waitForSubmission((l) => l.sender === 'dsn@example.net');
    expect(line).toMatchObject({ status: 'ok', nrcpt: 2 });
    expect(line).not.toHaveProperty('omitted');
  });

  it('sends 8-bit mail with BODY=8BITMIME and it arrives unchanged', async () => {
    const content = message('second-mta-8bit', 'Grüße aus Köln, 5 € das Stück.\n');
    const result = await ms.submit(user, submissionInput(['sender: <eight@example.net>', 'recipient: <bob@example.org>'], content));
    expect(result.code).toBe(0);
    const delivered = await arrived('second-mta-8bit');
    expect(addedFields(delivered.data, crlfForm(content))).toHaveLength(1);
    expect(mta.log()).toMatch(/<<< MAIL FROM:<eight@example\.net> SIZE=\d+ BODY=8BITMIME\n/);
    // OpenSMTPD 6.8 does not pass BODY= on to the next hop; the octets arrive intact all the same.
    expect(delivered.data.includes(Buffer.from('Grüße aus Köln, 5 € das Stück.\r\n', 'utf8'))).toBe(true);
    const line = await ms.waitForSubmission((l) => l.sender === 'eight@example.net');
    expect(line).toMatchObject({ status: 'ok', eight_bit: true });
  });

  it('reports the MTA\'s refusal of NOTIFY=NEVER after another NOTIFY, and delivers nothing', async () => {
    const content = message('second-mta-never');
    const envelope = [
      'sender: <never@example.net>',
      'recipient: <bob@example.org>',
      'dsn-notify-options: failure',
      'recipient: <carol@example.org>',
      'dsn-notify-options: never',
    ];
    const result = await ms.submit(user, submissionInput(envelope, content));
    // 553 without an enhanced code at RCPT is a recipient refusal by the documented mapping.
    expect(result.stderr).toMatch(/^mailsubmit: the MTA refused a recipient permanently: line 4: attribute "recipient": RCPT TO:<carol@example\.org> answered: 553 .*NEVER.*\n$/);
    expect(result.code).toBe(67);
    const line = await ms.waitForSubmission((l) => l.sender === 'never@example.net');
    expect(line).toMatchObject({ status: 'recipient-refused', exit: 67 });
    // All or nothing: after the refusal the daemon sent no DATA in that transaction.
    const transaction = mta.log().split('<<< MAIL FROM:<never@example.net>')[1]?.split('<<< MAIL FROM:')[0] ?? '';
    expect(transaction).toContain('<<< RCPT TO:<carol@example.org> NOTIFY=NEVER');
    expect(transaction).not.toContain('<<< DATA');
    const marker = message('second-mta-after-never');
    expect((await ms.submit(user, submissionInput(['sender: <after-never@example.net>', 'recipient: <bob@example.org>'], marker))).code).toBe(0);
    await arrived('second-mta-after-never');
    expect(sink.messages.filter((m) => m.data.includes('Subject: second-mta-never\r\n'))).toEqual([]);
  });

  it('handles internationalized addresses as the MTA\'s SMTPUTF8 allows', async () => {
    const content = message('second-mta-utf8');
    const input = submissionInput(['sender: <jörg@example.net>', 'recipient: <bob@example.org>'], content);
    const result = await ms.submit(user, input);
    const line = await ms.waitForSubmission((l) => l.sender === 'jörg@example.net');
    if (keywords.includes('SMTPUTF8')) {
      expect(result.code).toBe(0);
      const delivered = await arrived('second-mta-utf8');
      expect(delivered.mailFrom).toMatch(/ SMTPUTF8(\s|$)/);
      expect(line).toMatchObject({ status: 'ok' });
      return;
    }
    // The daemon refuses before sending anything: the MTA never sees the sender.
    expect(result.code).toBe(69);
    expect(result.stderr).toBe(
      'mailsubmit: the MTA cannot take internationalized (SMTPUTF8) mail: the envelope has non-ASCII addresses and the MTA does not announce SMTPUTF8\n',
    );
    expect(line).toMatchObject({ status: 'smtputf8-unsupported', exit: 69 });
    // Nothing delivered: a message sent after it arrives, the refused one does not.
    const marker = message('second-mta-after-utf8');
    expect((await ms.submit(user, submissionInput(['sender: <after@example.net>', 'recipient: <bob@example.org>'], marker))).code).toBe(0);
    await arrived('second-mta-after-utf8');
    expect(sink.messages.filter((m) => m.data.includes('Subject: second-mta-utf8\r\n'))).toEqual([]);
    expect(Buffer.from(mta.log(), 'utf8').includes(Buffer.from('jörg', 'utf8'))).toBe(false);
  });
});
