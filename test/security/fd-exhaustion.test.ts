/**
 * The daemon out of file descriptors: whatever it can no longer do (look
 * the caller up, receive its stdin, dup it, reach the MTA) is its own
 * shortage, answered 75 (try again), never 77 (not authorized) or any
 * other code that blames or refuses the caller for good. Once fds are free
 * again the same daemon serves as before, with its fd table back where it
 * started.
 *
 * The limit is lowered on the running daemon (prlimit) so that exactly 1
 * to 8 fd numbers are free below it, so that each step runs out at another point
 * of a submission (accept, the user database, the passed fd, the copy of
 * it, the stream). Each step's caller is a listed user not seen before:
 * a cached identity would skip the lookup.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MailsubmitUnderTest } from '../support/mailsubmit-under-test.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import { tearDown } from '../support/tear-down.ts';
import { ensureUser, type TestUser } from '../support/test-accounts.ts';
import { fdCount } from '../support/daemon-footprint.ts';
import { heldWithin } from '../support/until.ts';

const SUBMISSION = (n: number) => `sender: exhaust@example.net\nrecipient: rcpt@example.org\n\nSubject: step ${n}\n\nbody\n`;
const HEADROOMS = [1, 2, 3, 4, 5, 6, 7, 8];

describe('a daemon out of file descriptors', () => {
  const sink = new RecordingSink();
  let ms: MailsubmitUnderTest;
  let users: TestUser[];
  let pid: number;
  let hardLimit: string;
  let softLimit: string;
  let baseline: number;

  const openFds = (): number => fdCount(pid);
  /** The soft limit at which exactly `free` fd numbers are left (new fds take the lowest free numbers). */
  const limitLeaving = (free: number): number => {
    const open = new Set(readdirSync(`/proc/${pid}/fd`).map(Number));
    let left = free;
    for (let fd = 0; ; fd++) if (!open.has(fd) && --left === 0) return fd + 1;
  };
  const setSoftLimit = (soft: string) => execFileSync('prlimit', [`--pid=${pid}`, `--nofile=${soft}:${hardLimit}`]);

  beforeAll(async () => {
    ms = await MailsubmitUnderTest.start({ downstreamPort: await sink.listen() });
    users = [0, ...HEADROOMS].map((n) => ensureUser(`mstfdx${n}`));
    ms.setAuthorizations(users.map((u) => u.name));
    pid = ms.daemonPid as number;
    const limits = /^Max open files\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
    softLimit = limits?.[1] as string;
    hardLimit = limits?.[2] as string;
    // What a daemon opens once (the MTA connection pool, lazily loaded modules) is not counted as a leak.
    expect((await ms.submit(users[0] as TestUser, SUBMISSION(0))).code).toBe(0);
    await sink.waitForMessages(1);
    baseline = openFds();
  }, 30_000);

  afterAll(async () => {
    if (softLimit !== undefined) setSoftLimit(softLimit);
    await tearDown(ms, undefined, sink);
  });

  const results = new Map<number, number | null>();

  for (const headroom of HEADROOMS) {
    it(`answers a listed user 0 or 75, never 77, with ${headroom} fd(s) left`, async () => {
      setSoftLimit(String(limitLeaving(headroom)));
      let result;
      try {
        result = await ms.submit(users[headroom] as TestUser, SUBMISSION(headroom));
      } finally {
        setSoftLimit(softLimit);
      }
      results.set(headroom, result.code);
      expect([0, 75]).toContain(result.code);
      if (result.code === 75) expect(result.stderr).toMatch(/try again|too many submissions/);
      expect(ms.daemonPid).toBe(pid);
    }, 30_000);
  }

  it('says 75, not "not authorized", when the one fd left went to the connection itself', () => {
    // With one fd free, accept takes it and the user database cannot open /etc/passwd.
    expect(results.get(1)).toBe(75);
  });

  it('logs the shortage as overload, and nothing as not-authorized', async () => {
    const lines = ms.submissions();
    expect(lines.filter((line) => line.status === 'not-authorized')).toEqual([]);
    expect(lines.some((line) => line.status === 'overload' && /EMFILE/.test(String(line.reason)))).toBe(true);
  });

  it('serves again with its limit back, the same process, its fd table at the baseline', async () => {
    const delivered = sink.messages.length;
    const result = await ms.submit(users[HEADROOMS.length] as TestUser, SUBMISSION(99));
    expect(result.code).toBe(0);
    await sink.waitForMessages(delivered + 1);
    expect(ms.daemonPid).toBe(pid);
    expect(() => process.kill(pid, 0)).not.toThrow();
    await heldWithin(5000, () => openFds() === baseline);
    expect(openFds()).toBe(baseline);
  });
});
