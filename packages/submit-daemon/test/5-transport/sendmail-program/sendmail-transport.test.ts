import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrivatePostfix } from '../../../../../test/support/private-postfix.ts';
import { RecordingSink, type RecordedMessage } from '../../../../../test/support/recording-sink.ts';
import { MessageEncoder, parseEnvelopeBlock, SubmissionError, type Envelope } from '@mailsubmit/shared';
import { sendViaSendmail, stderrLine, verifyViaSendmail, type SendmailOptions } from '../../../src/5-transport/sendmail-program/sendmail-transport.ts';

const SENDMAIL = '/usr/sbin/sendmail';
const block = (...lines: string[]): Envelope => parseEnvelopeBlock(`${lines.join('\n')}\n\n`);

/** The message as the daemon hands it over: SMTP-encoded by the MessageEncoder. */
function encode(text: string | Buffer): Buffer {
  const encoder = new MessageEncoder();
  return Buffer.concat([encoder.write(Buffer.from(text)), encoder.end()]);
}

/** `data` in pieces of `size` octets, so that line ends and dots straddle chunks. */
function pieces(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) out.push(data.subarray(i, i + size));
  return out;
}

function source(text: string | Buffer, size = 7): Readable {
  return Readable.from(pieces(encode(text), size));
}

/** Drops the Received: field Postfix puts first (with its continuation lines). */
function withoutReceived(data: Buffer): string {
  const text = data.toString('latin1');
  const match = /^Received: [^\r]*\r\n(?:[ \t][^\r]*\r\n)*/.exec(text);
  expect(match).not.toBeNull();
  return text.slice(match?.[0].length ?? 0);
}

const crlf = (text: string): string => Buffer.from(text.replace(/\n/g, '\r\n')).toString('latin1');

