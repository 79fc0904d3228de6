/**
 * Postfix stopped in the middle of a burst: 1,000 messages through the
 * sendmail front door from 8 callers at once, a real unprivileged user
 * running the real set-gid helper as mailsubmit-sendmail. Postfix goes down
 * once a quarter of the burst has been answered, so both commitments occur:
 * the first messages are the MTA's, the rest wait in the local queue. Every
 * caller must hear 0, and once Postfix is started again every message must
 * be handed to Postfix exactly once (its sender names it; the Postfix
 * queue id in its Received field says which handing it came by) and reach
 * the sink, with the local queue left empty. The one exception is the
 * MTA's own commit window, counted and reported: a transaction in flight
 * while Postfix stops, committed by its cleanup but ended before the daemon
 * read the 2xx, so the daemon queued a message Postfix already had. Postfix delivering its own
 * queue file twice (stopped after the sink's 250, before it marked the file
 * done) is counted and reported, as it is not mailsubmit's doing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMailPath } from '../support/mail-path.ts';
import type { MailsubmitUnderTest, SubmitResult } from '../support/mailsubmit-under-test.ts';
import { PrivatePostfix } from '../support/private-postfix.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import { arrivalsById } from '../support/arrivals.ts';
import { queueContents } from '../support/local-queue-files.ts';
import { sendmail } from '../support/sendmail-caller.ts';
import { tearDown } from '../support/tear-down.ts';
import { ensureUser, type TestUser } from '../support/test-accounts.ts';
import { until } from '../support/until.ts';

const MESSAGES = 1_000;
const CALLERS = 8;
/** Answered submissions before Postfix is stopped. */
const STOP_AFTER = 250;

