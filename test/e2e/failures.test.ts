/**
 * Things going wrong on the way, end to end: the daemon not running, the MTA
 * down, the caller killing its helper or going silent mid-message, a size
 * attribute that does not match, an invalid line deep in a large body (with
 * strict_message_syntax; by default the same line is delivered), a message
 * over the configured limit. The contract's guarantees under test:
 * the caller gets the documented exit code and one line saying why, and
 * nothing partial is ever delivered; where the transaction was already open,
 * Postfix's own log shows it was abandoned in DATA without the final dot.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LOOKAHEAD_OCTETS } from '@mailsubmit/submit-daemon/documented-values';
import { freePort } from '../support/free-port.ts';
import { tearDown } from '../support/tear-down.ts';
import { startMailPath } from '../support/mail-path.ts';
import { MailsubmitUnderTest, type SubmitResult } from '../support/mailsubmit-under-test.ts';
import { PrivatePostfix } from '../support/private-postfix.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import { ensureUser, type TestUser } from '../support/test-accounts.ts';

/** Starting Postfix and a daemon (the helper is compiled each time) is slow on a busy machine. */
const HOOK_TIMEOUT_MS = 60_000;
const MIB = 1024 * 1024;
/** Most of a megabyte: Postfix has it, so the transaction is open and well into DATA. */
const STREAMED = 900 * 1024;
// Names of this run's own: a concurrent run of this file must not delete them under us.
const USER = `mstfail${process.pid}`;
const GROUP = `mstfailg${process.pid}`;
const ENVELOPE = 'sender: <writer@example.org>\nrecipient: <reader@example.org>\n';
const HEADER = 'From: <writer@example.org>\nTo: <reader@example.org>\nSubject: failure test\n\n';
const BODY_LINE = `${'x'.repeat(76)}\n`;

/** A message of at least `octets` octets (as written): a header, then 77-octet body lines. */
function message(octets: number): string {
  const lines = Math.max(0, Math.ceil((octets - HEADER.length) / BODY_LINE.length));
  return HEADER + BODY_LINE.repeat(lines);
}

/** A caller writing into the helper through a real pipe: `(cat FILE; sleep) | mailsubmit`. */
interface WriterPipeline {
  readonly helperPid: number;
  /** The helper's exit status as the shell saw it (137 after SIGKILL) and what it printed. */
  readonly finished: Promise<{ status: number; output: string }>;
  /** Ends the writer, the shell and anything left in their process group. */
  stop(): void;
}

/**
 * The writer (cat, then a sleep that keeps the write end open without
 * writing) and the helper run as `user` in a process group of their own.
 * The helper's stderr goes to the shell's stdout, after a line naming its
 * pid and before a line with its exit status, so the order is certain.
 */
async function pipeIntoHelper(ms: MailsubmitUnderTest, user: TestUser, input: string): Promise<WriterPipeline> {
  const dir = mkdtempSync('/tmp/mailsubmit-writer-');
  chmodSync(dir, 0o755);
  const file = join(dir, 'input');
  writeFileSync(file, input, { mode: 0o644 });
  // The helper runs as a job of its own inside the pipeline's right side, so
  // that `wait` waits for it alone and not for the writer's sleep. Its stdin
  // is passed on through fd 3: a background job's stdin is /dev/null otherwise.
  const script = '(cat "$1"; exec sleep 120) | { exec 3<&0; "$2" <&3 3<&- 2>&1 & echo "helper $!"; exec 3<&-; wait "$!"; echo "exit $?"; }';
  const shell = spawn('/bin/sh', ['-c', script, 'sh', file, ms.helperPath], {
    uid: user.uid,
    gid: user.gid,
    detached: true,
    stdio: ['ignore', 'pipe', 'ignore'],
    env: { PATH: '/usr/bin:/bin' },
  });
  let output = '';
  const seen = new Promise<void>((resolve, reject) => {
    shell.once('error', reject);
    shell.once('exit', () => resolve());
    shell.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      resolve();
    });
  });
  const stop = () => {
    try {
      process.kill(-(shell.pid as number), 'SIGKILL');
    } catch {
      // Already gone.
    }
    rmSync(dir, { recursive: true, force: true });
  };
  await seen;
  const pid = /^helper (\d+)\n/.exec(output)?.[1];
  if (pid === undefined) {
    stop();
    throw new Error(`the pipeline did not start: ${output}`);
  }
  const finished = new Promise<{ status: number; output: string }>((resolve) => {
    const check = () => {
      const status = /\nexit (\d+)\n$/.exec(output)?.[1];
      if (status !== undefined) resolve({ status: Number(status), output: output.slice(output.indexOf('\n') + 1, output.lastIndexOf('exit ')) });
    };
    shell.stdout.on('data', check);
    check();
  });
  return { helperPid: Number(pid), finished, stop };
}

