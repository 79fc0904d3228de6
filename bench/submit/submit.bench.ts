/**
 * End-to-end submission speed: mailsubmit (the real set-gid helper, run as an
 * unprivileged test user, talking to a freshly started mailsubmitd) against
 * Postfix's own `sendmail -C DIR` and `smtp-source`, all into the same
 * private Postfix instance relaying to the same recording sink, with the same
 * 1 KB, 50 KB and 1 MB messages, at 1, 8 and 32 callers at once; then one
 * submission at a time, the daemon's CPU per 4 KB submission, its memory
 * with a 100 MB message; the same against the I/O floor (io-floor.mjs in
 * the daemon's place, least-helper.c beside the helper); and the project's
 * goals held against this run's figures. Needs root and the postfix package.
 *
 *   npx tsx bench/submit/submit.bench.ts [--n1k 400] [--n50k 200] [--n1m 40] [--callers 1,8,32]
 *       [--single 50] [--daemon-runs 300] [--big-mb 100]
 *       [--cpu-prof-dir DIR]   (profile the daemon: node --cpu-prof, written when it stops)
 *       [--strace-file FILE]   (strace -c -f of the daemon over the 4 KB batch, written to FILE)
 *       [--daemon-bundle FILE] (this mailsubmitd.mjs, the addon beside it, instead of the tree's dist/)
 *       [--daemon-node-flags "FLAGS"] (node options for the daemon, e.g. "--max-semi-space-size=16")
 *
 * Every command runs in fresh processes started by run-timed.c (compiled at
 * start), so the timings are of the commands, not of Node's spawn. A message
 * counts for throughput only when the sink has received it.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { encodeReply } from '@mailsubmit/shared';
import { sampleMessage } from '../validate/sample-message.ts';
import { PrivatePostfix } from '../../test/support/private-postfix.ts';
import { DAEMON_BUNDLE } from '../../test/support/mailsubmit-under-test.ts';
import { submissionInput } from '../../test/support/submission-input.ts';
import { BenchMailPath } from './bench-mail-path.ts';
import { compileBenchProgram, fmt, median, option, optionList, processCpuUs, processMemoryKb, resetPeakMemory, runTimed, table, type Sample } from './timed-runs.ts';

const run = promisify(execFile);
const SENDER = 'mstbench@example.org';
const RECIPIENT = 'rcpt@example.org';
/** The callers at once of the goals' throughput figure. */
const GOAL_CALLERS = 8;
/** Rounds of the helper against /bin/true. */
const FLOOR_ROUNDS = 5;
/** The I/O floor that stands in for the daemon (see ioFloor), and its warm-up submissions. */
const IO_FLOOR = join(import.meta.dirname, 'io-floor.mjs');
const IO_FLOOR_WARM_UP = 300;

class Bench {
  private constructor(private readonly path: BenchMailPath) {}

  static async start(profileDir: string | undefined, daemonBundle: string | undefined, daemonNodeFlags: string[], bigMessageOctets: number, user = 'mstbench'): Promise<Bench> {
    // Room for the big message on both paths: Postfix's message_size_limit 0 is no limit.
    const path = await BenchMailPath.start({
      group: `${user}submit`,
      user,
      profileDir,
      daemonBundle,
      daemonNodeFlags,
      postfixMainCf: ['message_size_limit = 0'],
      limits: `max_message_size = ${bigMessageOctets + 1024 * 1024}`,
    });
    return new Bench(path);
  }

  stop(): Promise<void> {
    return this.path.stop();
  }

  file(name: string, content: Buffer): string {
    return this.path.file(name, content);
  }

  /** `n` runs of the tool, `parallel` at a time; resolves with each run's times. Throws if any run failed. */
  runs(tool: 'mailsubmit' | 'sendmail' | 'true' | 'least-helper', input: string, n: number, parallel: number): Promise<Sample[]> {
    const user = tool === 'sendmail' ? undefined : this.path.user;
    const commands = {
      mailsubmit: () => [this.path.ms.helperPath],
      true: () => ['/bin/true'],
      'least-helper': () => [this.leastHelper(), this.path.ms.socketPath],
      sendmail: () => ['/usr/sbin/sendmail', '-C', this.path.postfix.dir, '-i', '-f', SENDER, RECIPIENT],
    };
    return runTimed(this.path.runner, { n, parallel, input, user, command: commands[tool]() });
  }

