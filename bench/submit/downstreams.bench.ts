/**
 * Several downstreams and TLS: mailsubmit's throughput with two healthy
 * downstreams of equal priority and weight against one, and with STARTTLS
 * verified against plain SMTP to the same relay, all in one run against the
 * test bed's Postfix relays (test/support/postfix-relays.ts) relaying to one
 * recording sink. The same 1 KB message, 8 parallel callers (the real
 * set-gid helper as an unprivileged user, each call a fresh process), the
 * daemon restarted with each configuration. Needs root and the postfix
 * package.
 *
 *   npx tsx bench/submit/downstreams.bench.ts [--n 300] [--rounds 4] [--single 50]
 *
 * Each round runs the four configurations (every second round in reverse
 * order, so a machine growing busier favours none), and a last row adds
 * the rounds up (all messages over all their time); a batch counts only
 * when the sink has every message once, each byte for byte after Postfix's
 * Received: field, through the instances the configuration allows, over
 * TLS exactly when it asks for TLS, so a broken run reports no figure.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sampleMessage } from '../validate/sample-message.ts';
import type { RelayName } from '../../test/support/postfix-relays.ts';
import { PrivatePostfix } from '../../test/support/private-postfix.ts';
import { crlfForm, withoutFirstHeaderField, type RecordedMessage } from '../../test/support/recording-sink.ts';
import { submissionInput } from '../../test/support/submission-input.ts';
import { BenchMailPath } from './bench-mail-path.ts';
import { clockTicks, fmt, median, option, processCpuUs, runTimed, table, type Sample } from './timed-runs.ts';

const PARALLEL = 8;
const WARM_UP = 16;
const SENDER = 'mstbenchd@example.org';
const RECIPIENT = 'rcpt@example.org';
/** How long a batch's sink must stay at N after the last message: a duplicate would show here. */
const SETTLE_MS = 1_000;

type ConfigurationName = 'local' | 'local+starttls' | 'starttls-none' | 'starttls-verify';

interface Configuration {
  readonly name: ConfigurationName;
  /** The instances a message may go through. */
  readonly via: readonly RelayName[];
  /** Whether the hop from the daemon to Postfix is TLS. */
  readonly tls: boolean;
}

const CONFIGURATIONS: readonly Configuration[] = [
  { name: 'local', via: ['local'], tls: false },
  { name: 'local+starttls', via: ['local', 'starttls'], tls: false },
  { name: 'starttls-none', via: ['starttls'], tls: false },
  { name: 'starttls-verify', via: ['starttls'], tls: true },
];

/** One batch's measurements, as sums, so the batches of several rounds add up. */
interface Batch {
  readonly messages: number;
  /** From the first call until the sink had the last message. */
  readonly seconds: number;
  readonly daemonCpuUs: number;
  /** The local and starttls instances together (each one's master and every child of it): the MTA's side. */
  readonly postfixCpuUs: number;
  readonly split: Readonly<Record<RelayName, number>>;
  /** Connections the starttls instance accepted during the batch, and TLS handshakes among them (its smtpd log). */
  readonly connections: number;
  readonly handshakes: number;
  /** The wall time of each of the sequential submissions after the batch, in microseconds: one submission's latency, the machine less loaded. */
  readonly walls: readonly number[];
  /** Clock ticks of all the machine's CPUs over the batch, and those busy (every process's): whether the batch was CPU-bound. */
  readonly machine: MachineTicks;
}

interface MachineTicks {
  readonly busy: number;
  readonly total: number;
}

function sum(batches: readonly Batch[]): Batch {
  const add = (field: (b: Batch) => number) => batches.reduce((total, b) => total + field(b), 0);
  return {
    messages: add((b) => b.messages),
    seconds: add((b) => b.seconds),
    daemonCpuUs: add((b) => b.daemonCpuUs),
    postfixCpuUs: add((b) => b.postfixCpuUs),
    split: { local: add((b) => b.split.local), starttls: add((b) => b.split.starttls), auth: add((b) => b.split.auth) },
    connections: add((b) => b.connections),
    handshakes: add((b) => b.handshakes),
    machine: { busy: add((b) => b.machine.busy), total: add((b) => b.machine.total) },
    walls: batches.flatMap((b) => b.walls),
  };
}