describe.skipIf(!PrivatePostfix.isAvailable())('failures on the way: exit code, one line, nothing delivered', () => {
  const sink = new RecordingSink();
  let postfix: PrivatePostfix;
  /** Default limits and timeouts. */
  let ms: MailsubmitUnderTest;
  let user: TestUser;
  let logMark = 0;
  let delivered = 0;

  beforeAll(async () => {
    ({ postfix, ms } = await startMailPath(sink, { mailsubmit: { group: GROUP } }));
    user = ensureUser(USER);
    ms.setAuthorizations([USER]);
  }, HOOK_TIMEOUT_MS);

  afterAll(() => tearDown(ms, postfix, sink), HOOK_TIMEOUT_MS);

  beforeEach(() => {
    logMark = postfix.log().length;
    delivered = sink.messages.length;
  });

  function expectOneLine(stderr: string, words: RegExp): void {
    expect(stderr).toMatch(/^mailsubmit: [^\n]+\n$/);
    expect(stderr).toMatch(words);
  }

  async function expectNothingDelivered(): Promise<void> {
    await postfix.flushAndWait();
    expect(sink.messages.length).toBe(delivered);
    expect(await postfix.queueSize()).toBe(0);
  }

  /** Octets of the queue files Postfix is still receiving: the open DATA of an unfinished transaction. */
  function incomingOctets(): number {
    const incoming = join(postfix.dir, 'queue', 'incoming');
    let total = 0;
    for (const name of readdirSync(incoming)) {
      try {
        total += statSync(join(incoming, name)).size;
      } catch {
        // Removed while we looked.
      }
    }
    return total;
  }

  it('delivers an ordinary submission (so "nothing delivered" below means something)', async () => {
    const { result, logged } = await ms.submitAndLog(user, ENVELOPE + '\n' + message(200));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(logged.status).toBe('ok');
    await sink.waitForMessages(delivered + 1);
  });

  it('daemon not running: 75 from the helper, which says so', async () => {
    const before = ms.submissions().length;
    await ms.stopDaemon();
    let result: SubmitResult;
    try {
      result = await ms.submit(user, ENVELOPE + '\n' + message(200));
    } finally {
      await ms.startDaemon();
    }
    expectOneLine(result.stderr, /not running/);
    expect(result.code).toBe(75);
    // No daemon, no log line for it.
    expect(ms.submissions().length).toBe(before);
    await expectNothingDelivered();
  });

  it('MTA down (nothing listening on the target port): 75, mta-unreachable', async () => {
    const down = await MailsubmitUnderTest.start({ downstreamPort: await freePort(), group: GROUP });
    try {
      down.setAuthorizations([USER]);
      const { result, logged } = await down.submitAndLog(user, ENVELOPE + '\n' + message(200));
      expectOneLine(result.stderr, /cannot connect to the MTA: .*ECONNREFUSED/);
      expect(result.code).toBe(75);
      expect(logged.status).toBe('mta-unreachable');
    } finally {
      await down.stop();
    }
    await expectNothingDelivered();
  });

  it('the helper killed while the daemon streams 1 MB into DATA: caller-gone, abandoned without the dot', async () => {
    const before = ms.submissions().length;
    const pipeline = await pipeIntoHelper(ms, user, ENVELOPE + '\n' + message(MIB));
    try {
      // Postfix holds most of the megabyte in an open transaction: the daemon is in DATA.
      await expect.poll(incomingOctets, { timeout: 10_000 }).toBeGreaterThanOrEqual(STREAMED);
      process.kill(pipeline.helperPid, 'SIGKILL');
      const { status, output } = await pipeline.finished;
      expect(status).toBe(128 + 9);
      expect(output).toBe('');
      const logged = await ms.submissionAfter(before);
      expect(logged.status).toBe('caller-gone');
      expect(logged.exit).toBe(75);
    } finally {
      pipeline.stop();
    }
    const lost = await postfix.waitForLog(/lost connection after DATA \(\d+ bytes\) from localhost\[127\.0\.0\.1\]/, 10_000, logMark);
    expect(Number(/\((\d+) bytes\)/.exec(lost)?.[1])).toBeGreaterThanOrEqual(STREAMED);
    await expectNothingDelivered();
  });

  it.each([
    ['smaller', 100],
    ['larger', 200],
  ])('size attribute %s than the message (size: %i, 120 octets): 65, size-mismatch', async (_, declared) => {
    const header = message(0);
    const text = header + 'y'.repeat(120 - header.length - 1) + '\n';
    expect(Buffer.byteLength(text)).toBe(120);
    const { result, logged } = await ms.submitAndLog(user, `${ENVELOPE}size: ${declared}\n\n${text}`);
    expectOneLine(result.stderr, new RegExp(`attribute "size": declared ${declared} octets, but the message has 120 octets`));
    expect(result.code).toBe(65);
    expect(logged.status).toBe('size-mismatch');
    await expectNothingDelivered();
  });

  describe('with strict_message_syntax = true', () => {
    // By default a NUL or a bare CR is taken as Postfix takes it (below); the
    // strict refusals still abandon an open DATA without the dot.
    let strict: MailsubmitUnderTest;
    beforeAll(async () => {
      strict = await MailsubmitUnderTest.start({ downstreamPort: postfix.port, group: GROUP, limits: 'strict_message_syntax = true' });
      strict.setAuthorizations([USER]);
    }, HOOK_TIMEOUT_MS);
    afterAll(async () => strict?.stop(), HOOK_TIMEOUT_MS);

    it.each([
      ['a NUL octet', '\0', 'NUL octet'],
      ['a bare CR', '\r', 'bare CR'],
    ])('%s in the body after 1 MB: 65 naming the line, the open DATA abandoned without the dot', async (_, octet, words) => {
      const head = ENVELOPE + '\n' + message(MIB);
      const badLine = head.split('\n').length;
      const input = `${head}a line with ${octet} in it\n${BODY_LINE.repeat(100)}`;
      const { result, logged } = await strict.submitAndLog(user, input);
      expectOneLine(result.stderr, new RegExp(`line ${badLine}: ${words}`));
      expect(result.code).toBe(65);
      expect(logged.status).toBe('message-syntax');
      // The transaction was open (Postfix had taken more than what is read
      // before MAIL) and the connection was dropped before the dot.
      const lost = await postfix.waitForLog(/lost connection after DATA \(\d+ bytes\) from localhost\[127\.0\.0\.1\]/, 10_000, logMark);
      expect(Number(/\((\d+) bytes\)/.exec(lost)?.[1])).toBeGreaterThan(LOOKAHEAD_OCTETS);
      await expectNothingDelivered();
    });
  });

  it.each([
    ['a NUL octet', '\0', '\0'],
    ['a bare CR', '\r', ' '],
  ])('%s in the body after 1 MB, by default: delivered whole as Postfix takes it (a NUL kept, a bare CR a space)', async (_, octet, leaves) => {
    const head = ENVELOPE + '\n' + message(MIB);
    const tail = `a line with ${octet} in it\n${BODY_LINE.repeat(100)}`;
    const { result, logged } = await ms.submitAndLog(user, head + tail);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(logged.status).toBe('ok');
    await postfix.flush();
    const [arrived] = (await sink.waitForMessages(delivered + 1)).slice(delivered);
    expect(sink.messages.length).toBe(delivered + 1);
    const body = `${message(MIB).slice(HEADER.length)}a line with ${leaves} in it\n${BODY_LINE.repeat(100)}`.replace(/\n/g, '\r\n');
    const data = arrived?.data.toString('latin1') ?? '';
    expect(data).toContain(`\r\n${'x'.repeat(76)}\r\na line with ${leaves} in it\r\n${'x'.repeat(76)}\r\n`);
    // The whole body, every line of it and nothing else after the header section.
    expect(data.endsWith(`\r\n\r\n${body}`)).toBe(true);
  });

  describe('with input_idle = 2 s', () => {
    let idle: MailsubmitUnderTest;
    beforeAll(async () => {
      idle = await MailsubmitUnderTest.start({ downstreamPort: postfix.port, group: GROUP, timeouts: 'input_idle = 2' });
      idle.setAuthorizations([USER]);
    }, HOOK_TIMEOUT_MS);
    afterAll(async () => idle?.stop(), HOOK_TIMEOUT_MS);

    it('a writer that stalls mid-message: 75, input-timeout, the open DATA abandoned', async () => {
      const before = idle.submissions().length;
      const pipeline = await pipeIntoHelper(idle, user, ENVELOPE + '\n' + message(MIB));
      try {
        const { status, output } = await pipeline.finished;
        expectOneLine(output, /nothing was written for 2 s/);
        expect(status).toBe(75);
        const logged = await idle.submissionAfter(before);
        expect(logged.status).toBe('input-timeout');
      } finally {
        pipeline.stop();
      }
      await postfix.waitForLog(/lost connection after DATA \(\d+ bytes\) from localhost\[127\.0\.0\.1\]/, 10_000, logMark);
      await expectNothingDelivered();
    });
  });

  describe('with a small max_message_size', () => {
    // Larger than what the daemon reads before it opens the transaction, so
    // the limit is hit while DATA is open: the hard case.
    const limit = LOOKAHEAD_OCTETS + 64 * 1024;
    let small: MailsubmitUnderTest;
    beforeAll(async () => {
      small = await MailsubmitUnderTest.start({ downstreamPort: postfix.port, group: GROUP, limits: `max_message_size = ${limit}` });
      small.setAuthorizations([USER]);
    }, HOOK_TIMEOUT_MS);
    afterAll(async () => small?.stop(), HOOK_TIMEOUT_MS);

    it('a message over the limit: 65, over-limit, nothing delivered', async () => {
      const { result, logged } = await small.submitAndLog(user, ENVELOPE + '\n' + message(limit + 64 * 1024));
      expectOneLine(result.stderr, new RegExp(`larger than ${limit} octets`));
      expect(result.code).toBe(65);
      expect(logged.status).toBe('over-limit');
      await postfix.waitForLog(/lost connection after DATA \(\d+ bytes\) from localhost\[127\.0\.0\.1\]/, 10_000, logMark);
      await expectNothingDelivered();
    });
  });
});
