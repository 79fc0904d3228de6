/**
 * The spool cannot be filled by callers, and rights come before bytes.
 * Every daemon here spools on a tmpfs of its own, so that what the daemon
 * holds shows in statfs: a full disk (53 to a qmail-queue caller, the
 * errno in the log, no file and no fd left), the per-uid and the total
 * quota and the free-space reserve (two callers, the second refused while
 * the first is held), an oversize message answered with 31 while the
 * caller is still writing (over-limit in the log, not input-timeout), and
 * a caller without the `client` capability refused before the daemon reads
 * one octet of its message. Real users, the real set-gid helper under its
 * qmail-queue name, a private Postfix.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statfsSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MailsubmitUnderTest } from '../support/mailsubmit-under-test.ts';
import { PrivatePostfix } from '../support/private-postfix.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import { tearDown } from '../support/tear-down.ts';
import { ensureUser, type TestUser } from '../support/test-accounts.ts';
import { fdCount } from '../support/daemon-footprint.ts';
import { until } from '../support/until.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * qmail.c's order: the whole message on fd 0, then the envelope on fd 1.
 * Unlike qmail.c it reports, as JSON lines, how much of the message the
 * pipe took before the helper was gone, and it can wait for a line on its
 * own stdin before writing the envelope (a caller held mid-submission).
 */
const CALLER = `
import fcntl, json, os, subprocess, sys
helper, message, envelope, uid, gid, env, hold = sys.argv[1:8]
mr, mw = os.pipe()
er, ew = os.pipe()
pipe_size = fcntl.fcntl(mw, 1032)  # F_GETPIPE_SZ
child = subprocess.Popen([helper], stdin=mr, stdout=er, user=int(uid), group=int(gid), extra_groups=[], env=json.loads(env))
os.close(mr)
os.close(er)
def put(fd, path):
    with open(path, 'rb') as source:
        data = source.read()
    done = 0
    try:
        while done < len(data):
            done += os.write(fd, data[done:done + 4096])
    except BrokenPipeError:
        pass
    os.close(fd)
    return done
written = put(mw, message)
print(json.dumps({'event': 'message-written', 'written': written, 'pipe': pipe_size}), flush=True)
if hold == '1':
    sys.stdin.readline()
put(ew, envelope)
print(json.dumps({'event': 'exit', 'code': child.wait()}), flush=True)
`;

interface CallerResult {
  readonly code: number;
  readonly stderr: string;
  /** Octets of the message the pipe took before the helper was gone. */
  readonly written: number;
  readonly pipeSize: number;
}

interface RunningCaller {
  /** Resolves when the whole message was written (or the pipe broke). */
  readonly messageWritten: Promise<void>;
  /** Lets a held caller write its envelope. */
  release(): void;
  readonly result: Promise<CallerResult>;
}

/** A tmpfs of `size` at a fresh directory, root's and 0700 as the daemon demands. */
function mountTmpfs(parent: string, name: string, size: string): string {
  const dir = join(parent, name);
  mkdirSync(dir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir]);
  return dir;
}

function usedOctets(dir: string): number {
  const s = statfsSync(dir);
  return (s.blocks - s.bfree) * s.bsize;
}