const rate = (b: Batch) => b.messages / b.seconds;
const msPerMessage = (us: number, b: Batch) => us / b.messages / 1000;

class DownstreamsBench {
  private constructor(
    private readonly path: BenchMailPath,
    private readonly message: Buffer,
    private readonly input: string,
  ) {}

  static async start(): Promise<DownstreamsBench> {
    const path = await BenchMailPath.start({ group: 'mstbenchdown', user: 'mstbenchd', relays: true });
    const message = sampleMessage(1024, '\n');
    const input = path.file('ms-1024', submissionInput([`sender: ${SENDER}`, `recipient: ${RECIPIENT}`], message));
    return new DownstreamsBench(path, message, input);
  }

  stop(): Promise<void> {
    return this.path.stop();
  }

  /** The [[downstream]] tables of a configuration: equal priority and weight, pool_size as installed (4). */
  private tables(name: ConfigurationName): string {
    const relays = this.path.relays!;
    const table = (relay: RelayName, tls: string[] = []) =>
      ['[[downstream]]', `name = "${relay}"`, `target = "127.0.0.1:${relays.instance(relay).port}"`, 'priority = 10', 'weight = 1', ...tls].join('\n');
    const verify = ['tls = "verify"', `tls_ca_file = "${relays.ca.caFile}"`, 'tls_server_name = "localhost"'];
    switch (name) {
      case 'local':
        return table('local');
      case 'local+starttls':
        return `${table('local')}\n${table('starttls', ['tls = "none"'])}`;
      case 'starttls-none':
        return table('starttls', ['tls = "none"']);
      case 'starttls-verify':
        return table('starttls', verify);
    }
  }

  /**
   * Restarts the daemon with the configuration, warms it up (and each
   * Postfix it reaches), then measures one batch of `n`, 8 at a time, and
   * `single` submissions one at a time.
   */
  async batch(configuration: Configuration, n: number, single: number): Promise<Batch> {
    await this.path.restartDaemon(this.tables(configuration.name));
    await this.delivered(configuration, WARM_UP);
    const starttls = this.path.relays!.starttls;
    const logFrom = starttls.log().length;
    const postfixBefore = this.postfixCpuUs();
    const { messages, seconds, daemonCpuUs, machine } = await this.delivered(configuration, n);
    // After the settle wait: Postfix has relayed every message to the sink by now.
    const postfixCpu = this.postfixCpuUs() - postfixBefore;
    const split = { local: 0, starttls: 0, auth: 0 };
    for (const message of messages) split[this.via(message)]++;
    // delivered() waited SETTLE_MS after the last message, time enough for postlogd to write smtpd's lines.
    const log = starttls.log().slice(logFrom);
    const { samples } = await this.delivered(configuration, single, 1);
    return {
      messages: n,
      seconds,
      daemonCpuUs,
      postfixCpuUs: postfixCpu,
      split,
      connections: count(log, /: connect from /g),
      handshakes: count(log, /TLS connection established from /g),
      machine,
      walls: samples.map((sample) => sample.wallUs),
    };
  }

