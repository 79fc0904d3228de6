/**
 * Two downstreams against the relay bed (test/support/postfix-relays.ts):
 * `local` (plain, priority 1) and `starttls` (verified TLS, priority 2),
 * the real helper and daemon in front. The primary stopped in the middle
 * of a burst: every submission answered 0 arrives once, those after the
 * stop through `starttls`, and a 75 is heard only by a submission that was
 * in flight while `local` went down. The primary back: after a probe gets
 * through, traffic returns to it. The local queue, with both down, holds a
 * sendmail caller's message and delivers it through the same choice when
 * one comes back. Selectors (front door, caller, sender domain) choose among
 * the relays, from the local queue too; two of one priority share the
 * traffic. On test servers: a first MTA that never greets is left after
 * its command_timeout, but not once its caller's deadline has passed; one
 * that took the message but whose reply was lost (close or reset after the
 * final dot) is never followed by the second.
 */
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { chmodSync, chownSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ctl } from '../../packages/admin-cli/test/run-ctl.ts';
import { arrivalsById } from '../support/arrivals.ts';
import { buildHelper } from '../support/helper-build.ts';
import { MailsubmitUnderTest, type SubmitResult } from '../support/mailsubmit-under-test.ts';
import { PostfixRelays } from '../support/postfix-relays.ts';
import { PrivatePostfix } from '../support/private-postfix.ts';
import { RecordingSink, type RecordedMessage } from '../support/recording-sink.ts';
import { sendmail } from '../support/sendmail-caller.ts';
import { tearDown } from '../support/tear-down.ts';
import { ensureGroup, ensureUser, removeAll, type TestUser } from '../support/test-accounts.ts';
import { until } from '../support/until.ts';

const HOOK_TIMEOUT_MS = 90_000;
const BURST = 200;
const CALLERS = 4;
/** The answer after which `local` is stopped. */
const STOP_AFTER = 50;
/** Submissions from this index on start only once `postfix stop` has returned: surely after the stop. */
const AFTER_STOP_FROM = 100;

interface Answer {
  readonly index: number;
  readonly result: SubmitResult;
  readonly startedAt: number;
  readonly endedAt: number;
}

interface DownstreamState {
  readonly name: string;
  readonly healthy: boolean;
}

/** The tag a test message carries as its sender's local part, Message-ID and Subject. */
function input(tag: string): string {
  return `sender: <${tag}@example.org>\nrecipient: <ops@example.net>\n\nMessage-ID: <${tag}@failover.test>\nSubject: ${tag}\n\nbody of ${tag}\n`;
}

/** A [[downstream]] table for a loopback port. */
function downstreamTable(name: string, port: number, ...lines: string[]): string {
  return ['[[downstream]]', `name = "${name}"`, `target = "127.0.0.1:${port}"`, ...lines].join('\n');
}

function tagOf(message: RecordedMessage): string | undefined {
  return /^Subject: ([\w-]+)\r$/m.exec(message.data.toString('latin1'))?.[1];
}

