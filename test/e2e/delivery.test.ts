/**
 * What arrives, end to end: a non-root user submits through the set-gid
 * helper, the daemon streams into a private Postfix, Postfix relays to the
 * recording sink. Everything after Postfix's own Received: header must be
 * the message as written, in its CRLF form, byte for byte; the envelope
 * (sender, recipients, DSN parameters, SMTPUTF8, BODY=8BITMIME) must arrive
 * as the caller gave it; XFORWARD facts must reach Postfix's records; and
 * the daemon's log line must describe the submission.
 *
 * Every message carries From, Date and Message-ID: without client
 * attributes the daemon sends XFORWARD SOURCE=LOCAL, and Postfix adds
 * missing Date and Message-Id headers to local mail, as sendmail(1) would.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tearDown } from '../support/tear-down.ts';
import { startMailPath } from '../support/mail-path.ts';
import { MailsubmitUnderTest } from '../support/mailsubmit-under-test.ts';
import { PrivatePostfix } from '../support/private-postfix.ts';
import { crlfForm, RecordingSink, withoutFirstHeaderField, type RecordedMessage } from '../support/recording-sink.ts';
import { submissionInput } from '../support/submission-input.ts';
import { ensureUser, type TestUser } from '../support/test-accounts.ts';

/** Sender that the private Postfix puts on hold, so its queue file can be read with postcat. */
const HELD_SENDER = 'held@example.net';
const FINGERPRINT = createHash('sha256').update('client certificate').digest('hex').toUpperCase().match(/../g)?.join(':') ?? '';

function headers(id: string): string {
  return [
    'From: Sender <sender@example.net>',
    'To: rcpt@example.org',
    `Subject: ${id}`,
    'Date: Tue, 24 Nov 2026 09:30:00 +0000',
    `Message-ID: <${id}@example.net>`,
  ].join('\n');
}

/**
 * About `octets` of pseudo-random printable ASCII in LF lines of 0 to 199
 * characters; every 97th line starts with a dot, so the dot-stuffing on
 * both hops is exercised throughout.
 */
function printableLines(octets: number): Buffer {
  const out = Buffer.alloc(octets + 256);
  let state = 0x2545f491;
  const random = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
  let at = 0;
  for (let line = 0; at < octets; line++) {
    const length = random() % 200;
    const end = at + length;
    if (line % 97 === 0) out[at++] = 0x2e;
    while (at < end) out[at++] = 0x21 + (random() % 94);
    out[at++] = 0x0a;
  }
  return out.subarray(0, at);
}

/** RCPT lines as text, UTF-8 decoded (the sink records command lines as Latin-1). */
const utf8 = (line: string): string => Buffer.from(line, 'latin1').toString('utf8');

