/**
 * The daemon SIGKILLed at 200 random moments (seeded) while sendmail-door
 * callers keep submitting, and restarted after each kill. Postfix is down
 * for the first and third quarters of the kills, so messages are queued
 * locally and the kills land in the queue's writes, and up for the second
 * and fourth, so the kills also land in deliveries from the queue.
 *
 * What must hold: a message whose caller heard 0 arrives at least once; a
 * message whose caller heard 75 (the daemon died before the reply) may
 * arrive or not: a real caller would retry. Handed to Postfix twice only in
 * the documented commit window: the queue runner's delivery was committed
 * by the MTA and the daemon killed before it removed the queue file, or the
 * message committed and the caller not yet answered; those are counted and
 * reported. Once recovered and drained, incoming/ and ready/ are empty and
 * no damaged file was reported.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arrivalsById } from '../support/arrivals.ts';
import { queueContents } from '../support/local-queue-files.ts';
import { startMailPath } from '../support/mail-path.ts';
import type { ChildOutput } from '../support/child-output.ts';
import type { MailsubmitUnderTest } from '../support/mailsubmit-under-test.ts';
import { PrivatePostfix } from '../support/private-postfix.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import { sendmail } from '../support/sendmail-caller.ts';
import { tearDown } from '../support/tear-down.ts';
import { ensureUser, type TestUser } from '../support/test-accounts.ts';
import { sleep, until } from '../support/until.ts';
import { killAndRestart } from './driver.ts';
import { seededRandom } from './fault-schedule.ts';

const SEED = 20261206;
const KILLS = 200;
const CALLERS = 2;
/** The daemon lives this long (drawn uniformly, ms) after it logged its start before the next kill. */
const KILL_AFTER_MS: readonly [number, number] = [0, 300];
/** Postfix is down while this holds for the kill's number. */
const postfixDownFor = (kill: number) => Math.floor(kill / (KILLS / 4)) % 2 === 0;

interface Submission {
  readonly result: ChildOutput;
  readonly startedAt: number;
}