describe.skipIf(!PrivatePostfix.isAvailable())('two downstreams: failover and return', () => {
  const sink = new RecordingSink();
  let relays: PostfixRelays;
  let ms: MailsubmitUnderTest;
  let user: TestUser;

  /** The submission log lines by their tag (the sender's local part). */
  function loggedByTag(): Map<string, Record<string, unknown>> {
    return new Map(ms.submissions().map((line) => [String(line.sender).replace(/@.*$/, ''), line]));
  }

  function downstreamStates(): DownstreamState[] {
    const status = ctl(['-c', ms.configPath, 'status', '--json']);
    expect(status.code).toBe(0);
    return (JSON.parse(status.stdout) as { downstreams: DownstreamState[] }).downstreams;
  }

  const verifiedTls = (): string[] => ['tls = "verify"', `tls_ca_file = "${relays.ca.caFile}"`];

  const healthOf = (name: string): boolean | undefined => downstreamStates().find((d) => d.name === name)?.healthy;

  beforeAll(async () => {
    relays = await PostfixRelays.start(sink);
    ms = await MailsubmitUnderTest.start({
      downstreamPort: 0,
      downstreams: [
        downstreamTable('local', relays.local.port, 'priority = 1', 'probe_interval = 1'),
        downstreamTable('starttls', relays.starttls.port, 'priority = 2', 'probe_interval = 1', ...verifiedTls()),
      ].join('\n'),
      queue: 'probe_interval = 1\nminimal_backoff_time = 1\nmaximal_backoff_time = 2',
    });
    user = ensureUser('mstfailover');
    ms.setAuthorizations(['mstfailover']);
  }, HOOK_TIMEOUT_MS);

  afterAll(async () => {
    await tearDown(ms, undefined, sink);
    await relays?.stop();
  }, HOOK_TIMEOUT_MS);

  it(`local stopped after ${STOP_AFTER} of ${BURST} answers: every 0 arrives once, the later ones through starttls (verified TLS); 75 only in flight at the stop`, async () => {
    const answers: Answer[] = [];
    let next = 0;
    let stopStartedAt = Infinity;
    let stopEndedAt = Infinity;
    let stopped: Promise<void> | undefined;
    const caller = async (): Promise<void> => {
      for (let index = next++; index < BURST; index = next++) {
        if (index >= AFTER_STOP_FROM) await until(() => stopped !== undefined, 'the stop of local', 60_000).then(() => stopped);
        const startedAt = Date.now();
        const result = await ms.submit(user, input(`burst-${index}`));
        answers.push({ index, result, startedAt, endedAt: Date.now() });
        if (answers.length === STOP_AFTER) {
          stopStartedAt = Date.now();
          stopped = relays.local.stopMailSystem().then(() => void (stopEndedAt = Date.now()));
        }
      }
    };
    await Promise.all(Array.from({ length: CALLERS }, caller));
    await stopped;
    // A caller waiting for the stop resumes in the millisecond it ended: the
    // clock alone cannot tell it from one that started just before the end.
    const startedAfterStop = (a: Answer): boolean => a.index >= AFTER_STOP_FROM || a.startedAt > stopEndedAt;

    expect(answers).toHaveLength(BURST);
    const other = answers.filter((a) => a.result.code !== 0 && a.result.code !== 75);
    expect(other.map((a) => `burst-${a.index}: ${a.result.code} ${a.result.stderr}`)).toEqual([]);
    const ok = answers.filter((a) => a.result.code === 0);
    const tempfailed = answers.filter((a) => a.result.code === 75);
    // A 75 is allowed only where the submission was in flight while local went down (its final dot sent, no reply).
    expect(tempfailed.filter((a) => startedAfterStop(a) || a.endedAt < stopStartedAt).map((a) => a.index)).toEqual([]);
    expect(tempfailed.length).toBeLessThanOrEqual(CALLERS);

    // Every submission after the stop went to starttls, with a verified certificate, and says so in its log line.
    await until(() => ms.submissions().length >= BURST, 'a log line per submission');
    const logged = loggedByTag();
    const afterStop = answers.filter(startedAfterStop);
    expect(afterStop.length).toBeGreaterThanOrEqual(BURST - AFTER_STOP_FROM);
    for (const a of afterStop) {
      expect(a.result.code, `burst-${a.index}`).toBe(0);
      expect(logged.get(`burst-${a.index}`), `burst-${a.index}`).toMatchObject({ status: 'ok', downstream: 'starttls', downstream_tls: { verified: true, protocol: expect.stringMatching(/^TLSv1\.[23]$/) } });
    }
    // Before the stop, local took them.
    const beforeStop = answers.filter((a) => a.endedAt < stopStartedAt);
    expect(beforeStop.length).toBeGreaterThanOrEqual(STOP_AFTER - CALLERS);
    for (const a of beforeStop) expect(logged.get(`burst-${a.index}`)?.downstream, `burst-${a.index}`).toBe('local');

    // What local queued before it stopped leaves it once it is back.
    await relays.local.startMailSystem();
    await until(() => ok.every((a) => sink.messages.some((m) => tagOf(m) === `burst-${a.index}`)), 'every message answered 0 at the sink', 60_000);
    await Promise.all([relays.local.flushAndWait(), relays.starttls.flushAndWait()]);
    const arrivals = arrivalsById(sink.messages, (m) => (tagOf(m)?.startsWith('burst-') === true ? tagOf(m) : undefined));
    // Handed to Postfix once each: one Postfix queue id per message.
    const handedTwice = ok.filter((a) => (arrivals.get(`burst-${a.index}`)?.postfixIds.size ?? 0) !== 1);
    expect(handedTwice.map((a) => `burst-${a.index}: ${[...(arrivals.get(`burst-${a.index}`)?.postfixIds ?? [])].join(' ')}`)).toEqual([]);
    // A second copy under the same Postfix id is Postfix's own redelivery (`postfix stop` between the sink's 250 and marking it done).
    const postfixRedelivered = ok.filter((a) => (arrivals.get(`burst-${a.index}`)?.copies ?? 0) > 1).map((a) => a.index);
    for (const a of afterStop) {
      const message = sink.messages.find((m) => tagOf(m) === `burst-${a.index}`);
      expect(message && relays.via(message), `burst-${a.index}`).toBe('starttls');
    }
    // A 75 whose message arrived anyway: the MTA committed it and the reply was lost with the stop (the contract's window).
    const inFlightAtStop = answers.filter((a) => !startedAfterStop(a) && a.endedAt >= stopStartedAt).length;
    const tempfailedButArrived = tempfailed.filter((a) => arrivals.has(`burst-${a.index}`)).map((a) => a.index);
    console.log(
      `failover burst: ${inFlightAtStop} submissions overlapped the stop of local; ${ok.length} answered 0, ${tempfailed.length} answered 75 (in flight at the stop: ${tempfailed.map((a) => a.index).join(', ') || 'none'}; arrived anyway: ${tempfailedButArrived.join(', ') || 'none'}), ` +
        `${afterStop.length} after the stop via starttls, Postfix's own redeliveries: ${postfixRedelivered.join(', ') || 'none'}`,
    );
  }, 180_000);

  it('local back: unhealthy until its probe gets through, then new submissions go to it again', async () => {
    await relays.local.stopMailSystem();
    try {
      const during = await ms.submitAndLog(user, input('while-local-down'));
      expect(during.result.code).toBe(0);
      expect(during.logged).toMatchObject({ downstream: 'starttls', downstream_tls: { verified: true } });
      expect(healthOf('local')).toBe(false);
      expect(healthOf('starttls')).toBe(true);
    } finally {
      await relays.local.startMailSystem();
    }
    await until(() => healthOf('local') === true, 'mailsubmitctl status to show local healthy', 20_000);
    for (let i = 0; i < 5; i++) {
      const back = await ms.submitAndLog(user, input(`local-back-${i}`));
      expect(back.result.code).toBe(0);
      expect(back.logged.downstream).toBe('local');
      expect(back.logged.downstream_tls).toBeUndefined();
      expect(relays.via(await sink.waitForMessage((m) => tagOf(m) === `local-back-${i}`))).toBe('local');
    }
    expect(relays.via(await sink.waitForMessage((m) => tagOf(m) === 'while-local-down'))).toBe('starttls');
  }, 90_000);

  it('selectors: by front door, by caller and sender domain (case aside), the rest to the table without one; a selected downstream down: the next that takes it', async () => {
    const other = ensureUser('mstselother');
    const selecting = await MailsubmitUnderTest.start({
      downstreamPort: 0,
      downstreams: [
        downstreamTable('bulk', relays.local.port, 'priority = 3'),
        downstreamTable('cron', relays.starttls.port, 'priority = 1', 'doors = ["sendmail"]', ...verifiedTls()),
        downstreamTable('billing', relays.local.port, 'priority = 0', `callers = ["${user.name}"]`, 'sender_domains = ["billing.example"]'),
      ].join('\n'),
      queue: 'probe_interval = 1\nminimal_backoff_time = 1\nmaximal_backoff_time = 2',
    });
    const viaSendmail = async (sender: string, tag: string): Promise<Record<string, unknown>> => {
      const before = selecting.submissions().length;
      expect(await sendmail(selecting, user, ['-i', '-f', sender, 'ops@example.net'], `Subject: ${tag}\n\nby cron\n`)).toMatchObject({ code: 0 });
      return selecting.submissionAfter(before);
    };
    const viaNative = async (who: TestUser, sender: string, tag: string): Promise<Record<string, unknown>> => {
      const { result, logged } = await selecting.submitAndLog(who, input(tag).replace(/^sender: <[^>]*>/, `sender: <${sender}>`));
      expect(result.code).toBe(0);
      return logged;
    };
    try {
      selecting.setAuthorizations([user.name, other.name]);
      expect((await viaNative(user, 'a@example.org', 'sel-native')).downstream).toBe('bulk');
      expect((await viaSendmail('a@example.org', 'sel-sendmail')).downstream).toBe('cron');
      expect((await viaNative(user, 'x@Billing.Example', 'sel-billing')).downstream).toBe('billing');
      expect((await viaSendmail('x@billing.example', 'sel-billing-sendmail')).downstream).toBe('billing');
      expect((await viaNative(other, 'x@billing.example', 'sel-billing-other')).downstream).toBe('bulk');
      await relays.starttls.stopMailSystem();
      try {
        expect((await viaSendmail('a@example.org', 'sel-cron-down')).downstream).toBe('bulk');
        const movedOn = await selecting.waitForLog((l) => l.msg === 'submission moves on to the next downstream');
        expect(movedOn).toMatchObject({ downstream: 'cron', next: 'bulk' });
      } finally {
        await relays.starttls.startMailSystem();
      }
      // From the local queue the same selector holds: both down, the message waits; back, it goes to cron, not bulk.
      await Promise.all([relays.local.stopMailSystem(), relays.starttls.stopMailSystem()]);
      let starttlsBack = false;
      try {
        expect(await viaSendmail('a@example.org', 'sel-queued')).toMatchObject({ status: 'queued-locally' });
        await relays.starttls.startMailSystem();
        starttlsBack = true;
        await sink.waitForMessage((m) => tagOf(m) === 'sel-queued', 30_000);
      } finally {
        await relays.local.startMailSystem();
        if (!starttlsBack) await relays.starttls.startMailSystem();
      }
      const expected: Record<string, string> = { 'sel-native': 'local', 'sel-sendmail': 'starttls', 'sel-billing': 'local', 'sel-billing-sendmail': 'local', 'sel-billing-other': 'local', 'sel-cron-down': 'local', 'sel-queued': 'starttls' };
      for (const [tag, instance] of Object.entries(expected)) expect(relays.via(await sink.waitForMessage((m) => tagOf(m) === tag)), tag).toBe(instance);
    } finally {
      await selecting.stop();
    }
  }, 90_000);

  it('two healthy downstreams of one priority share the traffic: of 30 submissions each takes some', async () => {
    const sharing = await MailsubmitUnderTest.start({
      downstreamPort: 0,
      downstreams: [downstreamTable('a', relays.local.port, 'priority = 1', 'weight = 1'), downstreamTable('b', relays.starttls.port, 'priority = 1', 'weight = 1', ...verifiedTls())].join('\n'),
    });
    try {
      sharing.setAuthorizations([user.name]);
      const taken: Record<string, number> = {};
      for (let i = 0; i < 30; i++) {
        const { result, logged } = await sharing.submitAndLog(user, input(`shared-${i}`));
        expect(result.code).toBe(0);
        const name = String(logged.downstream);
        taken[name] = (taken[name] ?? 0) + 1;
      }
      // Each side missing all 30 at weight 1:1 has a chance of 2^-30.
      expect(Object.keys(taken).sort()).toEqual(['a', 'b']);
      console.log(`shared traffic at weight 1:1: ${JSON.stringify(taken)}`);
    } finally {
      await sharing.stop();
    }
  }, 90_000);

  it('sendmail door, both downstreams down: 0 from the local queue; starttls back: delivered from the queue through it', async () => {
    await Promise.all([relays.local.stopMailSystem(), relays.starttls.stopMailSystem()]);
    let starttlsBack = false;
    try {
      const before = ms.submissions().length;
      const submitted = await sendmail(ms, user, ['-i', '-f', 'queued-both-down@example.org', 'ops@example.net'], 'Subject: queued-both-down\n\nheld until a downstream answers\n');
      expect(submitted).toMatchObject({ code: 0, stderr: '' });
      const logged = await ms.submissionAfter(before);
      expect(logged).toMatchObject({ status: 'queued-locally', commitment: 'local-queue', exit: 0 });
      expect(sink.messages.some((m) => tagOf(m) === 'queued-both-down')).toBe(false);
      await relays.starttls.startMailSystem();
      starttlsBack = true;
      const delivered = await sink.waitForMessage((m) => tagOf(m) === 'queued-both-down', 60_000);
      expect(relays.via(delivered)).toBe('starttls');
      const line = await ms.waitForLog((l) => l.msg === 'local queue: delivered' && l.queue_id === logged.local_queue_id, 20_000);
      expect(line.mta_queue_id).toMatch(/^[0-9A-Za-z]+$/);
    } finally {
      await relays.local.startMailSystem();
      if (!starttlsBack) await relays.starttls.startMailSystem();
    }
    await relays.starttls.flushAndWait();
    expect(arrivalsById(sink.messages, (m) => (tagOf(m) === 'queued-both-down' ? 'queued-both-down' : undefined)).get('queued-both-down')?.copies).toBe(1);
  }, 120_000);
});

