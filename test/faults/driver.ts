/**
 * A fault campaign: N messages, each with a unique X-Ledger-Id (and the same
 * id in its sender, so the proxy can name the transaction), submitted C at a
 * time through the real set-gid helper and daemon into a private Postfix,
 * with the FaultProxy in between. Beside it, optionally, the daemon is
 * SIGKILLed and restarted at random moments, and helpers are SIGKILLed at
 * random moments. A retrying caller resubmits after 75 (or a killed helper)
 * like a real one would. At the end Postfix's queue is flushed until empty
 * and the ledger classifies every message.
 *
 * Everything it starts it stops again, whatever happens.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { MailsubmitUnderTest } from '../support/mailsubmit-under-test.ts';
import { PrivatePostfix } from '../support/private-postfix.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import { ensureUser, removeAll, type TestUser } from '../support/test-accounts.ts';
import { FaultProxy } from './fault-proxy.ts';
import { FaultSchedule, seededRandom, type FaultKind, type FaultRates } from './fault-schedule.ts';
import { Ledger, type Attempt, type Classification } from './ledger.ts';
import { sleep } from '../support/until.ts';

export interface CampaignOptions {
  readonly messages: number;
  readonly concurrency: number;
  readonly seed: number;
  readonly rates: FaultRates;
  /** Milliseconds between daemon SIGKILLs (drawn uniformly from the range); null: never. */
  readonly daemonKillEveryMs: readonly [number, number] | null;
  /** Share of attempts whose helper is SIGKILLed, at a moment drawn from `helperKillAtMs` (default 0-40 ms) after its start. */
  readonly helperKillShare: number;
  readonly helperKillAtMs?: readonly [number, number];
  /** Further attempts after a 75 or a killed helper (0: report the first exit). */
  readonly retries: number;
  /** Share of messages larger than the daemon's look-ahead, so DATA is streamed while it reads. */
  readonly largeShare: number;
  /** Deal only these fault kinds (default: all), and send this share of drops as RST (default 0.5). */
  readonly only?: readonly FaultKind[];
  readonly resetShare?: number;
  /** The daemon's [timeouts] table; short, so stalls end quickly. */
  readonly timeouts?: string;
}

export interface CampaignResult {
  readonly options: CampaignOptions;
  readonly table: Classification;
  /** The daemon died without being killed by the campaign. */
  readonly daemonCrashes: number;
  readonly seconds: number;
}

export const SHORT_TIMEOUTS = ['connect = 2', 'command = 2', 'data_block = 2', 'data_end = 4'].join('\n');
/** An attempt running this long is hung: every daemon timeout in use is far shorter. */
const HUNG_AFTER_MS = 120_000;
const DRAIN_DEADLINE_MS = 180_000;

export async function runCampaign(options: CampaignOptions): Promise<CampaignResult> {
  const started = Date.now();
  const random = seededRandom(options.seed ^ 0x5bd1e995);
  const schedule = new FaultSchedule(options.seed, options.rates, options.only, options.resetShare);
  const sink = new RecordingSink();
  const ledger = new Ledger();
  const name = `mstfault${process.pid}`;
  let postfix: PrivatePostfix | undefined;
  let proxy: FaultProxy | undefined;
  let ms: MailsubmitUnderTest | undefined;
  try {
    postfix = await PrivatePostfix.start({ relayPort: await sink.listen() });
    proxy = new FaultProxy(postfix.port, schedule);
    ms = await MailsubmitUnderTest.start({
      downstreamPort: await proxy.listen(),
      group: `mstfaultg${process.pid}`,
      timeouts: options.timeouts ?? SHORT_TIMEOUTS,
    });
    const user = ensureUser(name);
    ms.setAuthorizations([name]);

    const daemon = new DaemonKiller(ms, ledger, options.daemonKillEveryMs, random);
    // Held until the workers are done: a daemon that would not restart fails the campaign, after it.
    let killerFailure: unknown = null;
    const killing = daemon.run().catch((err: unknown) => {
      killerFailure = err;
    });
    let next = 0;
    const worker = async () => {
      while (next < options.messages) {
        const n = next++;
        const id = `${options.seed}-${n}`;
        const message = composeMessage(id, random, random() < options.largeShare);
        const entry = ledger.add(id, message);
        for (let tries = 0; tries <= options.retries; tries++) {
          // The sender names the run too: a killed helper's job may still be talking to the proxy during the next run.
          const input = Buffer.concat([Buffer.from(`sender: <ledger-${id}.${tries}@example.org>\nrecipient: <reader@example.org>\n\n`), message]);
          const [killFrom, killTo] = options.helperKillAtMs ?? [0, 40];
          const killAfter = random() < options.helperKillShare ? killFrom + Math.floor(random() * (killTo - killFrom)) : null;
          const attempt = await submitOnce(ms as MailsubmitUnderTest, user, input, killAfter);
          entry.attempts.push(attempt);
          if (!(attempt.exit === 75 || attempt.exit === null) || attempt.hung) break;
          await sleep(50 + Math.floor(random() * 200));
        }
      }
    };
    await Promise.all(Array.from({ length: options.concurrency }, worker));
    daemon.stop();
    await killing;
    if (killerFailure !== null) throw killerFailure;
    await drain(postfix, sink);
    // For looking into a verdict: every daemon log line of the campaign, one JSON object a line.
    if (process.env.FAULTS_DAEMON_LOG) writeFileSync(process.env.FAULTS_DAEMON_LOG, ms.logLines.map((line) => JSON.stringify(line)).join('\n'));
    return {
      options,
      table: ledger.classify(sink.messages, proxy.faults, proxy.transactions),
      daemonCrashes: daemon.crashes,
      seconds: Math.round((Date.now() - started) / 1000),
    };
  } finally {
    await ms?.stop();
    await proxy?.close();
    await postfix?.stop();
    await sink.close();
    removeAll();
  }
}

