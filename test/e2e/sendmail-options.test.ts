/**
 * Every option of Postfix's sendmail(1), side by side: the same argv and
 * input through Postfix's own /usr/sbin/sendmail (MAIL_CONFIG naming a
 * private instance) and through mailsubmit-sendmail, the same exit code
 * and, where one queues a message, the other too. `-bs` runs the same SMTP
 * client scripts against both dialogues and compares the reply codes.
 * docs/compatibility.md ("Command-line options") is the table these rows check.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SideBySide, type DoorRun } from '../support/side-by-side.ts';

const MESSAGE = 'Subject: options\n\nbody\n';

/** argv after "sendmail", and what both must do: the exit code, and whether a message is queued. */
const ROWS: readonly (readonly [readonly string[], number, boolean])[] = [
  [['a@example.org'], 0, true],
  [['-B8BITMIME', 'a@example.org'], 0, true],
  [['-B', '7BIT', 'a@example.org'], 0, true],
  [['-B', '8bitmime', 'a@example.org'], 75, false],
  [['-bm', 'a@example.org'], 0, true],
  [['-bh'], 0, false],
  [['-bH', 'a@example.org'], 0, false],
  [['-q1h'], 0, false],
  [['-q30m', 'a@example.org'], 0, false],
  [['-q', 'a@example.org'], 75, false],
  [['-qR'], 75, false],
  [['-qI'], 75, false],
  [['-qx'], 75, false],
  [['-qRsite', 'a@example.org'], 75, false],
  [['-bp', 'a@example.org'], 75, false],
  [['-bi', 'a@example.org'], 75, false],
  [['-I', 'a@example.org'], 75, false],
  [['-bd', 'a@example.org'], 75, false],
  [['-bs', 'a@example.org'], 75, false],
  [['-bu'], 75, false],
  [['-bx', 'a@example.org'], 75, false],
  [['-b'], 75, false],
  [['-bv'], 75, false],
  [['-bv', '-t', 'a@example.org'], 75, false],
  [['-bv', '-N', 'success', 'a@example.org'], 75, false],
  [['-bv', '-v', 'a@example.org'], 75, false],
  [['-t', '-bp'], 75, false],
  [['-n', 'a@example.org'], 75, false],
  [['-X', 'a@example.org'], 75, false],
  [['-XVab', 'a@example.org'], 75, false],
  [['-XV', 'a@example.org'], 0, true],
  [['-XV+=', 'a@example.org'], 0, true],
  [['-V+=', 'a@example.org'], 0, true],
  [['-V', 'an envid with spaces', 'a@example.org'], 0, true],
  [['-V', 'tab\there', 'a@example.org'], 0, true],
  [['-SMTPUTF8', 'a@example.org'], 75, false],
  [['-z', 'a@example.org'], 75, false],
  [['-f'], 75, false],
  [['-oA', 'a@example.org'], 75, false],
  [['-oA/etc/aliases', 'a@example.org'], 0, true],
  [['-o7', '-o8', '-oB', '-oee', '-odb', '-om', '-ov', 'a@example.org'], 0, true],
  [['-oi', '-i', '-G', '-h', '20', '-L', 'x', '-O', 'a=b', '-U', '-c', '-m', '-x', '-e', 'm', '-Am', '-p', 'smtp', 'a@example.org'], 0, true],
  [['-N', 'bogus', '-R', 'body', 'a@example.org'], 0, true],
  [['-ti'], 75, false],
  [['-t', 'a@example.org'], 0, true],
  [['-tq', 'a@example.org'], 75, false],
];