describe.skipIf(!PrivatePostfix.isAvailable())('the spool: limits that hold, rights before bytes', () => {
  const sink = new RecordingSink();
  let postfix: PrivatePostfix;
  let work: string;
  let files: string;
  const mounts: string[] = [];
  const daemons: MailsubmitUnderTest[] = [];
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  let plain: TestUser;
  let serial = 0;

  beforeAll(async () => {
    postfix = await PrivatePostfix.start({ relayPort: await sink.listen() });
    work = mkdtempSync('/tmp/mailsubmit-spool-');
    chmodSync(work, 0o755);
    files = join(work, 'files');
    mkdirSync(files, { mode: 0o755 });
    alice = ensureUser('mstspalice');
    bob = ensureUser('mstspbob');
    carol = ensureUser('mstspcarol');
    plain = ensureUser('mstspplain');
  }, 30_000);

  afterAll(async () => {
    for (const ms of daemons.slice(1)) await ms.stop();
    await tearDown(daemons[0], postfix, sink);
    for (const dir of mounts) execFileSync('umount', [dir]);
    rmSync(work, { recursive: true, force: true });
  });

  /** A daemon spooling on its own tmpfs of `size`, with these [limits] lines. */
  async function daemonOn(size: string, limits: string, timeouts?: string): Promise<{ ms: MailsubmitUnderTest; spool: string; qmailQueue: string }> {
    const spool = mountTmpfs(work, `spool-${daemons.length}`, size);
    mounts.push(spool);
    const ms = await MailsubmitUnderTest.start({
      downstreamPort: postfix.port,
      daemon: `spool_directory = "${spool}"`,
      limits,
      ...(timeouts !== undefined ? { timeouts } : {}),
    });
    daemons.push(ms);
    ms.setAuthorizations(['mstspalice', 'mstspbob', 'mstspcarol', 'mstspplain']);
    const qmailQueue = join(dirname(ms.helperPath), 'mailsubmit-qmail-queue');
    symlinkSync(ms.helperPath, qmailQueue);
    return { ms, spool, qmailQueue };
  }

  function message(octets: number, tag: string): Buffer {
    const head = `From: ${tag}@example.net\nTo: rcpt@example.org\nSubject: ${tag}\nMessage-ID: <${tag}@example.net>\nDate: Tue, 24 Nov 2026 12:00:00 +0000\n\n`;
    const line = `${'y'.repeat(75)}\n`;
    return Buffer.from(head + line.repeat(Math.ceil((octets - head.length) / line.length)));
  }

  function qmailCall(qmailQueue: string, user: TestUser, body: Buffer, options: { hold?: boolean; env?: Record<string, string> } = {}): RunningCaller {
    serial += 1;
    const messageFile = join(files, `message-${serial}`);
    const envelopeFile = join(files, `envelope-${serial}`);
    writeFileSync(messageFile, body, { mode: 0o644 });
    writeFileSync(envelopeFile, `F${user.name}@example.net\0Trcpt-${serial}@example.org\0\0`, { mode: 0o644 });
    const child = spawn(
      '/usr/bin/python3',
      ['-c', CALLER, qmailQueue, messageFile, envelopeFile, String(user.uid), String(user.gid), JSON.stringify(options.env ?? {}), options.hold ? '1' : '0'],
      { stdio: ['pipe', 'pipe', 'pipe'], env: {} },
    );
    let stdout = '';
    let stderr = '';
    let written = -1;
    let pipeSize = -1;
    let markWritten: () => void = () => undefined;
    const messageWritten = new Promise<void>((resolve) => (markWritten = resolve));
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      for (const line of stdout.split('\n').slice(0, -1)) {
        const event = JSON.parse(line) as { event: string; written?: number; pipe?: number };
        if (event.event === 'message-written') {
          written = event.written ?? -1;
          pipeSize = event.pipe ?? -1;
          markWritten();
        }
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const result = new Promise<CallerResult>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', () => {
        const exit = stdout
          .split('\n')
          .filter((l) => l.includes('"exit"'))
          .map((l) => JSON.parse(l) as { code: number })[0];
        if (exit === undefined) reject(new Error(`the caller did not report the helper's exit: ${stdout} ${stderr}`));
        else resolve({ code: exit.code, stderr, written, pipeSize });
      });
    });
    if (!options.hold) child.stdin.end();
    return { messageWritten, release: () => child.stdin.end('go\n'), result };
  }

  it('a full disk while holding: 53 to the qmail-queue caller, ENOSPC in the log, no file and no fd left', async () => {
    const { ms, spool, qmailQueue } = await daemonOn('2m', 'spool_min_free = 0');
    const pid = ms.daemonPid as number;
    // One delivery first, so that the downstream pool's connection is part of the baseline.
    const warm = await qmailCall(qmailQueue, alice, message(4 * KiB, 'warm')).result;
    expect(warm.code).toBe(0);
    await until(() => usedOctets(spool) === 0, 'the spool to be empty');
    const baseline = fdCount(pid);

    const full = await qmailCall(qmailQueue, alice, message(3 * MiB, 'too-big-for-the-disk')).result;
    expect(full.code).toBe(53);
    expect(full.stderr).toContain('ENOSPC');
    const line = await ms.waitForSubmission((l) => l.status === 'spool-full');
    expect(line.exit).toBe(53);
    expect(String(line.reason)).toContain('ENOSPC (no space left on device)');

    expect(readdirSync(spool)).toEqual([]);
    await until(() => usedOctets(spool) === 0, 'the held file to be freed');
    await until(() => fdCount(pid) <= baseline, 'the daemon to close what it opened');
    expect(fdCount(pid)).toBeLessThanOrEqual(baseline);
  }, 60_000);

  it('the native and sendmail front doors never hold a message in the spool, so a full spool does not stop them', async () => {
    const { ms, spool } = await daemonOn('1m', 'spool_min_free = 0\nspool_quota_total = 0');
    const big = message(3 * MiB, 'native-large');
    const native = await ms.submit(alice, Buffer.concat([Buffer.from(`sender: <mstspalice@example.net>\nrecipient: <native@example.org>\n\n`), big]));
    expect(native).toMatchObject({ code: 0, stderr: '' });
    const sendmail = join(dirname(ms.helperPath), 'mailsubmit-sendmail');
    symlinkSync(ms.helperPath, sendmail);
    const viaSendmail = await new Promise<number | null>((resolve) => {
      const child = spawn(sendmail, ['-i', 'sendmail@example.org'], { uid: alice.uid, gid: alice.gid, stdio: ['pipe', 'ignore', 'inherit'], env: {} });
      child.once('close', resolve);
      child.stdin.end(message(3 * MiB, 'sendmail-large'));
    });
    expect(viaSendmail).toBe(0);
    expect(usedOctets(spool)).toBe(0);
    await until(() => ms.submissions().length >= 2, 'both submission log lines');
    expect(ms.submissions().map((l) => l.status)).toEqual(['ok', 'ok']);
  }, 60_000);

  it('per-uid quota: a second large qmail-queue submission of the same uid is refused (53, naming the key) while the first is held', async () => {
    const { ms, spool, qmailQueue } = await daemonOn('16m', `spool_min_free = 0\nspool_quota_per_uid = ${1536 * KiB}`);
    const first = qmailCall(qmailQueue, alice, message(MiB, 'per-uid-first'), { hold: true });
    await first.messageWritten;
    await until(() => usedOctets(spool) >= MiB - 64 * KiB, 'the first message to be held in the spool');

    const second = await qmailCall(qmailQueue, alice, message(MiB, 'per-uid-second')).result;
    expect(second.code).toBe(53);
    expect(second.stderr).toContain('limits.spool_quota_per_uid is 1572864');
    // Another uid is not bound by alice's quota.
    const other = await qmailCall(qmailQueue, bob, message(MiB, 'per-uid-other')).result;
    expect(other.code).toBe(0);

    first.release();
    expect((await first.result).code).toBe(0);
    await until(() => usedOctets(spool) === 0, 'the spool to be empty');
    expect(readdirSync(spool)).toEqual([]);
    const refused = ms.submissions().filter((l) => l.status === 'spool-full');
    expect(refused).toHaveLength(1);
    expect(refused[0]?.uid).toBe(alice.uid);
  }, 60_000);

  it('total quota: a third uid is refused while two others are held', async () => {
    const { spool, qmailQueue } = await daemonOn('16m', `spool_min_free = 0\nspool_quota_total = ${2560 * KiB}`);
    const first = qmailCall(qmailQueue, alice, message(MiB, 'total-first'), { hold: true });
    const second = qmailCall(qmailQueue, bob, message(MiB, 'total-second'), { hold: true });
    await Promise.all([first.messageWritten, second.messageWritten]);
    await until(() => usedOctets(spool) >= 2 * MiB - 128 * KiB, 'both messages to be held');

    const third = await qmailCall(qmailQueue, carol, message(MiB, 'total-third')).result;
    expect(third.code).toBe(53);
    expect(third.stderr).toContain('limits.spool_quota_total is 2621440');

    first.release();
    second.release();
    expect((await first.result).code).toBe(0);
    expect((await second.result).code).toBe(0);
    await until(() => usedOctets(spool) === 0, 'the spool to be empty');
  }, 60_000);

  it('free-space reserve: a second message that would cut into spool_min_free is refused', async () => {
    const { spool, qmailQueue } = await daemonOn('4m', `spool_min_free = ${2560 * KiB}`);
    const first = qmailCall(qmailQueue, alice, message(900 * KiB, 'reserve-first'), { hold: true });
    await first.messageWritten;
    await until(() => usedOctets(spool) >= 800 * KiB, 'the first message to be held');

    const second = await qmailCall(qmailQueue, bob, message(900 * KiB, 'reserve-second')).result;
    expect(second.code).toBe(53);
    expect(second.stderr).toContain('limits.spool_min_free keeps 2621440');

    first.release();
    expect((await first.result).code).toBe(0);
    await until(() => usedOctets(spool) === 0, 'the spool to be empty');
  }, 60_000);

  describe('answered at once, rights before bytes', () => {
    let ms: MailsubmitUnderTest;
    let spool: string;
    let qmailQueue: string;

    beforeAll(async () => {
      // A deadline the test would reach if the answer waited for it (the test's own timeout is longer).
      ({ ms, spool, qmailQueue } = await daemonOn('16m', `spool_min_free = 0\nmax_message_size = ${512 * KiB}`, 'input = 30\ninput_idle = 30'));
    }, 30_000);

    it('an oversize qmail-queue message gets 31 while the caller is still writing it: over-limit, not input-timeout', async () => {
      const caller = await qmailCall(qmailQueue, alice, message(4 * MiB, 'oversize')).result;
      expect(caller.code).toBe(31);
      expect(caller.stderr).toContain('over a configured limit');
      // The caller never got to finish its message: the daemon answered before reading it all.
      expect(caller.written).toBeLessThan(4 * MiB);
      const line = await ms.waitForSubmission((l) => l.uid === alice.uid && l.status !== 'ok');
      expect(line.status).toBe('over-limit');
      expect(line.exit).toBe(31);
      await until(() => usedOctets(spool) === 0, 'the spool to be empty');
    }, 60_000);

    it('a caller without the client capability passing TCPREMOTEIP is refused before one octet is read or held', async () => {
      const before = usedOctets(spool);
      const caller = await qmailCall(qmailQueue, plain, message(400 * KiB, 'no-client'), { env: { TCPREMOTEIP: '192.0.2.7' } }).result;
      expect(caller.code).toBe(81);
      expect(caller.stderr).toContain('"client" capability');
      // Only what the pipe itself buffers was written: the daemon read nothing of it.
      expect(caller.pipeSize).toBeGreaterThan(0);
      expect(caller.written).toBeLessThanOrEqual(caller.pipeSize);
      expect(usedOctets(spool)).toBe(before);
      const line = await ms.waitForSubmission((l) => l.uid === plain.uid);
      expect(line.status).toBe('attribute-not-permitted');
    }, 60_000);
  });
});