/** One run of the helper as `user`; SIGKILLed after `killAfterMs` when given. */
function submitOnce(ms: MailsubmitUnderTest, user: TestUser, input: Buffer, killAfterMs: number | null): Promise<Attempt> {
  const startedAt = Date.now();
  const child = spawn(ms.helperPath, [], { uid: user.uid, gid: user.gid, stdio: ['pipe', 'ignore', 'pipe'], env: {} });
  let stderr = '';
  let helperKilled = false;
  let hung = false;
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.on('error', () => undefined);
  child.stdin.end(input);
  const killTimer =
    killAfterMs === null
      ? null
      : setTimeout(() => {
          helperKilled = child.exitCode === null && child.signalCode === null;
          child.kill('SIGKILL');
        }, killAfterMs);
  const hungTimer = setTimeout(() => {
    hung = true;
    child.kill('SIGKILL');
  }, HUNG_AFTER_MS);
  return new Promise<Attempt>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (killTimer !== null) clearTimeout(killTimer);
      clearTimeout(hungTimer);
      resolve({ exit: code, signal, stderr, startedAt, endedAt: Date.now(), helperKilled: helperKilled && signal === 'SIGKILL', hung });
    });
  });
}

/** SIGKILLs and restarts the daemon at random moments; also notices a daemon that died by itself. */
class DaemonKiller {
  crashes = 0;
  private running = true;
  private wake: (() => void) | null = null;

  constructor(
    private readonly ms: MailsubmitUnderTest,
    private readonly ledger: Ledger,
    private readonly every: readonly [number, number] | null,
    private readonly random: () => number,
  ) {}

  stop(): void {
    this.running = false;
    this.wake?.();
  }

  async run(): Promise<void> {
    let due = this.nextKill();
    while (this.running) {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 250);
      });
      if (!this.running) break;
      const pid = this.ms.daemonPid;
      if (pid !== undefined && !alive(pid)) {
        // Not ours: a crash. Restart, so the campaign goes on and counts it.
        this.crashes++;
        const at = Date.now();
        await this.restart();
        this.ledger.daemonKills.push({ at, restartedAt: Date.now() });
        continue;
      }
      if (Date.now() < due) continue;
      const at = Date.now();
      await this.restart();
      this.ledger.daemonKills.push({ at, restartedAt: Date.now() });
      due = this.nextKill();
    }
  }

  private async restart(): Promise<void> {
    await killAndRestart(this.ms);
  }

  private nextKill(): number {
    if (this.every === null) return Number.POSITIVE_INFINITY;
    const [min, max] = this.every;
    return Date.now() + min + Math.floor(this.random() * (max - min));
  }
}

/**
 * SIGKILL and start again, returning once the new daemon says it started:
 * the killed one leaves its socket file behind, so the harness's wait for
 * the file returns at once, and helpers would meet a refused connect for
 * a while that no kill window covers.
 */
export async function killAndRestart(ms: MailsubmitUnderTest): Promise<void> {
  const started = () => ms.logLines.filter((line) => line.msg === 'mailsubmitd started').length;
  const before = started();
  await ms.stopDaemon('SIGKILL');
  await ms.startDaemon();
  const deadline = Date.now() + 20_000;
  while (started() === before) {
    if (Date.now() > deadline) throw new Error('mailsubmitd did not log its start after a restart');
    await sleep(20);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Flushes Postfix until its queue is empty and the sink has stopped receiving. */
async function drain(postfix: PrivatePostfix, sink: RecordingSink): Promise<void> {
  const deadline = Date.now() + DRAIN_DEADLINE_MS;
  let seen = -1;
  for (;;) {
    await postfix.flush();
    await sleep(1_000);
    const queued = await postfix.queueSize();
    if (queued === 0 && sink.messages.length === seen) return;
    seen = sink.messages.length;
    if (Date.now() > deadline) throw new Error(`Postfix still has ${queued} messages queued after ${DRAIN_DEADLINE_MS} ms`);
  }
}

const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliett'];

/**
 * A message whose first field is its X-Ledger-Id, with LF line ends, and
 * the awkward bits a byte-for-byte comparison should cover: lines that
 * start with dots (stuffed on the wire), 8-bit octets, long lines, empty
 * lines. Large ones are past the daemon's look-ahead.
 */
export function composeMessage(id: string, random: () => number, large: boolean): Buffer {
  const lines = [
    `X-Ledger-Id: ${id}`,
    `From: <ledger-${id}@example.org>`,
    'To: <reader@example.org>',
    `Subject: fault campaign message ${id}`,
    `Message-Id: <${id}@faults.test>`,
    'Date: Tue, 24 Nov 2026 12:00:00 +0000',
    '',
  ];
  const count = large ? 9_000 + Math.floor(random() * 6_000) : 1 + Math.floor(random() * 40);
  for (let i = 0; i < count; i++) {
    const pick = random();
    if (pick < 0.05) lines.push('.');
    else if (pick < 0.1) lines.push(`..${WORDS[i % WORDS.length]} starts with dots`);
    else if (pick < 0.15) lines.push('');
    else if (pick < 0.2) lines.push(`caf\u00e9 na\u00efve 8-bit line ${i}`);
    else {
      const words = Array.from({ length: 1 + Math.floor(random() * 14) }, () => WORDS[Math.floor(random() * WORDS.length)]);
      lines.push(words.join(' '));
    }
  }
  return Buffer.from(`${lines.join('\n')}\n`, 'latin1');
}