describe.skipIf(!PrivatePostfix.isAvailable() && !process.env.CI)('the local queue with the daemon SIGKILLed', () => {
  const sink = new RecordingSink();
  let postfix: PrivatePostfix;
  let ms: MailsubmitUnderTest;
  let user: TestUser;

  beforeAll(async () => {
    ({ postfix, ms } = await startMailPath(sink, { mailsubmit: { queue: 'probe_interval = 1\nminimal_backoff_time = 1\nmaximal_backoff_time = 2\nmax_deliveries = 4' } }));
    user = ensureUser('mstqkill');
    ms.setAuthorizations(['mstqkill']);
  }, 60_000);

  afterAll(() => tearDown(ms, postfix, sink), 60_000);

  it(`loses no message a caller heard 0 for, through ${KILLS} kills in queueing and delivery`, { timeout: 400_000 }, async () => {
    const started = Date.now();
    const random = seededRandom(SEED);
    const submissions = new Map<string, Submission>();
    let running = true;
    let next = 0;
    const caller = async () => {
      while (running) {
        const id = String(next++);
        const startedAt = Date.now();
        const result = await sendmail(ms, user, ['-i', '-f', `kill-${id}@example.org`, 'ops@example.org'], `From: kill-${id}@example.org\nSubject: kill ${id}\nX-Kill-Id: ${id}\n\nmessage ${id}\n`);
        submissions.set(id, { result, startedAt });
        // A caller told to try later does so a little later, not in a tight loop.
        if (result.code !== 0) await sleep(250);
      }
    };
    const callers = Promise.all(Array.from({ length: CALLERS }, caller));
    const kills: number[] = [];
    let postfixDown = false;
    try {
      for (let kill = 0; kill < KILLS; kill++) {
        if (postfixDownFor(kill) !== postfixDown) {
          postfixDown = postfixDownFor(kill);
          await (postfixDown ? postfix.stopMailSystem() : postfix.startMailSystem());
        }
        const [from, to] = KILL_AFTER_MS;
        await sleep(from + Math.floor(random() * (to - from)));
        kills.push(Date.now());
        await killAndRestart(ms);
      }
    } finally {
      running = false;
      await callers;
      if (postfixDown) await postfix.startMailSystem();
    }
    const killSeconds = (Date.now() - started) / 1000;

    const root = `${ms.dir}/queue`;
    const idOf = (mailFrom: string) => /^MAIL FROM:<kill-(\d+)@example\.org>/.exec(mailFrom)?.[1];
    const heardZero = [...submissions].filter(([, s]) => s.result.code === 0).map(([id]) => id);
    const arrivedIds = () => new Set(sink.messages.map((m) => idOf(m.mailFrom)));
    await until(() => heardZero.every((id) => arrivedIds().has(id)), 'every message a caller heard 0 for at the sink', 60_000).catch(() => undefined);
    await until(() => queueContents(root).ready.length === 0, 'the local queue to empty', 60_000).catch(() => undefined);
    await postfix.flushAndWait();

    const arrivals = arrivalsById(sink.messages, (m) => idOf(m.mailFrom));
    const lost = heardZero.filter((id) => !arrivals.has(id));
    expect(lost).toEqual([]);
    const otherExits = [...submissions].filter(([, s]) => s.result.code !== 0 && s.result.code !== 75).map(([id, s]) => `${id}: ${s.result.code} ${s.result.signal ?? ''} ${s.result.stderr.trim()}`);
    expect(otherExits).toEqual([]);
    expect(sink.messages.filter((m) => idOf(m.mailFrom) === undefined).map((m) => m.mailFrom)).toEqual([]);
    expect(queueContents(root)).toEqual({ incoming: [], ready: [], state: [] });
    expect(ms.logLines.filter((l) => l.msg === 'local queue: a file this mailsubmit cannot read is left alone' || l.msg === 'local queue: held, the queue file cannot be read')).toEqual([]);

    // Handed to Postfix twice: only in the commit window, which a kill opens: the first handing
    // committed by the MTA, the daemon killed before it removed the queue file or answered the caller.
    // The daemon's log lines can be lost with it, so Postfix's log dates the handings (to the second);
    // a message the daemon logged as committed by the MTA itself may never be handed again.
    const handedAt = postfixHandings(postfix.log());
    const committedByMta = new Set(ms.submissions().filter((l) => l.commitment === 'mta').map((l) => String(l.sender)));
    const handedTwice = [...arrivals].filter(([, a]) => a.postfixIds.size > 1);
    const inCommitWindow = (id: string, postfixIds: ReadonlySet<string>) => {
      const [first, second] = [...postfixIds].map((p) => handedAt.get(p) ?? Number.NaN).sort((a, b) => a - b);
      if (committedByMta.has(`kill-${id}@example.org`) || first === undefined || second === undefined) return false;
      return kills.some((at) => at >= first && at < second + 1000);
    };
    const unexplained = handedTwice.filter(([id, a]) => !inCommitWindow(id, a.postfixIds)).map(([id, a]) => `${id}: ${[...a.postfixIds].join(' ')}`);
    expect(unexplained).toEqual([]);

    const queueLogged = new Set(ms.logLines.filter((l) => l.msg === 'local queue: queued' || l.msg === 'local queue: delivered').map((l) => String(l.sender)));
    const loggedSenders = new Set(ms.submissions().map((l) => String(l.sender)));
    const codes = [...submissions.values()].map((s) => s.result.code);
    const count = (msg: string) => ms.logLines.filter((l) => l.msg === msg).length;
    const report = {
      seconds: Math.round((Date.now() - started) / 1000),
      killPhaseSeconds: Math.round(killSeconds),
      kills: kills.length,
      submissions: submissions.size,
      exit0: codes.filter((c) => c === 0).length,
      exit75: codes.filter((c) => c === 75).length,
      exit75Arrived: [...submissions].filter(([id, s]) => s.result.code === 75 && arrivals.has(id)).length,
      queuedLocally: count('local queue: queued'),
      // Callers that heard 0 whose submission log line the kill took with it (the logger writes in batches).
      zeroWithoutLogLine: heardZero.filter((id) => !loggedSenders.has(`kill-${id}@example.org`)).length,
      deliveredFromQueue: count('local queue: delivered'),
      incompleteRemovedAtStart: count('local queue: removed an incomplete file left by a crash'),
      handedToPostfixTwice: handedTwice.length,
      handedTwiceWithQueueLog: handedTwice.filter(([id]) => queueLogged.has(`kill-${id}@example.org`)).length,
      postfixOwnRedeliveries: [...arrivals.values()].filter((a) => a.copies > a.postfixIds.size).length,
    };
    console.log(`local queue kills: ${JSON.stringify(report)}`);
    // The kills landed where they were meant to: in queueing, in deliveries from the queue, in writes.
    expect(kills).toHaveLength(KILLS);
    expect(report.queuedLocally).toBeGreaterThan(0);
    expect(report.deliveredFromQueue).toBeGreaterThan(0);
    expect(report.exit0).toBeGreaterThan(0);
  });
});

/** When Postfix first logged each of its queue ids (the handing of a message to it), in ms; its log has whole seconds. */
function postfixHandings(log: string): Map<string, number> {
  const year = new Date().getUTCFullYear();
  const times = new Map<string, number>();
  for (const line of log.split('\n')) {
    const match = /^(\w{3} \d{2} \d{2}:\d{2}:\d{2}) \S+ postfix\/smtpd\[\d+\]: ([0-9A-F]+): client=/.exec(line);
    if (match !== null && !times.has(match[2] as string)) times.set(match[2] as string, Date.parse(`${match[1]} ${year} UTC`));
  }
  return times;
}
