/**
 * The space the local queue may take, against a real Postfix that is
 * stopped, so every sendmail-door message is queued: its file system full
 * (a small tmpfs the test mounts as queue.directory), and each limit of the
 * [queue] table. A message that does not fit gets 75 and the caller's
 * stderr says why (the full file system, or the key to raise); no
 * incomplete or damaged file remains; the messages that fit are delivered
 * once Postfix is back; and after space returns, queueing works again.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arrivalsById } from '../support/arrivals.ts';
import { damagedQueueFiles, queueContents, queueFileProblem } from '../support/local-queue-files.ts';
import { startMailPath } from '../support/mail-path.ts';
import { MailsubmitUnderTest, type SubmitResult } from '../support/mailsubmit-under-test.ts';
import { PrivatePostfix } from '../support/private-postfix.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import { sendmail } from '../support/sendmail-caller.ts';
import { tearDown } from '../support/tear-down.ts';
import { ensureUser, type TestUser } from '../support/test-accounts.ts';
import { until } from '../support/until.ts';

const KIB = 1024;
const FAST_RETRIES = 'probe_interval = 1\nminimal_backoff_time = 1\nmaximal_backoff_time = 2';

/** A message of about `octets`, named by its subject. */
function message(subject: string, octets: number): string {
  const line = `${subject} ${'x'.repeat(70)}\n`;
  return `From: space@example.org\nTo: ops@example.org\nSubject: ${subject}\n\n${line.repeat(Math.ceil(octets / line.length))}`;
}