describe.skipIf(!SideBySide.isAvailable() && !process.env.CI)('sendmail options, side by side with Postfix', () => {
  let sbs: SideBySide;
  beforeAll(async () => {
    sbs = await SideBySide.start();
  }, 60_000);
  afterAll(() => sbs?.stop());

  const both = (args: readonly string[], input: string) => sbs.runBoth(['/usr/sbin/sendmail', ...args], { input, timeoutMs: 30_000 });

  it.each(ROWS)('sendmail %j: exit %i, queued %s, for both', async (args, code, queued) => {
    const { postfix, mailsubmit } = await both(args, MESSAGE);
    expect([postfix.code, mailsubmit.code], postfix.stderr + mailsubmit.stderr).toEqual([code, code]);
    expect([postfix.queued.length > 0, mailsubmit.queued.length > 0]).toEqual([queued, queued]);
    // A refusal says why on standard error, on both sides.
    if (code !== 0) expect([postfix.stderr !== '', mailsubmit.stderr !== '']).toEqual([true, true]);
  }, 60_000);

  // The MTA's own tools: Postfix runs them, mailsubmit-sendmail says which tool to run (69).
  it.each([
    [['-bp'], 0],
    // -q: postqueue -f; the harness's Postfix runs no queue manager (no public/qmgr), so postqueue
    // answers "Cannot flush mail queue - mail system is down" with EX_UNAVAILABLE (69).
    [['-q'], 69, /^postqueue: fatal: Cannot flush mail queue - mail system is down$/m],
    [['-bi'], 0],
  ] as const)('sendmail %j: Postfix exits %i, mailsubmit-sendmail 69 naming the MTA\'s tool, nothing queued', async (args, postfixCode, postfixSays?: RegExp) => {
    const { postfix, mailsubmit } = await both(args, MESSAGE);
    expect(postfix.code, postfix.stderr).toBe(postfixCode);
    if (postfixSays !== undefined) expect(postfix.stderr).toMatch(postfixSays);
    expect(mailsubmit.code).toBe(69);
    expect(mailsubmit.stderr).toMatch(/^mailsubmit-sendmail: .*MTA's/);
    expect(mailsubmit.queued).toHaveLength(0);
  }, 60_000);

  it('-bv: exit 0 and the same line on standard output; the report goes to the sender, nothing to the address', async () => {
    const { postfix, mailsubmit } = await both(['-bv', 'a@example.org'], MESSAGE);
    expect([postfix.code, mailsubmit.code], postfix.stderr + mailsubmit.stderr).toEqual([0, 0]);
    expect(postfix.stdout.toString()).toBe('Mail Delivery Status Report will be mailed to <root>.\n');
    expect(mailsubmit.stdout.toString()).toBe(postfix.stdout.toString());
    expect(mailsubmit.stderr).toBe('');
    // Postfix queued its probe (trace only); mailsubmit the report it wrote from the MTA's RCPT reply.
    expect(postfix.queued).toHaveLength(1);
    expect(mailsubmit.queued).toHaveLength(1);
    const report = mailsubmit.queued[0]!;
    expect(report.sender).toBe('');
    expect(report.recipients).toEqual([expect.stringMatching(/^root(@|$)/)]);
    const content = report.content.toString('utf8');
    expect(content).toMatch(/^Subject: Mail Delivery Status Report$/m);
    expect(content).toMatch(/^<a@example\.org>: deliverable: the MTA accepted the address \(250 /m);
    expect(content).toMatch(/^Final-Recipient: rfc822; a@example\.org\nAction: deliverable\nStatus: 2\./m);
  }, 60_000);

  it('keeps an -V envelope id with spaces, as Postfix does', async () => {
    const { postfix, mailsubmit } = await both(['-V', 'an envid with spaces', 'a@example.org'], MESSAGE);
    const envid = (run: DoorRun) => [...(run.queued[0]?.envelope.values() ?? [])].flat().join('\n');
    expect(envid(postfix)).toContain('an envid with spaces');
    expect(envid(mailsubmit)).toContain('an envid with spaces');
  }, 60_000);
});

describe.skipIf(!SideBySide.isAvailable() && !process.env.CI)('sendmail -bv, with an address the MTA refuses', () => {
  let sbs: SideBySide;
  beforeAll(async () => {
    // The listener refuses one address, as a Postfix refuses an unknown local user.
    sbs = await SideBySide.start({
      listenerOptions: ['{ smtpd_recipient_restrictions = check_recipient_access inline:{{bad@example.org = 550 5.1.1 User unknown in local recipient table}} permit_mynetworks reject }'],
    });
  }, 60_000);
  afterAll(() => sbs?.stop());

  it('reports each address with its verdict to the -f sender, and delivers nothing to either', async () => {
    const args = ['/usr/sbin/sendmail', '-bv', '-f', 'asker@example.net', 'a@example.org', 'bad@example.org'];
    const { postfix, mailsubmit } = await sbs.runBoth(args, { input: MESSAGE, timeoutMs: 30_000 });
    expect([postfix.code, mailsubmit.code], postfix.stderr + mailsubmit.stderr).toEqual([0, 0]);
    expect(mailsubmit.stdout.toString()).toBe('Mail Delivery Status Report will be mailed to <asker@example.net>.\n');
    expect(mailsubmit.stdout.toString()).toBe(postfix.stdout.toString());
    // One message only, the report, from <> to the sender: none for a@example.org or bad@example.org.
    expect(mailsubmit.queued.map((m) => [m.sender, [...m.recipients]])).toEqual([['', ['asker@example.net']]]);
    const content = mailsubmit.queued[0]!.content.toString('utf8');
    expect(content).toMatch(/^<a@example\.org>: deliverable: the MTA accepted the address \(250 /m);
    expect(content).toMatch(/^<bad@example\.org>: undeliverable: the MTA refused the address \(550 5\.1\.1 <bad@example\.org>: Recipient address rejected: User unknown in local recipient table\)$/m);
    expect(content).toMatch(/^Final-Recipient: rfc822; a@example\.org\nAction: deliverable\n/m);
    expect(content).toMatch(/^Final-Recipient: rfc822; bad@example\.org\nAction: undeliverable\nStatus: 5\.1\.1\nDiagnostic-Code: smtp; 550 5\.1\.1 /m);
  }, 60_000);

  it('refuses a sender the caller may not use, before asking the MTA (77), and queues nothing', async () => {
    sbs.mailsubmit.setAuthorizations(['root sender=own']);
    try {
      const run = await sbs.run('mailsubmit', ['/usr/sbin/sendmail', '-bv', '-f', 'someone@example.net', 'a@example.org'], { input: '', timeoutMs: 30_000 });
      expect(run.code).toBe(77);
      expect(run.stdout.toString()).toBe('');
      expect(run.stderr).toMatch(/may not use the envelope sender <someone@example\.net>/);
      expect(run.queued).toHaveLength(0);
    } finally {
      sbs.mailsubmit.setAuthorizations(['root']);
    }
  }, 60_000);
});

const crlf = (lines: readonly string[]) => `${lines.join('\r\n')}\r\n`;
/** The reply codes of a dialogue, greeting first, one per reply (multi-line replies counted once). */
const codes = (run: DoorRun) =>
  run.stdout
    .toString('latin1')
    .split('\r\n')
    .filter((line) => /^\d{3} /.test(line))
    .map((line) => line.slice(0, 3));

describe.skipIf(!SideBySide.isAvailable() && !process.env.CI)('sendmail -bs, side by side with Postfix', () => {
  let sbs: SideBySide;
  beforeAll(async () => {
    sbs = await SideBySide.start();
  }, 60_000);
  afterAll(() => sbs?.stop());

  const dialogue = (lines: readonly string[]) => sbs.runBoth(['/usr/sbin/sendmail', '-bs'], { input: crlf(lines), timeoutMs: 60_000 });
  const message = (subject: string) => ['DATA', `Subject: ${subject}`, 'From: a@example.net', '', 'body', '..dot-stuffed', '.'];

  it('offers what a client needs in EHLO', async () => {
    const { postfix, mailsubmit } = await dialogue(['EHLO client.example', 'QUIT']);
    for (const run of [postfix, mailsubmit]) {
      const text = run.stdout.toString('latin1');
      for (const keyword of ['PIPELINING', 'SIZE', '8BITMIME', 'DSN', 'SMTPUTF8', 'ENHANCEDSTATUSCODES']) expect(text, `${run.door} ${keyword}`).toMatch(new RegExp(`^250[- ]${keyword}\\b`, 'm'));
    }
    expect([postfix.code, mailsubmit.code]).toEqual([0, 0]);
  }, 120_000);

  it('delivers a good message, with the same replies and the body unstuffed', async () => {
    const { postfix, mailsubmit } = await dialogue(['EHLO client.example', 'MAIL FROM:<a@example.net>', 'RCPT TO:<b@example.org>', ...message('bs-good'), 'QUIT']);
    expect(codes(mailsubmit)).toEqual(codes(postfix));
    expect(codes(mailsubmit)).toEqual(['220', '250', '250', '250', '354', '250', '221']);
    expect([postfix.code, mailsubmit.code]).toEqual([0, 0]);
    expect(mailsubmit.queued).toHaveLength(1);
    expect(postfix.queued).toHaveLength(1);
    expect(mailsubmit.queued[0]?.content.toString('latin1')).toContain('\n.dot-stuffed\n');
    expect(mailsubmit.queued[0]?.recipients).toEqual(['b@example.org']);
  }, 120_000);

  it('answers bad recipients and bad commands as Postfix does', async () => {
    const { postfix, mailsubmit } = await dialogue([
      'HELO client.example',
      'RCPT TO:<b@example.org>',
      'DATA',
      'MAIL FROM:<a@example.net> FOO=bar',
      'MAIL FROM:<a@example.net>',
      'MAIL FROM:<a@example.net>',
      'RCPT TO:<b c@example.org>',
      'RCPT TO:<>',
      'RCPT TO:<b@example.org> NOTIFY=BOGUS',
      'RCPT TO:b@example.org',
      'RSET',
      'NOOP',
      'STARTTLS',
      'AUTH PLAIN x',
      'HELP',
      'QUIT',
    ]);
    expect(codes(mailsubmit)).toEqual(codes(postfix));
    expect([postfix.code, mailsubmit.code]).toEqual([0, 0]);
    expect(mailsubmit.queued).toHaveLength(0);
  }, 120_000);

  it('takes two messages in one pipelined session', async () => {
    const { postfix, mailsubmit } = await dialogue([
      'EHLO client.example',
      'MAIL FROM:<a@example.net>',
      'RCPT TO:<one@example.org>',
      ...message('bs-first'),
      'MAIL FROM:<a@example.net>',
      'RCPT TO:<two@example.org>',
      'RCPT TO:<three@example.org>',
      ...message('bs-second'),
      'QUIT',
    ]);
    expect(codes(mailsubmit)).toEqual(codes(postfix));
    expect([postfix.queued.length, mailsubmit.queued.length]).toEqual([2, 2]);
  }, 120_000);

  it('delivers nothing when the client goes away in the middle of DATA', async () => {
    const { postfix, mailsubmit } = await dialogue(['EHLO client.example', 'MAIL FROM:<a@example.net>', 'RCPT TO:<b@example.org>', 'DATA', 'Subject: bs-cut', '', 'half a message']);
    expect(codes(mailsubmit)).toEqual(codes(postfix));
    expect([postfix.code, mailsubmit.code]).toEqual([0, 0]);
    expect([postfix.queued.length, mailsubmit.queued.length]).toEqual([0, 0]);
  }, 120_000);
});