describe.skipIf(!PrivatePostfix.isAvailable())('sendViaSendmail with Postfix', () => {
  let sink: RecordingSink;
  let postfix: PrivatePostfix;
  let options: SendmailOptions;

  beforeAll(async () => {
    sink = new RecordingSink();
    // allow_min_user: Postfix bounces addresses starting with "-" by
    // default; allowed here, one shows at the sink how it was passed.
    postfix = await PrivatePostfix.start({ relayPort: await sink.listen(), mainCf: ['allow_min_user = yes'] });
    options = { sendmailPath: SENDMAIL, timeoutMs: 20_000, configDirectory: postfix.dir };
  }, 30_000);

  afterAll(async () => {
    await postfix?.stop();
    await sink?.close();
  });

  /** The relayed message that has `recipient` among its RCPTs. */
  async function arrival(recipient: string): Promise<RecordedMessage> {
    const has = (m: RecordedMessage) => m.rcptTo.some((line) => line.startsWith(`RCPT TO:<${recipient}>`));
    for (;;) {
      const found = sink.messages.find(has);
      if (found !== undefined) return found;
      await sink.waitForMessages(sink.messages.length + 1);
    }
  }

  /**
   * Nothing for `recipient` is queued or delivered. A message sent after
   * the failed one is waited for: had the failed one been queued, pickup
   * would have found it in the maildrop with it.
   */
  async function expectNothingQueued(recipient: string, sender: string): Promise<void> {
    expect(await postfix.queueSize()).toBe(0);
    const marker = `marker-${recipient}`;
    const sent = await sendViaSendmail(block('sender: s@example.org', `recipient: ${marker}`), source('Subject: m\n\nm\n'), options);
    expect(sent.outcome).toBe('ok');
    await arrival(marker);
    await postfix.flush();
    expect(await postfix.queueSize()).toBe(0);
    expect(sink.messages.filter((m) => m.rcptTo.some((line) => line.includes(`<${recipient}>`)))).toEqual([]);
    expect(postfix.log()).not.toContain(`<${sender}>`);
  }

  it('delivers the message byte for byte: LF text back to CRLF, dot lines intact', async () => {
    // No From, Date or Message-Id: without -G Postfix would add all three.
    const text = [
      'Subject: dots and lines',
      'X-Folded: first',
      '\tsecond',
      '',
      '.',
      '..',
      '...three',
      '.leading',
      '',
      'caf\u00e9 \u2603 8-bit',
      'x'.repeat(900),
      'last line without a line end',
    ].join('\n');
    const result = await sendViaSendmail(block('sender: s@example.org', 'recipient: exact@example.com'), source(text), options);
    expect(result).toEqual({ outcome: 'ok', text: 'queued', dropped: [] });
    const message = await arrival('exact@example.com');
    expect(withoutReceived(message.data)).toBe(crlf(`${text}\n`));
  });

  it('passes sender, recipients, NOTIFY, RET and ENVID, which Postfix relays as MAIL and RCPT parameters', async () => {
    // A two-character ENVID and a recipient starting with "-": both would
    // change sendmail's command line if they were passed carelessly.
    const env = block(
      'sender: params@example.org',
      'dsn-envelope-id: ab',
      'dsn-return-option: headers',
      'recipient: p1@example.com',
      'dsn-notify-options: success,delay',
      'recipient: -p2@example.com',
      'dsn-notify-options: delay,success',
    );
    const result = await sendViaSendmail(env, source('Subject: params\n\nbody\n'), options);
    expect(result.outcome).toBe('ok');
    const message = await arrival('p1@example.com');
    expect(message.mailFrom.split(' ')).toEqual(expect.arrayContaining(['FROM:<params@example.org>', 'ENVID=ab', 'RET=HDRS']));
    // Postfix sorts the recipients of a queue file.
    expect([...message.rcptTo].sort()).toEqual([
      'RCPT TO:<-p2@example.com> ORCPT=rfc822;-p2@example.com NOTIFY=SUCCESS,DELAY',
      'RCPT TO:<p1@example.com> ORCPT=rfc822;p1@example.com NOTIFY=SUCCESS,DELAY',
    ]);
  });

  it('verifies with Postfix\'s own sendmail -bv: the report reaches the sender, nothing reaches the address', async () => {
    const result = await verifyViaSendmail(block('sender: asker@example.org', 'recipient: verified@example.com'), options);
    expect(result).toEqual({ outcome: 'ok', text: 'verification probe queued', dropped: [] });
    const report = await arrival('asker@example.org');
    expect(report.mailFrom).toMatch(/^MAIL FROM:<>/);
    const text = report.data.toString('latin1');
    expect(text).toMatch(/^Subject: Mail Delivery Status Report\r$/m);
    expect(text).toMatch(/^Final-Recipient: rfc822; verified@example\.com\r$/m);
    await postfix.flush();
    expect(sink.messages.filter((m) => m.rcptTo.some((line) => line.includes('<verified@example.com>')))).toEqual([]);
  }, 60_000);

  it('sends the null sender as MAIL FROM:<>', async () => {
    const result = await sendViaSendmail(block('sender: <>', 'recipient: bounce@example.com'), source('Subject: null\n\nx\n'), options);
    expect(result.outcome).toBe('ok');
    expect((await arrival('bounce@example.com')).mailFrom).toMatch(/^MAIL FROM:<> /);
  });

  it('runs sendmail once per NOTIFY group and reports what it could not pass', async () => {
    const env = block(
      'sender: groups@example.org',
      'recipient: g1@example.com',
      'dsn-notify-options: failure',
      'dsn-orig-rcpt: rfc822;original@example.com',
      'recipient: g2@example.com',
      'dsn-notify-options: never',
      'recipient: g3@example.com',
      'dsn-notify-options: fail',
    );
    const text = 'Subject: groups\n\nsame text for every group\n.\n';
    const result = await sendViaSendmail(env, source(text), options);
    expect(result).toEqual({ outcome: 'ok', text: 'queued', dropped: ['ORCPT for 1 recipient'] });
    const first = await arrival('g1@example.com');
    const second = await arrival('g2@example.com');
    expect(first).not.toBe(second);
    expect([...first.rcptTo].sort()).toEqual([
      'RCPT TO:<g1@example.com> ORCPT=rfc822;g1@example.com NOTIFY=FAILURE',
      'RCPT TO:<g3@example.com> ORCPT=rfc822;g3@example.com NOTIFY=FAILURE',
    ]);
    expect(second.rcptTo).toEqual(['RCPT TO:<g2@example.com> ORCPT=rfc822;g2@example.com NOTIFY=NEVER']);
    expect(withoutReceived(first.data)).toBe(crlf(text));
    expect(withoutReceived(second.data)).toBe(crlf(text));
  });

  it('shows why sendmail must be killed: closing its input mid-message queues what it read', async () => {
    const child = spawn(SENDMAIL, ['-C', postfix.dir, '-G', '-i', '-f', '<s@example.org>', '--', 'half@example.com'], {
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.stdin.end('Subject: half\n\nthe first half of a mes');
    expect(await exited).toBe(0);
    expect(withoutReceived((await arrival('half@example.com')).data)).toBe('Subject: half\r\n\r\nthe first half of a mes\r\n');
  });

  it('queues nothing when the message stream fails half-way', async () => {
    const encoded = encode(`Subject: killed\n\n${'a line of the message body\n'.repeat(20_000)}`);
    const failure = new SubmissionError('size-mismatch', 'the message has more octets than the size attribute says');
    // More than a pipe buffer goes out first, so sendmail has read part of
    // the message (the writes had to wait for it) when the stream fails.
    async function* failing(): AsyncGenerator<Buffer> {
      yield* pieces(encoded.subarray(0, 300_000), 16_384);
      throw failure;
    }
    const env = block('sender: killed-sender@example.org', 'recipient: killed@example.com');
    await expect(sendViaSendmail(env, failing(), options)).rejects.toBe(failure);
    await expectNothingQueued('killed@example.com', 'killed-sender@example.org');
  });

  it('wraps a plain stream error as input-error, and still queues nothing', async () => {
    async function* broken(): AsyncGenerator<Buffer> {
      yield encode('Subject: gone\n\npartial\n');
      throw new Error('ECONNRESET');
    }
    const env = block('sender: gone-sender@example.org', 'recipient: gone@example.com');
    await expect(sendViaSendmail(env, broken(), options)).rejects.toMatchObject({ outcome: 'input-error', message: expect.stringContaining('ECONNRESET') });
    await expectNothingQueued('gone@example.com', 'gone-sender@example.org');
  });

  it('queues nothing when the caller went away after the whole message was read', async () => {
    const aborted = new AbortController();
    const reason = new SubmissionError('caller-gone', 'the mailsubmit helper went away before the message was committed');
    async function* whole(): AsyncGenerator<Buffer> {
      yield encode('Subject: abandoned\n\nall of it\n');
      // The caller goes after its last octet was read, before sendmail's input is closed.
      aborted.abort(reason);
    }
    const env = block('sender: abandoned-sender@example.org', 'recipient: abandoned@example.com');
    await expect(sendViaSendmail(env, whole(), { ...options, signal: aborted.signal })).rejects.toBe(reason);
    await expectNothingQueued('abandoned@example.com', 'abandoned-sender@example.org');
  });
});

describe('sendViaSendmail with a stand-in sendmail', () => {
  let dir: string;
  const env = block('sender: s@example.org', 'recipient: a@example.com');

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'mailsubmit-fake-sendmail-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function fake(name: string, body: string): string {
    const path = join(dir, name);
    writeFileSync(path, `#!/bin/sh\n${body}\n`);
    chmodSync(path, 0o755);
    return path;
  }
  const run = (path: string, message: Readable, timeoutMs = 20_000, envelope = env) =>
    sendViaSendmail(envelope, message, { sendmailPath: path, timeoutMs });

  it('runs it with the fixed environment and command line, and feeds it LF text', async () => {
    const path = fake('record', `printf '%s\\n' "$@" > "${dir}/args"; env > "${dir}/env"; cat > "${dir}/stdin"`);
    const result = await run(path, source('Subject: r\n\n..dot\n.\nend\n'));
    expect(result).toEqual({ outcome: 'ok', text: 'queued', dropped: [] });
    expect(readFileSync(join(dir, 'args'), 'utf8')).toBe(['-G', '-i', '-f', '<s@example.org>', '--', 'a@example.com', ''].join('\n'));
    expect(readFileSync(join(dir, 'stdin'), 'latin1')).toBe('Subject: r\n\n..dot\n.\nend\n');
    // dash adds PWD of its own; nothing of ours besides PATH may arrive.
    const variables = readFileSync(join(dir, 'env'), 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('PWD='));
    expect(variables).toEqual(['PATH=/usr/sbin:/usr/bin:/sbin:/bin']);
  });

  it.each([
    [67, 'recipient-refused'],
    [69, 'message-refused'],
    [75, 'mta-tempfail'],
  ] as const)('maps exit %i to %s, with the fatal line of stderr as the text', async (status, outcome) => {
    const path = fake(`exit-${status}`, `cat > /dev/null\necho "sendmail: warning: noise" >&2\necho "sendmail: fatal: refused with ${status}" >&2\nexit ${status}`);
    expect(await run(path, source('Subject: e\n\nx\n'))).toEqual({ outcome, text: `sendmail: fatal: refused with ${status}`, dropped: [] });
  });

  it('says how it ended when sendmail says nothing', async () => {
    const path = fake('silent-75', 'cat > /dev/null\nexit 75');
    expect(await run(path, source('Subject: e\n\nx\n'))).toMatchObject({ outcome: 'mta-tempfail', text: `${path} exited with status 75` });
  });

  it('kills a sendmail that does not finish in time: mta-timeout', async () => {
    const path = fake('sleep', 'exec sleep 60');
    expect(await run(path, source('Subject: t\n\nx\n'), 100)).toEqual({ outcome: 'mta-timeout', text: `${path} did not finish within 100 ms`, dropped: [] });
  });

  it('also when it stops reading its input, and with SIGKILL when it ignores SIGTERM', async () => {
    const path = fake('stubborn', "trap '' TERM\nexec sleep 60");
    const big = `Subject: t\n\n${'y'.repeat(500)}\n`.repeat(2000);
    expect(await run(path, source(big, 65_536), 100)).toMatchObject({ outcome: 'mta-timeout' });
  });

  it('reports a sendmail that fails before reading the whole message, without waiting for the rest', async () => {
    const path = fake('early-75', 'echo "sendmail: fatal: queue file write error" >&2\nexit 75');
    const big = `Subject: t\n\n${'z'.repeat(500)}\n`.repeat(4000);
    expect(await run(path, source(big, 65_536))).toEqual({ outcome: 'mta-tempfail', text: 'sendmail: fatal: queue file write error', dropped: [] });
  });

  it('never takes exit 0 before the end of the input for success', async () => {
    const path = fake('early-0', 'exit 0');
    const big = `Subject: t\n\n${'z'.repeat(500)}\n`.repeat(4000);
    expect(await run(path, source(big, 65_536))).toMatchObject({ outcome: 'mta-tempfail', text: `${path} exited before it read the whole message` });
  });

  it('stops at the first group that fails, and says which recipients already have the message', async () => {
    const log = join(dir, 'groups.log');
    const path = fake(
      'by-group',
      `cat > /dev/null\necho "$*" >> "${log}"\nfor a in "$@"; do [ "$a" = never ] && { echo "sendmail: fatal: not this group" >&2; exit 69; }; done\nexit 0`,
    );
    const groups = block(
      'sender: s@example.org',
      'recipient: ok1@example.com',
      'recipient: ok2@example.com',
      'recipient: no@example.com',
      'dsn-notify-options: never',
      'recipient: later@example.com',
      'dsn-notify-options: success',
    );
    const result = await run(path, source('Subject: g\n\nx\n'), 20_000, groups);
    expect(result.outcome).toBe('message-refused');
    expect(result.text).toBe('sendmail: fatal: not this group (the message was already queued for 2 of 4 recipients, who would get it again on a retry)');
    // The third group was killed before its input was closed: it never got to log.
    expect(readFileSync(log, 'utf8')).toBe('-G -i -f <s@example.org> -- ok1@example.com ok2@example.com\n-G -i -f <s@example.org> -N never -- no@example.com\n');
  });

  it('answers config when the program cannot be run', async () => {
    const missing = join(dir, 'no-such-sendmail');
    expect(await run(missing, source('Subject: c\n\nx\n'))).toMatchObject({ outcome: 'config', text: expect.stringContaining('ENOENT') });
    expect(await run('sendmail', source('Subject: c\n\nx\n'))).toMatchObject({ outcome: 'config' });
  });

  it('refuses a sender starting with "-" before running anything', async () => {
    const path = fake('never-run', `touch "${dir}/ran"`);
    await expect(run(path, source('Subject: s\n\nx\n'), 20_000, block('sender: -f@example.org', 'recipient: a@example.com'))).rejects.toMatchObject({
      outcome: 'sender-syntax',
    });
    expect(() => readFileSync(join(dir, 'ran'))).toThrow();
  });
});

describe('stderrLine', () => {
  it('prefers the fatal line, and keeps it printable and short', () => {
    expect(stderrLine('sendmail: warning: w\nsendmail: fatal: why\n')).toBe('sendmail: fatal: why');
    expect(stderrLine('just words\r\n')).toBe('just words');
    expect(stderrLine('a\u0007b')).toBe('a b');
    expect(stderrLine('\n\n')).toBeUndefined();
    expect(stderrLine('x'.repeat(600))?.length).toBe(503);
  });
});