/** The whole-file check can fail: a copy of a committed file cut short by one octet reads as damaged. */
function expectTheCheckToFindACutFile(root: string, queueId: string): void {
  const copy = mkdtempSync('/tmp/mailsubmit-cut-queue-file-');
  try {
    mkdirSync(join(copy, 'ready'));
    const bytes = readFileSync(join(root, 'ready', queueId));
    writeFileSync(join(copy, 'ready', queueId), bytes);
    expect(queueFileProblem(copy, queueId)).toBeNull();
    writeFileSync(join(copy, 'ready', queueId), bytes.subarray(0, bytes.length - 1));
    expect(queueFileProblem(copy, queueId)).toMatch(/no trailer/);
    const cutInTheMessage = Buffer.concat([bytes.subarray(0, bytes.length - 1000), bytes.subarray(bytes.length - 37)]);
    writeFileSync(join(copy, 'ready', queueId), cutInTheMessage);
    expect(queueFileProblem(copy, queueId)).toMatch(/the trailer says \d+ message octets/);
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}

describe.skipIf(!PrivatePostfix.isAvailable() && !process.env.CI)('the local queue out of space', () => {
  const sink = new RecordingSink();
  const mountPoint = mkdtempSync('/tmp/mailsubmit-queue-tmpfs-');
  const queueRoot = join(mountPoint, 'queue');
  const filler = join(mountPoint, 'filler');
  let postfix: PrivatePostfix;
  let ms: MailsubmitUnderTest;
  let user: TestUser;
  let other: TestUser;
  let third: TestUser;

  beforeAll(async () => {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0700', 'tmpfs', mountPoint]);
    // min_free 0: the file system itself fills up, with no reserve to refuse first.
    ({ postfix, ms } = await startMailPath(sink, { mailsubmit: { queue: `directory = "${queueRoot}"\nmin_free = 0\n${FAST_RETRIES}` } }));
    user = ensureUser('mstqspace');
    other = ensureUser('mstqspace2');
    third = ensureUser('mstqspace3');
    ms.setAuthorizations(['mstqspace']);
    await postfix.stopMailSystem();
  }, 60_000);

  afterAll(async () => {
    await tearDown(ms, postfix, sink);
    execFileSync('umount', [mountPoint]);
    rmdirSync(mountPoint);
  }, 60_000);

  const send = (instance: MailsubmitUnderTest, who: TestUser, subject: string, octets: number): Promise<SubmitResult> =>
    sendmail(instance, who, ['-i', '-f', `${subject}@example.org`, 'ops@example.org'], message(subject, octets));

  const subjectOf = (data: Buffer) => /\r\nSubject: (\S+)\r\n/.exec(data.toString('latin1'))?.[1];

  it('full file system: 75 naming it, no incomplete or damaged file; space back: 0 again; the queued ones delivered', { timeout: 120_000 }, async () => {
    // Room for about two messages of 300 KiB: the rest of the 2 MiB is the filler's.
    writeFileSync(filler, Buffer.alloc(2 * KIB * KIB - 700 * KIB));
    const results: Array<[string, SubmitResult]> = [];
    for (let n = 0; n < 5; n++) results.push([`full-${n}`, await send(ms, user, `full-${n}`, 300 * KIB)]);
    const codes = results.map(([, r]) => r.code);
    const fitted = results.filter(([, r]) => r.code === 0).map(([subject]) => subject);
    const refused = results.filter(([, r]) => r.code !== 0);
    // The first ones fit, and once the file system is full every later one is refused.
    expect(codes).toEqual([...fitted.map(() => 0), ...refused.map(() => 75)]);
    expect(fitted.length).toBeGreaterThan(0);
    expect(refused.length).toBeGreaterThan(0);
    for (const [, r] of refused) expect(r.stderr).toMatch(/file system is full \(ENOSPC\)/);

    const contents = queueContents(queueRoot);
    expect(contents.incoming).toEqual([]);
    expect(contents.ready).toHaveLength(fitted.length);
    expect(damagedQueueFiles(queueRoot)).toEqual([]);
    expectTheCheckToFindACutFile(queueRoot, contents.ready[0] ?? '');

    rmSync(filler);
    const again = await send(ms, user, 'full-after', 300 * KIB);
    expect(again).toMatchObject({ code: 0, stderr: '' });
    fitted.push('full-after');

    await postfix.startMailSystem();
    await until(() => fitted.every((s) => sink.messages.some((m) => subjectOf(m.data) === s)), 'the queued messages at the sink', 30_000);
    await until(() => queueContents(queueRoot).ready.length === 0, 'the local queue to empty', 30_000);
    await postfix.flushAndWait();
    const arrivals = arrivalsById(sink.messages, (m) => subjectOf(m.data));
    expect([...arrivals.keys()].filter((s) => s.startsWith('full-')).sort()).toEqual([...fitted].sort());
    expect(fitted.map((s) => arrivals.get(s)?.postfixIds.size)).toEqual(fitted.map(() => 1));
    expect(queueContents(queueRoot)).toEqual({ incoming: [], ready: [], state: [] });
    console.log(`local queue on a 2 MiB tmpfs: ${fitted.length - 1} of 5 messages of 300 KiB fitted, ${refused.length} got 75; after the filler went, one more was queued; all ${fitted.length} delivered`);
  });

  describe('the limits of the [queue] table', () => {
    let limited: MailsubmitUnderTest;
    let reserved: MailsubmitUnderTest;

    beforeAll(async () => {
      await postfix.stopMailSystem().catch(() => undefined);
      limited = await MailsubmitUnderTest.start({ downstreamPort: postfix.port, queue: `min_free = 0\nmax_messages = 3\nmax_size = 600000\nmax_size_per_uid = 400000\n${FAST_RETRIES}` });
      limited.setAuthorizations(['mstqspace', 'mstqspace2', 'mstqspace3']);
      reserved = await MailsubmitUnderTest.start({ downstreamPort: postfix.port, queue: `min_free = ${2 ** 49}\n${FAST_RETRIES}` });
      reserved.setAuthorizations(['mstqspace']);
    }, 60_000);

    afterAll(async () => {
      await limited?.stop();
      await reserved?.stop();
    }, 60_000);

    it('max_size_per_uid, max_size, max_messages and min_free each give 75 naming the key; nothing half-written stays', { timeout: 120_000 }, async () => {
      const root = join(limited.dir, 'queue');
      expect(await send(limited, user, 'limit-a1', 300 * KIB)).toMatchObject({ code: 0, stderr: '' });
      const perUid = await send(limited, user, 'limit-a2', 150 * KIB);
      expect(perUid.code).toBe(75);
      expect(perUid.stderr).toMatch(/uid \d+ has \d+ octets in the local queue and queue\.max_size_per_uid is 400000/);
      expect(await send(limited, other, 'limit-b1', 1 * KIB)).toMatchObject({ code: 0, stderr: '' });
      const total = await send(limited, third, 'limit-c1', 350 * KIB);
      expect(total.code).toBe(75);
      expect(total.stderr).toMatch(/queue\.max_size is 600000/);
      expect(await send(limited, other, 'limit-b2', 1 * KIB)).toMatchObject({ code: 0, stderr: '' });
      const count = await send(limited, other, 'limit-b3', 1 * KIB);
      expect(count.code).toBe(75);
      expect(count.stderr).toMatch(/holds 3 messages and queue\.max_messages is 3/);

      const reserve = await send(reserved, user, 'limit-reserve', 1 * KIB);
      expect(reserve.code).toBe(75);
      expect(reserve.stderr).toMatch(/octets free and queue\.min_free keeps 562949953421312 of them/);

      expect(queueContents(root).incoming).toEqual([]);
      expect(queueContents(root).ready).toHaveLength(3);
      expect(damagedQueueFiles(root)).toEqual([]);
      expect(queueContents(join(reserved.dir, 'queue'))).toEqual({ incoming: [], ready: [], state: [] });

      await postfix.startMailSystem();
      const delivered = ['limit-a1', 'limit-b1', 'limit-b2'];
      await until(() => delivered.every((s) => sink.messages.some((m) => subjectOf(m.data) === s)), 'the three queued messages at the sink', 30_000);
      await until(() => queueContents(root).ready.length === 0, 'the local queue to empty', 30_000);
      await postfix.flushAndWait();
      const arrived = [...arrivalsById(sink.messages, (m) => subjectOf(m.data)).keys()].filter((s) => s.startsWith('limit-'));
      expect(arrived.sort()).toEqual(delivered);
    });
  });
});