/**
 * A proxy in front of an MTA that lets the whole transaction through and,
 * once the MTA answers the final dot, cuts the connection instead of passing
 * the reply on: the MTA has the message, the client never hears so. `cut`
 * says how: an orderly close (FIN), or a reset (RST: the client reads
 * ECONNRESET), as a crashed or killed MTA host leaves it.
 */
async function replyLosingProxy(targetPort: number, cut: 'close' | 'reset'): Promise<{ port: number; close: () => Promise<void> }> {
  const server = createServer((client) => {
    const mta = connect(targetPort, '127.0.0.1');
    let tail = '';
    let dotSent = false;
    client.on('data', (chunk: Buffer) => {
      const seen = tail + chunk.toString('latin1');
      if (seen.includes('\r\n.\r\n')) dotSent = true;
      tail = seen.slice(-4);
      mta.write(chunk);
    });
    mta.on('data', (chunk: Buffer) => {
      if (!dotSent) return void client.write(chunk);
      if (cut === 'reset') client.resetAndDestroy();
      else client.end();
      mta.destroy();
    });
    for (const socket of [client, mta]) socket.on('error', () => undefined);
    client.on('close', () => mta.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe.skipIf(!PrivatePostfix.isAvailable())('two downstreams on test servers: when a submission moves on', () => {
  let user: TestUser;

  beforeAll(() => {
    user = ensureUser('mstreplylost');
  });

  afterAll(() => removeAll());

  /** A daemon whose first downstream accepts connections and never greets (its command_timeout as given), the second a sink. */
  async function withSilentFirst(commandTimeout: number, body: (ms: MailsubmitUnderTest, second: RecordingSink) => Promise<void>): Promise<void> {
    const held = new Set<Socket>();
    const silent = createServer((socket) => void held.add(socket.on('error', () => undefined)));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const second = new RecordingSink();
    const ms = await MailsubmitUnderTest.start({
      downstreamPort: 0,
      downstreams: [
        downstreamTable('silent', (silent.address() as AddressInfo).port, 'priority = 1', `command_timeout = ${commandTimeout}`),
        downstreamTable('second', await second.listen(), 'priority = 2'),
      ].join('\n'),
    });
    try {
      ms.setAuthorizations([user.name]);
      await body(ms, second);
    } finally {
      await ms.stop();
      await second.close();
      for (const socket of held) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  }

  it('the first MTA accepts connections and never greets: after its command_timeout the submission moves on to the second', async () => {
    await withSilentFirst(1, async (ms, second) => {
      const { result, logged } = await ms.submitAndLog(user, input('after-silence'));
      expect(result.code).toBe(0);
      expect(logged.downstream).toBe('second');
      const movedOn = await ms.waitForLog((l) => l.msg === 'submission moves on to the next downstream');
      expect(movedOn).toMatchObject({ downstream: 'silent', next: 'second', reason: expect.stringMatching(/^no greeting within 1000 ms/) });
      await second.waitForMessage((m) => tagOf(m) === 'after-silence');
    });
  }, 60_000);

  it('the caller\'s deadline passes while the first MTA is silent: the caller hears 75 from the helper, and the submission does not move on to the second after it', async () => {
    await withSilentFirst(6, async (ms, second) => {
      // The helper's reply deadline (the caller's) shorter than the silent MTA's greeting timeout.
      buildHelper({ out: ms.helperPath, socket: ms.socketPath, authorizationList: ms.authorizationList, timeoutSeconds: 2 });
      chownSync(ms.helperPath, 0, ensureGroup(ms.group));
      chmodSync(ms.helperPath, 0o2755);
      const before = ms.submissions().length;
      const result = await ms.submit(user, input('caller-deadline'));
      expect(result.code).toBe(75);
      expect(result.stderr).toMatch(/no reply from the mailsubmit daemon within 2 seconds/);
      // The daemon logs the submission once the silent MTA's timeout ended its attempt.
      const logged = await ms.submissionAfter(before, 20_000);
      expect(logged).toMatchObject({ status: 'caller-gone', exit: 75 });
      expect(ms.logLines.filter((l) => l.msg === 'submission moves on to the next downstream')).toEqual([]);
      expect(second.messages.filter((m) => tagOf(m) === 'caller-deadline')).toEqual([]);
    });
  }, 60_000);

  for (const cut of ['close', 'reset'] as const) {
    it(`the first MTA took the message and the connection was cut (${cut}) before its reply: 75, and the second downstream gets nothing`, async () => {
      const committing = new RecordingSink();
      const second = new RecordingSink();
      const proxy = await replyLosingProxy(await committing.listen(), cut);
      const secondPort = await second.listen();
      const ms = await MailsubmitUnderTest.start({
        downstreamPort: 0,
        downstreams: [downstreamTable('first', proxy.port, 'priority = 1', 'pool_size = 0'), downstreamTable('second', secondPort, 'priority = 2', 'pool_size = 0')].join('\n'),
      });
      try {
        ms.setAuthorizations([user.name]);
        const tag = `reply-lost-${cut}`;
        const { result, logged } = await ms.submitAndLog(user, input(tag));
        await committing.waitForMessage((m) => tagOf(m) === tag);
        expect(second.messages.filter((m) => tagOf(m) === tag)).toEqual([]);
        expect(ms.logLines.filter((l) => l.msg === 'submission moves on to the next downstream')).toEqual([]);
        expect(result.code).toBe(75);
        expect(logged.exit).toBe(75);
      } finally {
        await ms.stop();
        await proxy.close();
        await second.close();
        await committing.close();
      }
    }, 60_000);
  }
});
