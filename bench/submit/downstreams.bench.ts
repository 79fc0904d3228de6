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
 *   npx tsx bench/submit/downstreams.bench.ts [--n 600] [--rounds 2]
 *
 * Each round runs the four configurations (the second round in reverse
 * order, so a machine growing busier favours none); a batch counts only
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
import { clockTicks, fmt, option, processCpuUs, runTimed, table } from './timed-runs.ts';

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

interface Batch {
  readonly rate: number;
  readonly daemonCpuMs: number;
  /** The CPU per message of the local and starttls instances together (each one's master and every child of it): the MTA's side. */
  readonly postfixCpuMs: number;
  readonly split: Readonly<Record<RelayName, number>>;
  /** Connections the starttls instance accepted during the batch, and TLS handshakes among them (its smtpd log). */
  readonly connections: number;
  readonly handshakes: number;
  /** The machine's CPUs busy over the batch, every process's (0..1): whether the batch was CPU-bound. */
  readonly machineBusy: number;
}

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

  /** Restarts the daemon with the configuration, warms it up (and each Postfix it reaches), then measures one batch of `n`. */
  async batch(configuration: Configuration, n: number): Promise<Batch> {
    await this.path.restartDaemon(this.tables(configuration.name));
    await this.delivered(configuration, WARM_UP);
    const starttls = this.path.relays!.starttls;
    const logFrom = starttls.log().length;
    const postfixBefore = this.postfixCpuUs();
    const { messages, seconds, daemonCpuUs, machineBusy } = await this.delivered(configuration, n);
    // After the settle wait: Postfix has relayed every message to the sink by now.
    const postfixCpu = this.postfixCpuUs() - postfixBefore;
    const split = { local: 0, starttls: 0, auth: 0 };
    for (const message of messages) split[this.via(message)]++;
    // delivered() waited SETTLE_MS after the last message, time enough for postlogd to write smtpd's lines.
    const log = starttls.log().slice(logFrom);
    return {
      rate: n / seconds,
      daemonCpuMs: daemonCpuUs / n / 1000,
      postfixCpuMs: postfixCpu / n / 1000,
      split,
      connections: count(log, /: connect from /g),
      handshakes: count(log, /TLS connection established from /g),
      machineBusy,
    };
  }

  /**
   * `n` submissions, 8 at a time, timed from the first call until the sink
   * has them all (with the daemon's CPU over the same span). Throws if a
   * submission failed, a message arrives twice (the sink past `n` after
   * SETTLE_MS), differs from what was submitted, went through an instance
   * the configuration does not name, or crossed the first hop with TLS
   * where it should not (or without where it should).
   */
  private async delivered(configuration: Configuration, n: number): Promise<{ messages: RecordedMessage[]; seconds: number; daemonCpuUs: number; machineBusy: number }> {
    const sink = this.path.sink;
    sink.messages.length = 0;
    const machineBefore = machineTicks();
    const cpuBefore = processCpuUs(this.path.daemonPid!);
    const t0 = process.hrtime.bigint();
    await runTimed(this.path.runner, { n, parallel: PARALLEL, input: this.input, user: this.path.user, command: [this.path.ms.helperPath] });
    const messages = await sink.waitForMessages(n, 600_000);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const daemonCpuUs = processCpuUs(this.path.daemonPid!) - cpuBefore;
    const machineAfter = machineTicks();
    const machineBusy = (machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total);
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
    return { messages, seconds, daemonCpuUs, machineBusy };
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
function machineTicks(): { busy: number; total: number } {
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
  const n = option('n', 600);
  const rounds = option('rounds', 2);
  const bench = await DownstreamsBench.start();
  try {
    const results: Array<Record<ConfigurationName, Batch>> = [];
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? CONFIGURATIONS : [...CONFIGURATIONS].reverse();
      const batches: Partial<Record<ConfigurationName, Batch>> = {};
      for (const configuration of order) batches[configuration.name] = await bench.batch(configuration, n);
      results.push(batches as Record<ConfigurationName, Batch>);
    }
    console.log(`\nTwo downstreams of equal priority and weight against one, ${PARALLEL} parallel callers, ${n} messages of 1 KB (messages/s, counted at the sink):`);
    table(
      ['round', 'one (local)', 'two (local+starttls)', 'two/one', 'via local', 'via starttls', 'daemon CPU ms/msg one', 'two', 'Postfix CPU ms/msg one', 'two'],
      results.map((r, i) => {
        const [one, two] = [r.local, r['local+starttls']];
        const cells = [fmt(one.rate), fmt(two.rate), fmt(two.rate / one.rate, 2), String(two.split.local), String(two.split.starttls)];
        return [String(i + 1), ...cells, fmt(one.daemonCpuMs, 2), fmt(two.daemonCpuMs, 2), fmt(one.postfixCpuMs, 2), fmt(two.postfixCpuMs, 2)];
      }),
    );
    console.log(`\nSTARTTLS verified against plain SMTP to the same relay (starttls), pooled connections (pool_size 4), ${PARALLEL} parallel callers, ${n} messages of 1 KB:`);
    table(
      ['round', 'tls none msg/s', 'tls verify msg/s', 'verify/none', 'daemon CPU ms/msg none', 'verify', 'verify-none', 'Postfix CPU ms/msg none', 'verify', 'verify-none', 'connections none', 'verify', 'TLS handshakes'],
      results.map((r, i) => {
        const [none, verify] = [r['starttls-none'], r['starttls-verify']];
        return [
          String(i + 1),
          fmt(none.rate),
          fmt(verify.rate),
          fmt(verify.rate / none.rate, 2),
          fmt(none.daemonCpuMs, 2),
          fmt(verify.daemonCpuMs, 2),
          fmt(verify.daemonCpuMs - none.daemonCpuMs, 2),
          fmt(none.postfixCpuMs, 2),
          fmt(verify.postfixCpuMs, 2),
          fmt(verify.postfixCpuMs - none.postfixCpuMs, 2),
          String(none.connections),
          String(verify.connections),
          String(verify.handshakes),
        ];
      }),
    );
    console.log(`\nThe machine's ${availableParallelism()} CPUs busy during each batch (every process's, /proc/stat):`);
    table(
      ['round', ...CONFIGURATIONS.map((c) => c.name)],
      results.map((r, i) => [String(i + 1), ...CONFIGURATIONS.map((c) => `${fmt(r[c.name].machineBusy * 100, 0)} %`)]),
    );
    console.log(`\nEvery message arrived once, byte for byte, through the instances each configuration names, with TLS exactly where asked; load average at the end: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  } finally {
    await bench.stop();
  }
}

await main();