describe.skipIf(!PrivatePostfix.isAvailable())('delivery through helper, daemon and Postfix', () => {
  const sink = new RecordingSink();
  let postfix: PrivatePostfix;
  let ms: MailsubmitUnderTest;
  let user: TestUser;

  beforeAll(async () => {
    ({ postfix, ms } = await startMailPath(sink, {
      postfix: {
        listenerOptions: [
          // The original client's port appears in orig_client=NAME[ADDR]:PORT.
          'smtpd_client_port_logging=yes',
          `smtpd_sender_restrictions=check_sender_access,inline:{${HELD_SENDER}=HOLD}`,
        ],
      },
      mailsubmit: { limits: 'max_message_size = 104857600' },
    }));
    user = ensureUser('mstdeliver');
    ms.setAuthorizations(['mstdeliver client sasl tls']);
  }, 30_000);

  afterAll(() => tearDown(ms, postfix, sink));

  /** Submits as the test user; exit 0 is required. Returns Postfix's queue id. */
  async function submitOk(input: Buffer): Promise<string> {
    const result = await ms.submit(user, input, ['-v']);
    expect(result.stderr).toMatch(/^mailsubmit: queued as [0-9A-F]+\n$/);
    expect(result.code).toBe(0);
    return /queued as ([0-9A-F]+)/.exec(result.stderr)?.[1] ?? '';
  }

  /** The sink's copy of the message Postfix queued as `queueId` (its Received: header names the id). */
  function arrival(queueId: string, timeoutMs?: number): Promise<RecordedMessage> {
    const marker = new RegExp(`^Received: [^]*? id ${queueId}\\b`);
    return sink.waitForMessage((m) => marker.test(m.data.subarray(0, 400).toString('latin1')), timeoutMs);
  }

  it('delivers a small message byte for byte, and logs it with the queue id Postfix gave it', async () => {
    const message = Buffer.from(`${headers('small')}\n\nHello Bob,\n\nthree lines of body.\n`, 'latin1');
    const queueId = await submitOk(submissionInput(['sender: sender@example.net', 'recipient: rcpt@example.org'], message));
    const delivered = await arrival(queueId);
    expect(withoutFirstHeaderField(delivered.data).equals(crlfForm(message))).toBe(true);
    expect(delivered.data.toString('latin1')).toMatch(/^Received: from localhost \(localhost \[127\.0\.0\.1\]\)\r\n/);
    expect(delivered.mailFrom).toMatch(/^MAIL FROM:<sender@example\.net> SIZE=\d+$/);
    expect(delivered.rcptTo).toEqual(['RCPT TO:<rcpt@example.org> ORCPT=rfc822;rcpt@example.org']);

    await postfix.waitForLog(new RegExp(`${queueId}: from=<sender@example\\.net>, size=\\d+, nrcpt=1 \\(queue active\\)`));
    const line = await ms.waitForSubmission((l) => l.queue_id === queueId);
    expect(line).toMatchObject({ uid: user.uid, user: 'mstdeliver', sender: 'sender@example.net', nrcpt: 1, size: message.length, status: 'ok', exit: 0 });
    expect(line.sid).toMatch(/^[0-9a-f]{12}$/);
    expect(typeof line.duration_ms).toBe('number');
    expect(line.duration_ms as number).toBeGreaterThan(0);
    // No client, SASL or TLS attributes were given, so none are logged.
    expect(line).not.toHaveProperty('client');
    expect(line).not.toHaveProperty('sasl');
    expect(line).not.toHaveProperty('tls');
  });

  it('records no original client in Postfix for a submission without client attributes', async () => {
    const message = Buffer.from(`${headers('no-client')}\n\nbody\n`, 'latin1');
    const queueId = await submitOk(submissionInput(['sender: sender@example.net', 'recipient: rcpt@example.org'], message));
    const line = await postfix.waitForLog(new RegExp(`${queueId}: client=`));
    expect(line).toMatch(new RegExp(`${queueId}: client=localhost\\[127\\.0\\.0\\.1\\]:\\d+$`));
    expect(line).not.toContain('orig_client');
  });

  it('delivers 8-bit headers and body (Latin-1 and UTF-8 octets) unchanged, declared BODY=8BITMIME', async () => {
    const message = Buffer.concat([
      Buffer.from(`${headers('eight-bit')}\nSubject-Latin1: caf`, 'latin1'),
      Buffer.from([0xe9, 0x20, 0xfc, 0xdf]),
      Buffer.from('\nX-Utf8: Grüße aus Köln ✓\n\nLatin-1: ', 'utf8'),
      Buffer.from([0xc4, 0xd6, 0xdc, 0xe4, 0xf6, 0xfc, 0xff]),
      Buffer.from('\nUTF-8: naïve café — 日本語\n', 'utf8'),
    ]);
    const queueId = await submitOk(submissionInput(['sender: sender@example.net', 'recipient: rcpt@example.org'], message));
    const delivered = await arrival(queueId);
    expect(withoutFirstHeaderField(delivered.data).equals(crlfForm(message))).toBe(true);
    // Postfix relays BODY=8BITMIME only when it was declared to it: an
    // undeclared 8-bit body goes out without it (measured on 3.7). So this
    // parameter at the sink is the daemon's declaration, passed on.
    expect(delivered.mailFrom).toMatch(/^MAIL FROM:<sender@example\.net> SIZE=\d+ BODY=8BITMIME$/);
    const line = await ms.waitForSubmission((l) => l.queue_id === queueId);
    expect(line).toMatchObject({ eight_bit: true, size: message.length });
  });

  it('delivers lines that start with dots, and a last line "." without a line end, unchanged', async () => {
    const message = Buffer.from(`${headers('dots')}\n\n.\n..\n.x\n...\nx.\n \n.`, 'latin1');
    const queueId = await submitOk(submissionInput(['sender: sender@example.net', 'recipient: rcpt@example.org'], message));
    const delivered = await arrival(queueId);
    const body = withoutFirstHeaderField(delivered.data);
    expect(body.equals(crlfForm(message))).toBe(true);
    expect(body.toString('latin1').endsWith('\r\n\r\n.\r\n..\r\n.x\r\n...\r\nx.\r\n \r\n.\r\n')).toBe(true);
  });

  it('delivers the same octets for LF and CRLF input', async () => {
    const lf = Buffer.from(`${headers('line-ends')}\n\nfirst\n\n.leading dot\nlast\n`, 'latin1');
    const crlf = Buffer.from(lf.toString('latin1').replace(/\n/g, '\r\n'), 'latin1');
    const envelope = ['sender: sender@example.net', 'recipient: rcpt@example.org'];
    const fromLf = await arrival(await submitOk(submissionInput(envelope, lf)));
    const fromCrlf = await arrival(await submitOk(Buffer.from(submissionInput(envelope, lf).toString('latin1').replace(/\n/g, '\r\n'), 'latin1')));
    expect(withoutFirstHeaderField(fromLf.data).equals(crlf)).toBe(true);
    expect(withoutFirstHeaderField(fromCrlf.data).equals(crlf)).toBe(true);
    expect(fromLf.mailFrom.replace(/SIZE=\d+/, '')).toBe(fromCrlf.mailFrom.replace(/SIZE=\d+/, ''));
  });

  it('delivers a 20 MB message intact (sha256 of the delivered CRLF form)', async () => {
    const message = Buffer.concat([Buffer.from(`${headers('twenty-megabytes')}\n\n`, 'latin1'), printableLines(20 * 1024 * 1024)]);
    const expected = crlfForm(message);
    const queueId = await submitOk(submissionInput(['sender: sender@example.net', 'recipient: rcpt@example.org'], message));
    const delivered = await arrival(queueId, 40_000);
    const body = withoutFirstHeaderField(delivered.data);
    expect(body.length).toBe(expected.length);
    expect(createHash('sha256').update(body).digest('hex')).toBe(createHash('sha256').update(expected).digest('hex'));
    const line = await ms.waitForSubmission((l) => l.queue_id === queueId);
    expect(line).toMatchObject({ status: 'ok', size: message.length });
  }, 60_000);

  it('passes sender, ENVID, RET and each recipient\'s NOTIFY and ORCPT as given', async () => {
    const message = Buffer.from(`${headers('dsn')}\n\nbody\n`, 'latin1');
    const queueId = await submitOk(
      submissionInput(
        [
          'sender: <dsn-sender@example.net>',
          'dsn-envelope-id: id+1=x/2026',
          'dsn-return-option: full',
          'recipient: a@example.org',
          'dsn-notify-options: delay,success,failure',
          'dsn-orig-rcpt: rfc822;old+alias@example.org',
          'recipient: b@example.org',
          'dsn-notify-options: never',
          'recipient: c@example.org',
          'recipient: d@example.org',
          'dsn-notify-options: failure',
          'dsn-orig-rcpt: list-d@example.org',
        ],
        message,
      ),
    );
    const delivered = await arrival(queueId);
    expect(delivered.mailFrom).toMatch(/^MAIL FROM:<dsn-sender@example\.net> SIZE=\d+ ENVID=id\+2B1\+3Dx\/2026 RET=FULL$/);
    // Postfix writes NOTIFY keywords in its own order and adds ORCPT where none was given.
    expect([...delivered.rcptTo].sort()).toEqual([
      'RCPT TO:<a@example.org> ORCPT=rfc822;old+2Balias@example.org NOTIFY=SUCCESS,FAILURE,DELAY',
      'RCPT TO:<b@example.org> ORCPT=rfc822;b@example.org NOTIFY=NEVER',
      'RCPT TO:<c@example.org> ORCPT=rfc822;c@example.org',
      'RCPT TO:<d@example.org> ORCPT=rfc822;list-d@example.org NOTIFY=FAILURE',
    ]);
    expect(withoutFirstHeaderField(delivered.data).equals(crlfForm(message))).toBe(true);
    const line = await ms.waitForSubmission((l) => l.queue_id === queueId);
    expect(line).toMatchObject({ sender: 'dsn-sender@example.net', nrcpt: 4 });
  });

  it('passes the null sender <>', async () => {
    const message = Buffer.from(`${headers('null-sender')}\n\nA bounce.\n`, 'latin1');
    const queueId = await submitOk(submissionInput(['sender: <>', 'dsn-return-option: headers', 'recipient: rcpt@example.org'], message));
    const delivered = await arrival(queueId);
    expect(delivered.mailFrom).toMatch(/^MAIL FROM:<> SIZE=\d+ RET=HDRS$/);
    expect(withoutFirstHeaderField(delivered.data).equals(crlfForm(message))).toBe(true);
    await postfix.waitForLog(new RegExp(`${queueId}: from=<>`));
    const line = await ms.waitForSubmission((l) => l.queue_id === queueId);
    expect(line).toMatchObject({ sender: '', nrcpt: 1 });
  });

  it('sends SMTPUTF8 for a UTF-8 recipient, and Postfix relays it so', async () => {
    const message = Buffer.from(`${headers('smtputf8')}\n\nbody\n`, 'latin1');
    const queueId = await submitOk(submissionInput(['sender: sender@example.net', 'recipient: jörg@例え.example'], message));
    const delivered = await arrival(queueId);
    // "with UTF8SMTP" is Postfix's record that the daemon's MAIL carried SMTPUTF8.
    expect(utf8(delivered.data.toString('latin1').split('\r\n\r\n')[0] ?? '')).toMatch(/^Received: from localhost \(localhost \[127\.0\.0\.1\]\)\r\n\tby postfix\.test\.localdomain \(Postfix\) with UTF8SMTP id /);
    expect(delivered.mailFrom).toMatch(/^MAIL FROM:<sender@example\.net> SIZE=\d+ SMTPUTF8$/);
    expect(delivered.rcptTo.map(utf8)).toEqual(['RCPT TO:<jörg@例え.example> ORCPT=rfc822;j+C3+B6rg@+E4+BE+8B+E3+81+88.example']);
    expect(withoutFirstHeaderField(delivered.data).equals(crlfForm(message))).toBe(true);
  });

  it('forwards client facts with XFORWARD: in orig_client= and the queue file; SASL and TLS facts are logged', async () => {
    const message = Buffer.from(`${headers('xforward')}\n\nbody\n`, 'latin1');
    const queueId = await submitOk(
      submissionInput(
        [
          'protocol_name: ESMTPSA',
          'helo_name: helo.example.net',
          'client_name: mx.example.net',
          'client_address: [192.0.2.25]',
          'client_port: 41234',
          'sasl_method: PLAIN',
          'sasl_username: remote-alice',
          'sasl_sender: remote-alice@example.net',
          'encryption_protocol: TLSv1.3',
          'encryption_cipher: TLS_AES_256_GCM_SHA384',
          'encryption_keysize: 256',
          'ccert_subject: CN=alice',
          `ccert_fingerprint: ${FINGERPRINT}`,
          `sender: ${HELD_SENDER}`,
          'recipient: rcpt@example.org',
        ],
        message,
      ),
    );
    expect(await postfix.waitForLog(new RegExp(`${queueId}: client=`))).toMatch(
      new RegExp(`${queueId}: client=localhost\\[127\\.0\\.0\\.1\\]:\\d+, orig_client=mx\\.example\\.net\\[192\\.0\\.2\\.25\\]:41234$`),
    );
    // HELO and PROTO are not in any log line; the held queue file has them all.
    await postfix.waitForLog(new RegExp(`${queueId}: message-id=`));
    const queueFile = execFileSync('/usr/sbin/postcat', ['-c', postfix.dir, '-e', '-q', queueId], { encoding: 'utf8' });
    for (const attribute of [
      'log_client_name=mx.example.net',
      'log_client_address=192.0.2.25',
      'log_client_port=41234',
      'log_helo_name=helo.example.net',
      'log_protocol_name=ESMTPSA',
    ]) {
      expect(queueFile).toContain(`named_attribute: ${attribute}\n`);
    }
    execFileSync('/usr/sbin/postsuper', ['-c', postfix.dir, '-H', queueId], { stdio: 'ignore' });
    await postfix.flush();
    const delivered = await arrival(queueId);
    expect(withoutFirstHeaderField(delivered.data).equals(crlfForm(message))).toBe(true);

    const line = await ms.waitForSubmission((l) => l.queue_id === queueId);
    expect(line).toMatchObject({
      user: 'mstdeliver',
      sender: HELD_SENDER,
      status: 'ok',
      client: { protocolName: 'ESMTPSA', heloName: 'helo.example.net', clientName: 'mx.example.net', clientAddress: '192.0.2.25', clientPort: 41234 },
      sasl: { method: 'PLAIN', username: 'remote-alice', sender: 'remote-alice@example.net' },
      tls: { encryptionProtocol: 'TLSv1.3', encryptionCipher: 'TLS_AES_256_GCM_SHA384', encryptionKeysize: 256, ccertSubject: 'CN=alice', ccertFingerprint: FINGERPRINT },
    });
  });
});