  private leastHelperPath: string | null = null;

  /** least-helper.c, compiled beside the helper and installed as it is: set-gid to the group that may reach the socket. */
  private leastHelper(): string {
    if (this.leastHelperPath !== null) return this.leastHelperPath;
    const helper = this.path.ms.helperPath;
    const program = compileBenchProgram(dirname(helper), 'least-helper');
    chownSync(program, 0, statSync(helper).gid);
    chmodSync(program, 0o2755);
    this.leastHelperPath = program;
    return program;
  }

  /** Runs `send` and resolves with messages per second, counted when the sink has all `n`. */
  async delivered(n: number, send: () => Promise<unknown>): Promise<number> {
    const sink = this.path.sink;
    sink.messages.length = 0;
    const t0 = process.hrtime.bigint();
    await send();
    await sink.waitForMessages(n, 600_000);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    sink.messages.length = 0;
    return n / seconds;
  }

  smtpSource(n: number, octets: number, parallel: number): Promise<unknown> {
    return run('/usr/sbin/smtp-source', ['-s', String(parallel), '-m', String(n), '-l', String(octets), '-f', SENDER, '-t', RECIPIENT, `127.0.0.1:${this.path.postfix.port}`]);
  }

  /** Counts the daemon's system calls (strace -c -f) into `file` until the returned function is called. */
  async traceDaemon(file: string): Promise<() => Promise<void>> {
    const strace: ChildProcess = spawn('strace', ['-c', '-f', '-o', file, '-p', String(this.daemonPid)], { stdio: ['ignore', 'ignore', 'pipe'] });
    // strace says "Process N attached" once it traces every thread.
    await new Promise<void>((resolve, reject) => {
      strace.once('error', reject);
      strace.stderr!.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('attached')) resolve();
      });
    });
    return async () => {
      strace.kill('SIGINT');
      await once(strace, 'exit');
    };
  }

  /** The daemon's user+system CPU so far, in microseconds: all its threads, and its main (JavaScript) thread. */
  daemonCpuUs(): { all: number; main: number } {
    return { all: processCpuUs(this.daemonPid), main: processCpuUs(this.daemonPid, this.daemonPid) };
  }

  /** CPU per submission (ms) of the daemon, all threads and the main thread, over `n` sequential submissions of `input`. */
  async sequentialDaemonCpuMs(input: string, n: number): Promise<{ all: number; main: number }> {
    const before = this.daemonCpuUs();
    await this.delivered(n, () => this.runs('mailsubmit', input, n, 1));
    const after = this.daemonCpuUs();
    return { all: ms(after.all - before.all) / n, main: ms(after.main - before.main) / n };
  }

  /** How much more memory the daemon held at its peak while `send` ran than before it (kB of resident set). */
  async daemonMemoryGrowthKb(send: () => Promise<unknown>): Promise<{ before: number; peak: number }> {
    resetPeakMemory(this.daemonPid);
    const before = processMemoryKb(this.daemonPid).rss;
    await send();
    return { before, peak: processMemoryKb(this.daemonPid).peak };
  }

  /** The length of the one message the sink receives next (Postfix's Received: field included). */
  async deliveredOctets(): Promise<number> {
    const sink = this.path.sink;
    const [message] = await sink.waitForMessages(1, 600_000);
    sink.messages.length = 0;
    return message?.data.length ?? 0;
  }

  private get daemonPid(): number {
    const pid = this.path.daemonPid;
    if (pid === undefined) throw new Error('the daemon is not running');
    return pid;
  }
}

/** What the I/O floor measured: its CPU per 4 KB submission, and the median CPU (ms) of each caller against it. */
interface IoFloorFigures {
  readonly cpu: { all: number; main: number };
  readonly callers: { readonly true: number; readonly leastHelper: number; readonly helper: number };
}