  /**
   * `n` submissions, `parallel` at a time, timed from the first call until the sink
   * has them all (with the daemon's CPU over the same span). Throws if a
   * submission failed, a message arrives twice (the sink past `n` after
   * SETTLE_MS), differs from what was submitted, went through an instance
   * the configuration does not name, or crossed the first hop with TLS
   * where it should not (or without where it should).
   */
  private async delivered(
    configuration: Configuration,
    n: number,
    parallel = PARALLEL,
  ): Promise<{ messages: RecordedMessage[]; samples: Sample[]; seconds: number; daemonCpuUs: number; machine: MachineTicks }> {
    const sink = this.path.sink;
    sink.messages.length = 0;
    const machineBefore = machineTicks();
    const cpuBefore = processCpuUs(this.path.daemonPid!);
    const t0 = process.hrtime.bigint();
    const samples = await runTimed(this.path.runner, { n, parallel, input: this.input, user: this.path.user, command: [this.path.ms.helperPath] });
    const messages = await sink.waitForMessages(n, 600_000);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const daemonCpuUs = processCpuUs(this.path.daemonPid!) - cpuBefore;
    const machineAfter = machineTicks();
    const machine = { busy: machineAfter.busy - machineBefore.busy, total: machineAfter.total - machineBefore.total };
    await sleep(SETTLE_MS);
    if (sink.messages.length !== n) throw new Error(`${configuration.name}: ${n} submissions, ${sink.messages.length} messages at the sink`);
    const expected = crlfForm(this.message);
    for (const message of messages) {
      if (!withoutFirstHeaderField(message.data).equals(expected)) throw new Error(`${configuration.name}: a message arrived altered`);
      const via = this.via(message);
      if (!configuration.via.includes(via)) throw new Error(`${configuration.name}: a message went through ${via}`);
      if (tlsInReceived(message) !== configuration.tls) throw new Error(`${configuration.name}: a message came ${configuration.tls ? 'without' : 'with'} TLS`);
    }
    sink.messages.length = 0;
    return { messages, samples, seconds, daemonCpuUs, machine };
  }

  /** The local and starttls instances' CPU so far, in microseconds (the auth instance takes no mail here). */
  private postfixCpuUs(): number {
    const relays = this.path.relays!;
    return postfixCpuUs(relays.local) + postfixCpuUs(relays.starttls);
  }

  private via(message: RecordedMessage): RelayName {
    const via = this.path.relays!.via(message);
    if (via === undefined) throw new Error(`a message from an unknown instance: ${message.ehlo}`);
    return via;
  }
}

/** Whether Postfix took the message over TLS: its Received: field (the first) says so (smtpd_tls_received_header). */
function tlsInReceived(message: RecordedMessage): boolean {
  const data = message.data;
  return /\(using TLS/.test(data.subarray(0, data.length - withoutFirstHeaderField(data).length).toString('latin1'));
}

/**
 * A Postfix instance's CPU so far, in microseconds: its master's, the
 * master's exited children's (reaped into its cutime and cstime), and its
 * live children's (smtpd, cleanup, qmgr, smtp, tlsmgr).
 */
function postfixCpuUs(instance: PrivatePostfix): number {
  const master = Number(readFileSync(join(instance.dir, 'queue', 'pid', 'master.pid'), 'utf8').trim());
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fields: string[];
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    } catch {
      continue; // The process ended since the listing.
    }
    if (Number(entry) !== master && Number(fields[1]) !== master) continue;
    ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
  }
  return (ticks * 1e6) / clockTicks();
}

/** Clock ticks of all CPUs since boot (/proc/stat), and those not idle or waiting for I/O. */
function machineTicks(): MachineTicks {
  const [user, nice, system, idle, iowait, ...rest] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = [user, nice, system, idle, iowait, ...rest.slice(0, 3)].reduce((a, b) => a! + b!, 0)!;
  return { busy: total - idle! - iowait!, total };
}

function count(text: string, pattern: RegExp): number {
  return text.match(pattern)?.length ?? 0;
}

