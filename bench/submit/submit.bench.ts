/**
 * End-to-end submission speed: mailsubmit (the real set-gid helper, run as an
 * unprivileged test user, talking to a freshly started mailsubmitd) against
 * Postfix's own `sendmail -C DIR` and `smtp-source`, all into the same
 * private Postfix instance relaying to the same recording sink, with the same
 * 1 KB and 50 KB messages. Needs root and the postfix package.
 *
 *   npx tsx bench/submit/submit.bench.ts [--n1k 400] [--n50k 200] [--single 50] [--daemon-runs 300]
 *       [--cpu-prof-dir DIR]   (profile the daemon: node --cpu-prof, written when it stops)
 *       [--strace-file FILE]   (strace -c -f of the daemon over the 4 KB batch, written to FILE)
 *       [--daemon-bundle FILE] (this mailsubmitd.mjs, the addon beside it, instead of the tree's dist/)
 *
 * Every command runs in fresh processes started by run-timed.c (compiled at
 * start), so the timings are of the commands, not of Node's spawn. A message
 * counts for throughput only when the sink has received it.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { sampleMessage } from '../validate/sample-message.ts';
import { PrivatePostfix } from '../../test/support/private-postfix.ts';
import { submissionInput } from '../../test/support/submission-input.ts';
import { BenchMailPath } from './bench-mail-path.ts';
import { fmt, median, option, processCpuUs, runTimed, table, type Sample } from './timed-runs.ts';

const run = promisify(execFile);
const PARALLEL = 8;
const SENDER = 'mstbench@example.org';
const RECIPIENT = 'rcpt@example.org';

class Bench {
  private constructor(private readonly path: BenchMailPath) {}

  static async start(profileDir: string | undefined, daemonBundle: string | undefined): Promise<Bench> {
    return new Bench(await BenchMailPath.start({ group: 'mstbenchsubmit', user: 'mstbench', profileDir, daemonBundle }));
  }

  stop(): Promise<void> {
    return this.path.stop();
  }

  file(name: string, content: Buffer): string {
    return this.path.file(name, content);
  }

  /** `n` runs of the tool, `parallel` at a time; resolves with each run's times. Throws if any run failed. */
  runs(tool: 'mailsubmit' | 'sendmail' | 'true', input: string, n: number, parallel: number): Promise<Sample[]> {
    const user = tool === 'sendmail' ? undefined : this.path.user;
    const command =
      tool === 'mailsubmit'
        ? [this.path.ms.helperPath]
        : tool === 'true'
          ? ['/bin/true']
          : ['/usr/sbin/sendmail', '-C', this.path.postfix.dir, '-i', '-f', SENDER, RECIPIENT];
    return runTimed(this.path.runner, { n, parallel, input, user, command });
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

  smtpSource(n: number, octets: number): Promise<unknown> {
    return run('/usr/sbin/smtp-source', ['-s', String(PARALLEL), '-m', String(n), '-l', String(octets), '-f', SENDER, '-t', RECIPIENT, `127.0.0.1:${this.path.postfix.port}`]);
  }

  /** Counts the daemon's system calls (strace -c -f) into `file` until the returned function is called. */
  async traceDaemon(file: string): Promise<() => Promise<void>> {
    const strace: ChildProcess = spawn('strace', ['-c', '-f', '-o', file, '-p', String(this.path.daemonPid!)], { stdio: ['ignore', 'ignore', 'pipe'] });
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

  /** The daemon's user+system CPU so far, in microseconds. */
  daemonCpuUs(): number {
    return processCpuUs(this.path.daemonPid!);
  }
}

function submission(message: Buffer): Buffer {
  return submissionInput([`sender: ${SENDER}`, `recipient: ${RECIPIENT}`], message);
}

async function main(): Promise<void> {
  if (!PrivatePostfix.isAvailable()) {
    console.log('skipped: needs root and /usr/sbin/postfix');
    return;
  }
  const counts = { '1 KB': option('n1k', 400), '50 KB': option('n50k', 200) };
  const singleRuns = option('single', 50);
  const daemonRuns = option('daemon-runs', 300);
  const profileAt = process.argv.indexOf('--cpu-prof-dir');
  const straceAt = process.argv.indexOf('--strace-file');
  const bundleAt = process.argv.indexOf('--daemon-bundle');
  const bench = await Bench.start(profileAt === -1 ? undefined : process.argv[profileAt + 1], bundleAt === -1 ? undefined : process.argv[bundleAt + 1]);
  try {
    const rows: string[][] = [];
    const singles: string[][] = [];
    for (const [label, octets] of [['1 KB', 1024], ['50 KB', 50 * 1024]] as const) {
      const message = sampleMessage(octets, '\n');
      const msInput = bench.file(`ms-${octets}`, submission(message));
      const smInput = bench.file(`sm-${octets}`, message);
      const n = counts[label];
      // Warm up every path (Postfix's processes, the daemon's JIT, the page cache).
      await bench.delivered(16, () => bench.runs('mailsubmit', msInput, 16, PARALLEL));
      await bench.delivered(16, () => bench.runs('sendmail', smInput, 16, PARALLEL));
      await bench.delivered(16, () => bench.smtpSource(16, message.length));

      const ms = await bench.delivered(n, () => bench.runs('mailsubmit', msInput, n, PARALLEL));
      const sm = await bench.delivered(n, () => bench.runs('sendmail', smInput, n, PARALLEL));
      const ss = await bench.delivered(n, () => bench.smtpSource(n, message.length));
      rows.push([label, String(n), fmt(ms), fmt(sm), fmt(ss), fmt(ms / sm, 2), fmt(ms / ss, 2)]);

      let msRuns: Sample[] = [];
      let smRuns: Sample[] = [];
      await bench.delivered(singleRuns, async () => (msRuns = await bench.runs('mailsubmit', msInput, singleRuns, 1)));
      await bench.delivered(singleRuns, async () => (smRuns = await bench.runs('sendmail', smInput, singleRuns, 1)));
      const msWall = median(msRuns.map((r) => r.wallUs)) / 1000;
      const smWall = median(smRuns.map((r) => r.wallUs)) / 1000;
      singles.push([
        label,
        fmt(msWall, 2),
        fmt(median(msRuns.map((r) => r.cpuUs)) / 1000, 2),
        fmt(smWall, 2),
        fmt(median(smRuns.map((r) => r.cpuUs)) / 1000, 2),
        fmt(msWall / smWall, 2),
      ]);
    }

    // The cost of any fresh process on this machine (fork, exec, exit), as the same user.
    const floor = await bench.runs('true', bench.file('empty', Buffer.alloc(0)), singleRuns, 1);
    const floorWall = median(floor.map((r) => r.wallUs)) / 1000;
    const floorCpu = median(floor.map((r) => r.cpuUs)) / 1000;

    const message4k = bench.file('ms-4096', submission(sampleMessage(4 * 1024, '\n')));
    await new Promise((resolve) => setTimeout(resolve, 500));
    const untrace = straceAt === -1 ? null : await bench.traceDaemon(process.argv[straceAt + 1]!);
    const before = bench.daemonCpuUs();
    await bench.delivered(daemonRuns, () => bench.runs('mailsubmit', message4k, daemonRuns, 1));
    const daemonMs = (bench.daemonCpuUs() - before) / daemonRuns / 1000;
    await untrace?.();

    console.log(`\nThroughput, ${PARALLEL} parallel callers, counted at the sink (messages/s):`);
    table(['message', 'N', 'mailsubmit', 'sendmail', 'smtp-source', 'ms/sendmail', 'ms/smtp-source'], rows);
    console.log(`\nOne submission, median of ${singleRuns} sequential runs (ms; CPU = user+sys of the process and its waited children):`);
    table(['message', 'mailsubmit wall', 'helper CPU', 'sendmail wall', 'sendmail CPU', 'wall ms/sendmail'], singles);
    console.log(`Process floor (/bin/true as the test user, same runner): wall ${fmt(floorWall, 2)} ms, CPU ${fmt(floorCpu, 2)} ms`);
    console.log(`\nDaemon CPU per 4 KB submission (${daemonRuns} sequential, /proc utime+stime): ${fmt(daemonMs, 3)} ms`);
    if (straceAt !== -1) console.log(`System calls of the daemon over those ${daemonRuns} (strace -c -f, which slows it): ${process.argv[straceAt + 1]}`);
  } finally {
    await bench.stop();
  }
}

await main();