/**
 * The references of the daemon's and the helper's CPU figures: io-floor.mjs
 * (only mailsubmitd's system calls for a submission, nothing else) in the
 * daemon's place, on a mail path of its own, warmed up; then `n` sequential
 * 4 KB submissions; then /bin/true, least-helper.c and the helper against
 * it (it answers at once), 1 KB, in alternating rounds of `perRound`.
 */
async function ioFloor(n: number, perRound: number): Promise<IoFloorFigures> {
  process.env.MAILSUBMIT_IO_FLOOR_ADDON = join(dirname(DAEMON_BUNDLE), 'socket_addon.node');
  process.env.MAILSUBMIT_IO_FLOOR_REPLY = Buffer.from(encodeReply({ status: 0, outcome: 'ok', text: '' })).toString('hex');
  // A test user of its own: starting a mail path makes its user afresh.
  const floor = await Bench.start(undefined, IO_FLOOR, [], 0, 'mstbenchfloor');
  try {
    const input = floor.file('ms-4096', submission(sampleMessage(4 * 1024, '\n')));
    await floor.delivered(IO_FLOOR_WARM_UP, () => floor.runs('mailsubmit', input, IO_FLOOR_WARM_UP, 1));
    const cpu = await floor.sequentialDaemonCpuMs(input, n);
    const empty = floor.file('empty', Buffer.alloc(0));
    const oneKb = floor.file('ms-1024', submission(sampleMessage(1024, '\n')));
    const samples: Record<'true' | 'least-helper' | 'mailsubmit', Sample[]> = { true: [], 'least-helper': [], mailsubmit: [] };
    for (let round = 0; round < FLOOR_ROUNDS; round++) {
      samples.true.push(...(await floor.runs('true', empty, perRound, 1)));
      await floor.delivered(perRound, async () => samples['least-helper'].push(...(await floor.runs('least-helper', oneKb, perRound, 1))));
      await floor.delivered(perRound, async () => samples.mailsubmit.push(...(await floor.runs('mailsubmit', oneKb, perRound, 1))));
    }
    const cpuMs = (runs: Sample[]) => ms(median(runs.map((r) => r.cpuUs)));
    return { cpu, callers: { true: cpuMs(samples.true), leastHelper: cpuMs(samples['least-helper']), helper: cpuMs(samples.mailsubmit) } };
  } finally {
    await floor.stop();
  }
}

function submission(message: Buffer): Buffer {
  return submissionInput([`sender: ${SENDER}`, `recipient: ${RECIPIENT}`], message);
}

const ms = (us: number): number => us / 1000;