async function main(): Promise<void> {
  if (!PrivatePostfix.isAvailable()) {
    console.log('skipped: needs root and /usr/sbin/postfix');
    return;
  }
  const n = option('n', 300);
  const rounds = option('rounds', 4);
  const single = option('single', 50);
  const bench = await DownstreamsBench.start();
  try {
    const results: Array<Record<ConfigurationName, Batch>> = [];
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? CONFIGURATIONS : [...CONFIGURATIONS].reverse();
      const batches: Partial<Record<ConfigurationName, Batch>> = {};
      for (const configuration of order) batches[configuration.name] = await bench.batch(configuration, n, single);
      results.push(batches as Record<ConfigurationName, Batch>);
    }
    // Every round, then all rounds as one: total messages over total time, total CPU over total messages.
    const all = Object.fromEntries(CONFIGURATIONS.map((c) => [c.name, sum(results.map((r) => r[c.name]))])) as Record<ConfigurationName, Batch>;
    const rows = [...results.map((r, i) => [String(i + 1), r] as const), ['all', all] as const];

    console.log(`\nTwo downstreams of equal priority and weight against one, ${PARALLEL} parallel callers, ${n} messages of 1 KB a round (messages/s, counted at the sink; CPU ms per message):`);
    table(
      ['round', 'one (local)', 'two (local+starttls)', 'two/one', 'via local', 'via starttls', 'daemon CPU one', 'two', 'Postfix CPU one', 'two'],
      rows.map(([label, r]) => {
        const [one, two] = [r.local, r['local+starttls']];
        const cells = [fmt(rate(one)), fmt(rate(two)), fmt(rate(two) / rate(one), 2), String(two.split.local), String(two.split.starttls)];
        const cpu = [msPerMessage(one.daemonCpuUs, one), msPerMessage(two.daemonCpuUs, two), msPerMessage(one.postfixCpuUs, one), msPerMessage(two.postfixCpuUs, two)];
        return [label, ...cells, ...cpu.map((ms) => fmt(ms, 2))];
      }),
    );
    console.log(
      `\nSTARTTLS verified against plain SMTP to the same relay (starttls), pool_size 4, ${PARALLEL} parallel callers, ${n} messages of 1 KB a round (messages/s; CPU ms per message), then ${single} one at a time (median wall ms):`,
    );
    table(
      ['round', 'tls none', 'tls verify', 'verify/none', 'one at a time none', 'verify', 'verify/none', 'daemon CPU none', 'verify', 'verify-none', 'Postfix CPU none', 'verify', 'verify-none', 'connections none', 'verify', 'TLS handshakes'],
      rows.map(([label, r]) => {
        const [none, verify] = [r['starttls-none'], r['starttls-verify']];
        const daemon = [msPerMessage(none.daemonCpuUs, none), msPerMessage(verify.daemonCpuUs, verify)] as const;
        const postfix = [msPerMessage(none.postfixCpuUs, none), msPerMessage(verify.postfixCpuUs, verify)] as const;
        const cpu = [daemon[0], daemon[1], daemon[1] - daemon[0], postfix[0], postfix[1], postfix[1] - postfix[0]];
        const [noneWall, verifyWall] = [median(none.walls) / 1000, median(verify.walls) / 1000];
        const walls = [fmt(noneWall, 2), fmt(verifyWall, 2), fmt(verifyWall / noneWall, 2)];
        return [label, fmt(rate(none)), fmt(rate(verify)), fmt(rate(verify) / rate(none), 2), ...walls, ...cpu.map((ms) => fmt(ms, 2)), String(none.connections), String(verify.connections), String(verify.handshakes)];
      }),
    );
    console.log(`\nThe machine's ${availableParallelism()} CPUs busy during each batch (every process's, /proc/stat):`);
    table(
      ['round', ...CONFIGURATIONS.map((c) => c.name)],
      rows.map(([label, r]) => [label, ...CONFIGURATIONS.map((c) => `${fmt((r[c.name].machine.busy / r[c.name].machine.total) * 100, 0)} %`)]),
    );
    console.log(`\nEvery message arrived once, byte for byte, through the instances each configuration names, with TLS exactly where asked; load average at the end: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  } finally {
    await bench.stop();
  }
}

await main();