describe.skipIf(!PrivatePostfix.isAvailable() && !process.env.CI)('the local queue under a burst while Postfix stops', () => {
  const sink = new RecordingSink();
  let postfix: PrivatePostfix;
  let ms: MailsubmitUnderTest;
  let user: TestUser;

  beforeAll(async () => {
    ({ postfix, ms } = await startMailPath(sink, { mailsubmit: { queue: 'probe_interval = 1\nminimal_backoff_time = 1\nmaximal_backoff_time = 2\nmax_deliveries = 4' } }));
    user = ensureUser('mstburst');
    ms.setAuthorizations(['mstburst']);
  }, 60_000);

  afterAll(() => tearDown(ms, postfix, sink), 60_000);

  it('every caller exits 0, and after postfix start every message arrives exactly once', { timeout: 300_000 }, async () => {
    const started = Date.now();
    const results = new Map<number, SubmitResult>();
    const inFlight = new Map<number, { startedAt: number; endedAt: number }>();
    let stopWindow: { from: number; to: number } | null = null;
    let next = 0;
    let stopping: Promise<void> | null = null;
    const caller = async () => {
      while (next < MESSAGES) {
        const n = next++;
        const message = `From: burst-${n}@example.org\nTo: ops@example.org\nSubject: burst ${n}\nX-Burst-Id: ${n}\n\nmessage ${n} of the burst\n`;
        const startedAt = Date.now();
        results.set(n, await sendmail(ms, user, ['-i', '-f', `burst-${n}@example.org`, 'ops@example.org'], message));
        inFlight.set(n, { startedAt, endedAt: Date.now() });
        if (results.size === STOP_AFTER) {
          const from = Date.now();
          stopping = postfix.stopMailSystem().then(() => void (stopWindow = { from, to: Date.now() }));
        }
      }
    };
    await Promise.all(Array.from({ length: CALLERS }, caller));
    await stopping;
    const burstSeconds = (Date.now() - started) / 1000;

    const failed = [...results].filter(([, r]) => r.code !== 0).map(([n, r]) => `${n}: ${r.code} ${r.stderr.trim()}`);
    expect(failed).toEqual([]);
    expect(results.size).toBe(MESSAGES);

    await postfix.startMailSystem();
    const senderOf = (mailFrom: string) => /^MAIL FROM:<burst-(\d+)@example\.org>/.exec(mailFrom)?.[1];
    const arrived = () => new Set(sink.messages.map((m) => senderOf(m.mailFrom))).size;
    await until(() => arrived() === MESSAGES, `all ${MESSAGES} messages at the sink (${arrived()} so far)`, 120_000);
    await until(() => queueContents(`${ms.dir}/queue`).ready.length === 0, 'the local queue to empty', 30_000);
    await until(() => ms.submissions().length === MESSAGES, 'a log line for every submission', 30_000);
    await postfix.flushAndWait();

    const arrivals = arrivalsById(sink.messages, (m) => senderOf(m.mailFrom));
    expect(sink.messages.filter((m) => senderOf(m.mailFrom) === undefined).map((m) => m.mailFrom)).toEqual([]);
    expect(arrivals.size).toBe(MESSAGES);
    // Handed to Postfix once each. A second Postfix queue id is allowed only in the MTA's own commit
    // window: Postfix stopping in the middle of the transaction, after its cleanup committed the file
    // and before the daemon read the 2xx, so the daemon never heard it and queued the message.
    const mtaWindow = (id: string) => {
      const logged = ms.submissions().find((l) => l.sender === `burst-${id}@example.org`);
      const times = inFlight.get(Number(id));
      const window = stopWindow as { from: number; to: number } | null;
      return logged?.status === 'queued-locally' && !String(logged.mta_reply ?? '').startsWith('2') && times !== undefined && window !== null && times.startedAt <= window.to && times.endedAt >= window.from;
    };
    const handedTwice = [...arrivals].filter(([, a]) => a.postfixIds.size !== 1);
    const unexplained = handedTwice.filter(([id]) => !mtaWindow(id)).map(([id, a]) => {
      // What the daemon and Postfix said of it, so that a failure shows where the second handing came from.
      const logged = ms.submissions().find((l) => l.sender === `burst-${id}@example.org`);
      const postfixSaid = postfix.log().split('\n').filter((l) => [...a.postfixIds].some((p) => l.includes(`${p}: `)) && !/ (qmgr|smtp)\[/.test(l));
      return `${id}: ${[...a.postfixIds].join(' ')}; daemon: ${logged?.status} ${logged?.mta_reply ?? ''}; postfix: ${postfixSaid.join(' | ')}`;
    });
    expect(unexplained).toEqual([]);
    const inMtaWindow = handedTwice.map(([id, a]) => `${id} (${[...a.postfixIds].join(' ')}: daemon heard ${ms.submissions().find((l) => l.sender === `burst-${id}@example.org`)?.mta_reply})`);
    // Postfix's own second delivery of a file it had delivered when `postfix stop` ended its smtp client: not mailsubmit's.
    const postfixRedelivered = [...arrivals].filter(([, a]) => a.copies > a.postfixIds.size).length;
    expect(queueContents(`${ms.dir}/queue`)).toEqual({ incoming: [], ready: [], state: [] });

    const byMta = ms.submissions().filter((l) => l.status === 'ok' && l.commitment === 'mta').length;
    const byQueue = ms.submissions().filter((l) => l.status === 'queued-locally' && l.commitment === 'local-queue').length;
    console.log(
      `local queue burst: ${MESSAGES} messages from ${CALLERS} callers in ${burstSeconds.toFixed(1)} s; committed by the MTA ${byMta}, by the local queue ${byQueue}; ` +
        `handed to Postfix twice in the MTA's commit window (Postfix stopping mid-transaction) ${inMtaWindow.length}${inMtaWindow.length > 0 ? ` [${inMtaWindow.join(', ')}]` : ''}, else once each; Postfix itself delivered ${postfixRedelivered} of its own queue files twice (stopped after the sink's 250); all arrived ${((Date.now() - started) / 1000).toFixed(1)} s after the start`,
    );
    // Postfix went down after a quarter of the burst: both commitments occurred, and every submission had one of them.
    expect(byMta).toBeGreaterThanOrEqual(STOP_AFTER - CALLERS);
    expect(byQueue).toBeGreaterThan(0);
    expect(byMta + byQueue).toBe(MESSAGES);
  });
});