async function main(): Promise<void> {
  if (!PrivatePostfix.isAvailable()) {
    console.log('skipped: needs root and /usr/sbin/postfix');
    return;
  }
  const sizes = [
    { label: '1 KB', octets: 1024, n: option('n1k', 400) },
    { label: '50 KB', octets: 50 * 1024, n: option('n50k', 200) },
    { label: '1 MB', octets: 1024 * 1024, n: option('n1m', 40) },
  ];
  const callerCounts = optionList('callers', [1, GOAL_CALLERS, 32]);
  const singleRuns = option('single', 50);
  const daemonRuns = option('daemon-runs', 300);
  const bigOctets = option('big-mb', 100) * 1024 * 1024;
  const profileAt = process.argv.indexOf('--cpu-prof-dir');
  const straceAt = process.argv.indexOf('--strace-file');
  const bundleAt = process.argv.indexOf('--daemon-bundle');
  const flagsAt = process.argv.indexOf('--daemon-node-flags');
  const bench = await Bench.start(
    profileAt === -1 ? undefined : process.argv[profileAt + 1],
    bundleAt === -1 ? undefined : process.argv[bundleAt + 1],
    flagsAt === -1 ? [] : (process.argv[flagsAt + 1] ?? '').split(' ').filter((flag) => flag !== ''),
    bigOctets,
  );
  try {
    const rows: string[][] = [];
    const singles: string[][] = [];
    const goalFigures: { throughput?: { sendmail: number; smtpSource: number }; wall?: number; helperAboveFloor?: number } = {};
    for (const { label, octets, n } of sizes) {
      const message = sampleMessage(octets, '\n');
      const msInput = bench.file(`ms-${octets}`, submission(message));
      const smInput = bench.file(`sm-${octets}`, message);
      // Warm up every path (Postfix's processes, the daemon's JIT, the page cache).
      await bench.delivered(16, () => bench.runs('mailsubmit', msInput, 16, GOAL_CALLERS));
      await bench.delivered(16, () => bench.runs('sendmail', smInput, 16, GOAL_CALLERS));
      await bench.delivered(16, () => bench.smtpSource(16, message.length, GOAL_CALLERS));

      for (const callers of callerCounts) {
        const mailsubmit = await bench.delivered(n, () => bench.runs('mailsubmit', msInput, n, callers));
        const sendmail = await bench.delivered(n, () => bench.runs('sendmail', smInput, n, callers));
        const smtpSource = await bench.delivered(n, () => bench.smtpSource(n, message.length, callers));
        rows.push([label, String(callers), String(n), fmt(mailsubmit), fmt(sendmail), fmt(smtpSource), fmt(mailsubmit / sendmail, 2), fmt(mailsubmit / smtpSource, 2)]);
        if (octets === 1024 && callers === GOAL_CALLERS) goalFigures.throughput = { sendmail: mailsubmit / sendmail, smtpSource: mailsubmit / smtpSource };
      }

      let msRuns: Sample[] = [];
      let smRuns: Sample[] = [];
      await bench.delivered(singleRuns, async () => (msRuns = await bench.runs('mailsubmit', msInput, singleRuns, 1)));
      await bench.delivered(singleRuns, async () => (smRuns = await bench.runs('sendmail', smInput, singleRuns, 1)));
      const msWall = ms(median(msRuns.map((r) => r.wallUs)));
      const smWall = ms(median(smRuns.map((r) => r.wallUs)));
      if (octets === 1024) goalFigures.wall = msWall / smWall;
      singles.push([label, fmt(msWall, 2), fmt(ms(median(msRuns.map((r) => r.cpuUs))), 2), fmt(smWall, 2), fmt(ms(median(smRuns.map((r) => r.cpuUs))), 2), fmt(msWall / smWall, 2)]);
    }

    // The helper (1 KB) against the cost of any fresh process on this machine (fork, exec, exit:
    // /bin/true as the same user), in alternating rounds, so the machine's other load hits both alike.
    const empty = bench.file('empty', Buffer.alloc(0));
    const oneKb = bench.file('ms-1024', submission(sampleMessage(1024, '\n')));
    const perRound = Math.ceil(singleRuns / FLOOR_ROUNDS);
    const floor: Sample[] = [];
    const helper: Sample[] = [];
    for (let round = 0; round < FLOOR_ROUNDS; round++) {
      floor.push(...(await bench.runs('true', empty, perRound, 1)));
      await bench.delivered(perRound, async () => helper.push(...(await bench.runs('mailsubmit', oneKb, perRound, 1))));
    }
    const floorWall = ms(median(floor.map((r) => r.wallUs)));
    const floorCpu = ms(median(floor.map((r) => r.cpuUs)));
    const helperCpu = ms(median(helper.map((r) => r.cpuUs)));
    goalFigures.helperAboveFloor = helperCpu - floorCpu;

    const message4k = bench.file('ms-4096', submission(sampleMessage(4 * 1024, '\n')));
    await new Promise((resolve) => setTimeout(resolve, 500));
    const untrace = straceAt === -1 ? null : await bench.traceDaemon(process.argv[straceAt + 1]!);
    const daemonCpu = await bench.sequentialDaemonCpuMs(message4k, daemonRuns);
    const daemonMs = daemonCpu.all;
    await untrace?.();

    const big = sampleMessage(bigOctets, '\n');
    const bigInput = bench.file('ms-big', submission(big));
    // The helper's 0 means Postfix has the message: the daemon's part is over.
    const memory = await bench.daemonMemoryGrowthKb(() => bench.runs('mailsubmit', bigInput, 1, 1));
    const growthMb = (memory.peak - memory.before) / 1024;
    const arrived = await bench.deliveredOctets();
    if (arrived < big.length) throw new Error(`the ${big.length}-octet message reached the sink with ${arrived} octets`);
    // Last: its mail path's stop removes the bench's test users too.
    const { cpu: ioFloorCpu, callers: againstFloor } = await ioFloor(daemonRuns, perRound);

    console.log('\nThroughput, counted at the sink (messages/s):');
    table(['message', 'callers', 'N', 'mailsubmit', 'sendmail', 'smtp-source', 'ms/sendmail', 'ms/smtp-source'], rows);
    console.log(`\nOne submission, median of ${singleRuns} sequential runs (ms; CPU = user+sys of the process and its waited children):`);
    table(['message', 'mailsubmit wall', 'helper CPU', 'sendmail wall', 'sendmail CPU', 'wall ms/sendmail'], singles);
    console.log(
      `The helper against the process floor (/bin/true as the test user, same runner), ${FLOOR_ROUNDS} alternating rounds of ${perRound}, medians: ` +
        `helper CPU ${fmt(helperCpu, 2)} ms, /bin/true wall ${fmt(floorWall, 2)} ms and CPU ${fmt(floorCpu, 2)} ms`,
    );
    console.log(
      `Against the I/O floor, which answers at once (${FLOOR_ROUNDS} alternating rounds of ${perRound}, median CPU): /bin/true ${fmt(againstFloor.true, 2)} ms, ` +
        `least-helper.c ${fmt(againstFloor.leastHelper, 2)} ms, the helper ${fmt(againstFloor.helper, 2)} ms: ` +
        `talking to a daemon ${fmt(againstFloor.leastHelper - againstFloor.true, 2)} ms, the helper's own work ${fmt(againstFloor.helper - againstFloor.leastHelper, 2)} ms`,
    );
    console.log(`\nDaemon CPU per 4 KB submission (${daemonRuns} sequential, /proc utime+stime): ${fmt(daemonMs, 3)} ms`);
    console.log(
      `  its main thread ${fmt(daemonCpu.main, 3)} ms; the I/O floor (io-floor.mjs in the daemon's place, the same batch): ` +
        `${fmt(ioFloorCpu.all, 3)} ms, main thread ${fmt(ioFloorCpu.main, 3)} ms; mailsubmitd/floor ${fmt(daemonMs / ioFloorCpu.all, 2)}`,
    );
    if (straceAt !== -1) console.log(`System calls of the daemon over those ${daemonRuns} (strace -c -f, which slows it): ${process.argv[straceAt + 1]}`);
    console.log(
      `Daemon memory with one ${option('big-mb', 100)} MB message: resident ${fmt(memory.before / 1024)} MB before, peak ${fmt(memory.peak / 1024)} MB (VmHWM), growth ${fmt(growthMb)} MB (${arrived} octets at the sink)`,
    );

    const { throughput, wall, helperAboveFloor } = goalFigures;
    const goals: [string, number | undefined, (value: number) => boolean, number][] = [
      [`${GOAL_CALLERS} callers, 1 KB: mailsubmit/sendmail >= 2.5`, throughput?.sendmail, (v) => v >= 2.5, 2],
      [`${GOAL_CALLERS} callers, 1 KB: mailsubmit/smtp-source >= 0.7`, throughput?.smtpSource, (v) => v >= 0.7, 2],
      ['daemon CPU per 4 KB submission <= 1.0 ms', daemonMs, (v) => v <= 1.0, 3],
      ['helper CPU above /bin/true <= 0.2 ms (1 KB)', helperAboveFloor, (v) => v <= 0.2, 2],
      ['one submission, wall mailsubmit/sendmail <= 0.4 (1 KB)', wall, (v) => v <= 0.4, 2],
      [`daemon memory growth, ${option('big-mb', 100)} MB message <= 32 MB`, growthMb, (v) => v <= 32, 1],
    ];
    console.log('\nGoals, against this run:');
    table(
      ['goal', 'measured', 'met'],
      goals.map(([goal, value, met, digits]) => [goal, value === undefined ? 'not measured' : fmt(value, digits), value === undefined ? '-' : met(value) ? 'yes' : 'no']),
    );
  } finally {
    await bench.stop();
  }
}

await main();
