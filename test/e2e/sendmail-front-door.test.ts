/**
 * The sendmail-style front door end to end: the set-gid helper started as
 * `mailsubmit-sendmail` (a symlink beside it, so argv[0] picks the mode and
 * the binary keeps its set-gid bits), options and recipients on the command
 * line, the bare message on stdin, through a private Postfix to the
 * recording sink. Checks what arrives: MAIL FROM and RCPT TO with their DSN
 * parameters, the message with Bcc removed byte for byte, the dot rule with
 * and without -i, and the sysexits codes of refusals.
 */
import { spawn } from 'node:child_process';
import { symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childOutput } from '../support/child-output.ts';
import { tearDown } from '../support/tear-down.ts';
import { startMailPath } from '../support/mail-path.ts';
import { MailsubmitUnderTest, type SubmitResult } from '../support/mailsubmit-under-test.ts';
import { PrivatePostfix } from '../support/private-postfix.ts';
import { RecordingSink, withoutFirstHeaderField, type RecordedMessage } from '../support/recording-sink.ts';
import { ensureUser, type TestUser } from '../support/test-accounts.ts';

const crlf = (text: string) => text.replace(/\n/g, '\r\n');

describe.skipIf(!PrivatePostfix.isAvailable() && !process.env.CI)('the sendmail front door', () => {
  const sink = new RecordingSink();
  let postfix: PrivatePostfix;
  let ms: MailsubmitUnderTest;
  let sendmail: string;
  /** A second daemon with `[limits] strict_message_syntax = true`, and its mailsubmit-sendmail. */
  let strict: MailsubmitUnderTest | undefined;
  let strictSendmail: string;
  let user: TestUser;
  let ownOnly: TestUser;

  beforeAll(async () => {
    ({ postfix, ms } = await startMailPath(sink));
    sendmail = join(dirname(ms.helperPath), 'mailsubmit-sendmail');
    symlinkSync(ms.helperPath, sendmail);
    user = ensureUser('mstsmuser');
    ownOnly = ensureUser('mstsmown');
    ms.setAuthorizations(['mstsmuser', 'mstsmown sender=own']);
    strict = await MailsubmitUnderTest.start({ downstreamPort: postfix.port, limits: 'strict_message_syntax = true' });
    strictSendmail = join(dirname(strict.helperPath), 'mailsubmit-sendmail');
    symlinkSync(strict.helperPath, strictSendmail);
    strict.setAuthorizations(['mstsmuser']);
  }, 30_000);

  afterAll(async () => {
    await strict?.stop();
    await tearDown(ms, postfix, sink);
  });

  /** Runs mailsubmit-sendmail (`strict`: the strict_message_syntax daemon's) as `who` with `args`, `input` on a pipe. */
  function run(who: TestUser, args: readonly string[], input: string | Buffer, options: { keepOpen?: boolean; strict?: boolean } = {}): Promise<SubmitResult> {
    const child = spawn(options.strict === true ? strictSendmail : sendmail, args, { uid: who.uid, gid: who.gid, stdio: ['pipe', 'pipe', 'pipe'], env: {} });
    // The daemon stops reading at a dot line: the rest of a write may meet a closed pipe (ignored by childOutput).
    const output = childOutput(child).finally(() => child.stdin.destroy());
    if (options.keepOpen === true) child.stdin.write(input);
    else child.stdin.end(input);
    return output;
  }

  function arrival(subject: string): Promise<RecordedMessage> {
    return sink.waitForMessage((m) => m.data.includes(`Subject: ${subject}\r\n`));
  }

  it('delivers to the argument recipients, with -f as MAIL FROM and the message as written', async () => {
    const message = 'From: Report <report@example.net>\nTo: ops@example.org\nSubject: sm-basic\nDate: Tue, 24 Nov 2026 12:00:00 +0000\nMessage-ID: <sm-basic@example.net>\n\nline one\n..two dots\n';
    const result = await run(user, ['-i', '-f', 'report@example.net', 'ops@example.org', 'Bob <bob@example.org>, carol@example.org'], message);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const delivered = await arrival('sm-basic');
    expect(delivered.mailFrom).toMatch(/^MAIL FROM:<report@example\.net> SIZE=\d+$/);
    expect([...delivered.rcptTo].map((r) => r.split(' ')[1]).sort()).toEqual([
      'TO:<bob@example.org>',
      'TO:<carol@example.org>',
      'TO:<ops@example.org>',
    ]);
    expect(withoutFirstHeaderField(delivered.data).toString('latin1')).toBe(crlf(message));
  });

  it('-t adds To, Cc and Bcc to the arguments, and removes every Bcc line, continuation included, byte for byte', async () => {
    const head = 'From: t@example.net\nTo: "Team, Ops" <ops-t@example.org>\nSubject: sm-extract\n';
    const bcc = 'Bcc: hidden@example.org,\n\tsecond-hidden@example.org\n';
    const tail = 'Cc: undisclosed-recipients:;, cc-t@example.org (copy)\nDate: Tue, 24 Nov 2026 12:00:00 +0000\nMessage-ID: <sm-extract@example.net>\n\nbody\n';
    const result = await run(user, ['-t', '-i', '-f', 't@example.net', 'arg@example.org'], head + bcc + tail);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const delivered = await arrival('sm-extract');
    expect([...delivered.rcptTo].map((r) => r.split(' ')[1]).sort()).toEqual([
      'TO:<arg@example.org>',
      'TO:<cc-t@example.org>',
      'TO:<hidden@example.org>',
      'TO:<ops-t@example.org>',
      'TO:<second-hidden@example.org>',
    ]);
    expect(withoutFirstHeaderField(delivered.data).toString('latin1')).toBe(crlf(head + tail));
  });

  it('-t with Resent- fields takes Resent-To and Resent-Cc only, as Postfix does', async () => {
    const message = 'From: r@example.net\nTo: original@example.org\nResent-From: r@example.net\nResent-To: again@example.org\nSubject: sm-resent\nDate: Tue, 24 Nov 2026 12:00:00 +0000\nMessage-ID: <sm-resent@example.net>\n\nbody\n';
    const result = await run(user, ['-t', '-f', 'r@example.net'], message);
    expect(result.code).toBe(0);
    const delivered = await arrival('sm-resent');
    expect(delivered.rcptTo.map((r) => r.split(' ')[1])).toEqual(['TO:<again@example.org>']);
  });

  it('without -i a line of a single dot ends the message; with -i it is data', async () => {
    const head = 'From: dot@example.net\nDate: Tue, 24 Nov 2026 12:00:00 +0000\n';
    const ended = await run(user, ['-f', 'dot@example.net', 'dot@example.org'], `${head}Subject: sm-dot-ends\nMessage-ID: <d1@example.net>\n\nbefore\n.\nafter the dot\n`);
    expect(ended.code).toBe(0);
    const cut = await arrival('sm-dot-ends');
    expect(withoutFirstHeaderField(cut.data).toString('latin1')).toBe(crlf(`${head}Subject: sm-dot-ends\nMessage-ID: <d1@example.net>\n\nbefore\n`));
    const kept = await run(user, ['-oi', '-f', 'dot@example.net', 'dot@example.org'], `${head}Subject: sm-dot-data\nMessage-ID: <d2@example.net>\n\nbefore\n.\nafter the dot\n`);
    expect(kept.code).toBe(0);
    const whole = await arrival('sm-dot-data');
    expect(withoutFirstHeaderField(whole.data).toString('latin1')).toBe(crlf(`${head}Subject: sm-dot-data\nMessage-ID: <d2@example.net>\n\nbefore\n.\nafter the dot\n`));
  });

  it('passes -N, -R and -V as NOTIFY, RET and ENVID', async () => {
    const result = await run(user, ['-f', 'dsn@example.net', '-N', 'success,delay', '-R', 'hdrs', '-V', 'env+id=1', '--', 'dsn@example.org'], 'Subject: sm-dsn\n\nbody\n');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const delivered = await arrival('sm-dsn');
    expect(delivered.mailFrom).toMatch(/^MAIL FROM:<dsn@example\.net> SIZE=\d+ ENVID=env\+2Bid\+3D1 RET=HDRS$/);
    expect(delivered.rcptTo).toEqual(['RCPT TO:<dsn@example.org> ORCPT=rfc822;dsn@example.org NOTIFY=SUCCESS,DELAY']);
  });

  it('adds Message-Id, Date and From (with -F) when missing, in Postfix\'s order; the sender defaults to the login name', async () => {
    const result = await run(user, ['-F', 'Nightly Job', '-v', 'added@example.org'], 'Subject: sm-added\n\nbody\n');
    expect(result.stderr).toMatch(/^mailsubmit-sendmail: queued as [0-9A-F]+\n$/);
    expect(result.code).toBe(0);
    const delivered = await arrival('sm-added');
    // Postfix qualifies the unqualified login name with its own domain.
    expect(delivered.mailFrom).toMatch(/^MAIL FROM:<mstsmuser@[^>]+> SIZE=\d+$/);
    const text = withoutFirstHeaderField(delivered.data).toString('utf8');
    // As Postfix's sendmail: Message-Id, Date, From at the end; cleanup qualifies the From address (XFORWARD SOURCE=LOCAL).
    expect(text).toMatch(/^Subject: sm-added\r\nMessage-Id: <[^@>\s]+@[^>\s]+>\r\nDate: [A-Z][a-z]{2}, [ \d]\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}( \([A-Z]+\))?\r\nFrom: Nightly Job <mstsmuser@[^>]+>\r\n\r\nbody\r\n$/);
    const line = await ms.waitForSubmission((l) => l.status === 'ok' && typeof l.sender === 'string' && l.sender === 'mstsmuser');
    expect(line.exit).toBe(0);
  });

  it('streams a long body cut only at a line of a single dot, lines starting with a dot kept', async () => {
    const lines: string[] = [];
    // About 600 kB: many reads, dot lines of every other kind on the way.
    for (let i = 0; i < 8000; i++) lines.push(i % 3 === 0 ? `.line ${i} ${'y'.repeat(60)}` : i % 3 === 1 ? `..${i}` : `line ${i} ${'x'.repeat(60)}`);
    const head = 'From: long@example.net\nSubject: sm-long\nDate: Tue, 24 Nov 2026 12:00:00 +0000\nMessage-ID: <sm-long@example.net>\n\n';
    const body = `${lines.join('\n')}\n`;
    const result = await run(user, ['-f', 'long@example.net', 'long@example.org'], `${head}${body}.\nnot sent\n`);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const delivered = await arrival('sm-long');
    expect(withoutFirstHeaderField(delivered.data).equals(Buffer.from(crlf(head + body), 'latin1'))).toBe(true);
  });

  it('writes a non-ASCII -F name as Postfix does (UTF-8 as it is), and one with a line break as one quoted name (LF as a space), so it cannot add a header', async () => {
    const result = await run(user, ['-F', 'Jörg Nightly', '-f', 'joerg@example.net', 'utf@example.org'], 'Subject: sm-utf-name\n\nbody\n');
    expect(result.code).toBe(0);
    const delivered = await arrival('sm-utf-name');
    expect(delivered.data.toString('utf8')).toContain('\r\nFrom: Jörg Nightly <joerg@example.net>\r\n');
    const injected = await run(user, ['-F', 'Evil\nBcc: everyone@example.org', '-f', 'evil@example.net', 'x@example.org'], 'Subject: sm-lf-name\n\nx\n');
    expect(injected.stderr).toBe('');
    expect(injected.code).toBe(0);
    const named = await arrival('sm-lf-name');
    expect(named.rcptTo.map((r) => r.split(' ')[1])).toEqual(['TO:<x@example.org>']);
    const text = withoutFirstHeaderField(named.data).toString('latin1');
    expect(text).toContain('\r\nFrom: "Evil Bcc: everyone@example.org" <evil@example.net>\r\n');
    expect(text).not.toMatch(/^Bcc:/im);
  });

  it("takes cron's own command line (-FCronDaemon -i -B8BITMIME -oem), ignoring what Postfix's sendmail ignores", async () => {
    // How Debian's cron runs sendmail for a job's output.
    const output = 'From: root (Cron Daemon)\nTo: cron@example.org\nSubject: sm-cron\nContent-Type: text/plain; charset=UTF-8\n\nbackup: 3 files\n.\nstill output\n';
    const result = await run(user, ['-FCronDaemon', '-i', '-B8BITMIME', '-oem', 'cron@example.org'], output);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const delivered = await arrival('sm-cron');
    expect(delivered.rcptTo.map((r) => r.split(' ')[1])).toEqual(['TO:<cron@example.org>']);
    // -i: the lone dot is data (dot-stuffing undone by the sink).
    expect(delivered.data.toString('utf8')).toMatch(/\r\nbackup: 3 files\r\n\.\r\nstill output\r\n$/);
  });

  it('refuses an unknown option with 75 (Postfix\'s sendmail exit on a bad command line), naming it, before reading any mail', async () => {
    const result = await run(user, ['-z'], 'Subject: x\n\nx\n');
    expect(result.code).toBe(75);
    expect(result.stderr).toBe('mailsubmit-sendmail: bad command line: option -z is not supported (see mailsubmit-sendmail(8))\n');
    const clustered = await run(user, ['-tq', 'x@example.org'], 'Subject: x\n\nx\n');
    expect(clustered.code).toBe(75);
    expect(clustered.stderr).toMatch(/option -qx is not supported/);
  });

  it('refuses a message with no recipients at all with 75, as Postfix does', async () => {
    const result = await run(user, ['-t'], 'To: undisclosed-recipients:;\nSubject: x\n\nx\n');
    expect(result.code).toBe(75);
    expect(result.stderr).toMatch(/no recipients/);
  });

  it('refuses -f of a sender the caller may not use with 77, before reading any mail', async () => {
    // Standard input stays open: an answer proves the daemon did not wait for the message.
    const result = await run(ownOnly, ['-f', 'boss@example.net', 'x@example.org'], 'Subject: sm-not-own\n', { keepOpen: true });
    expect(result.code).toBe(77);
    expect(result.stderr).toMatch(/may not use the envelope sender <boss@example\.net>/);
    const own = await run(ownOnly, ['-f', 'mstsmown@example.net', 'own@example.org'], 'Subject: sm-own\n\nx\n');
    expect(own.code).toBe(0);
    expect((await arrival('sm-own')).mailFrom).toMatch(/^MAIL FROM:<mstsmown@example\.net>/);
  });

  it('takes a line that is not a header field as the body\'s first, and a bare CR as a space, as Postfix\'s sendmail', async () => {
    const result = await run(user, ['x@example.org'], 'Subject: sm-not-a-field\nBcc: gone@example.org\nnot a header\n\nx\n');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const added = 'Message-Id: <[^@>\\s]+@[^>\\s]+>\r\nDate: [^\r\n]+\r\nFrom: mstsmuser@[^\r\n]+\r\n';
    // Bcc removed; the added fields end the header section, then the empty line cleanup puts before the body.
    const cut = withoutFirstHeaderField((await arrival('sm-not-a-field')).data).toString('latin1');
    expect(cut).toMatch(new RegExp(`^Subject: sm-not-a-field\r\n${added}\r\nnot a header\r\n\r\nx\r\n$`));
    const body = await run(user, ['-i', 'x@example.org'], 'Subject: sm-bare-cr\nBcc: gone@example.org\n\nbare\rCR\n');
    expect(body.stderr).toBe('');
    expect(body.code).toBe(0);
    const spaced = withoutFirstHeaderField((await arrival('sm-bare-cr')).data).toString('latin1');
    expect(spaced).toMatch(new RegExp(`^Subject: sm-bare-cr\r\n${added}\r\nbare CR\r\n$`));
  });

  it('with strict_message_syntax refuses a malformed header line with 65, naming the caller\'s line', async () => {
    const before = sink.messages.length;
    const result = await run(user, ['x@example.org'], 'Subject: x\nBcc: gone@example.org\nnot a header\n\nx\n', { strict: true });
    expect(result.code).toBe(65);
    expect(result.stderr).toMatch(/malformed message: line 3: header line is neither a field/);
    const body = await run(user, ['-i', 'x@example.org'], 'Subject: x\nBcc: gone@example.org\n\nbare\rCR\n', { strict: true });
    expect(body.code).toBe(65);
    // The Bcc line is removed before sending, but the error names the line as the caller wrote it.
    expect(body.stderr).toMatch(/line 4: bare CR/);
    expect(sink.messages.slice(before).some((m) => m.data.includes('Subject: x\r\n'))).toBe(false);
  });

  it('refuses a recipient argument with a CR LF in it with 65, and nothing reaches the sink', async () => {
    const before = sink.commandLog.length;
    const result = await run(user, ['x@example.org\r\nRCPT TO:<injected@example.org>'], 'Subject: x\n\nx\n');
    expect(result.code).toBe(65);
    expect(result.stderr).toMatch(/malformed recipient/);
    expect(sink.commandLog.slice(before).some((line) => line.includes('injected'))).toBe(false);
  });
});
