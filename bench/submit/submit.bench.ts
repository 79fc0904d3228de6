/**
 * End-to-end submission speed: mailsubmit (the real set-gid helper, run as an
 * unprivileged test user, talking to a freshly started mailsubmitd) against
 * Postfix's own `sendmail -C DIR` and `smtp-source`, all into the same
 * private Postfix instance relaying to the same recording sink, with the same
 * 1 KB and 50 KB messages. Needs root and the postfix package.
 *
 *   npx tsx bench/submit/submit.bench.ts [--n1k 400] [--n50k 200] [--single 50] [--daemon-runs 300]
 *       [--cpu-prof-dir DIR]   (profile the daemon: node --cpu-prof, written when it stops)
 *
 * Every command runs in fresh processes started by run-timed.c (compiled at
 * start), so the timings are of the commands, not of Node's spawn. A message
 * counts for throughput only when the sink has received it.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sampleMessage } from '../validate/sample-message.ts';
import { startMailPath } from '../../test/support/mail-path.ts';
import { DAEMON_BUNDLE, MailsubmitUnderTest } from '../../test/support/mailsubmit-under-test.ts';
import { PrivatePostfix } from '../../test/support/private-postfix.ts';
import { RecordingSink } from '../../test/support/recording-sink.ts';
import { submissionInput } from '../../test/support/submission-input.ts';
import { ensureUser, removeAll, type TestUser } from '../../test/support/test-accounts.ts';

const run = promisify(execFile);
const PARALLEL = 8;
const SENDER = 'mstbench@example.org';
const RECIPIENT = 'rcpt@example.org';

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  const value = at === -1 ? undefined : Number(process.argv[at + 1]);
  return value !== undefined && Number.isInteger(value) && value > 0 ? value : fallback;
}

interface Sample {
  readonly wallUs: number;
  readonly cpuUs: number;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

class Bench {
  private constructor(
    private readonly dir: string,
    private readonly runner: string,
    readonly sink: RecordingSink,
    readonly postfix: PrivatePostfix,
    readonly ms: MailsubmitUnderTest,
    readonly user: TestUser,
    private readonly profiled: ChildProcess | null,
  ) {}

  get daemonPid(): number | undefined {
    return this.profiled?.pid ?? this.ms.daemonPid;
  }

  static async start(profileDir: string | undefined): Promise<Bench> {
    const dir = mkdtempSync('/tmp/mailsubmit-bench-');
    // Undone in reverse if starting fails half-way, so no Postfix or daemon is left running.
    const undo: Array<() => Promise<unknown> | void> = [() => rmSync(dir, { recursive: true, force: true })];
    try {
      const runner = join(dir, 'run-timed');
      execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', runner, join(import.meta.dirname, 'run-timed.c')]);
      const sink = new RecordingSink();
      undo.push(() => sink.close());
      undo.push(() => removeAll());
      // A group of its own, so a concurrent test run's mstsubmit group is left alone.
      const { postfix, ms } = await startMailPath(sink, { mailsubmit: { group: 'mstbenchsubmit' } });
      undo.push(() => postfix.stop());
      undo.push(() => ms.stop());
      const user = ensureUser('mstbench');
      ms.setAuthorizations([user.name]);
      // The harness logs at debug level; measure the daemon as installed (info).
      await ms.stopDaemon();
      writeFileSync(ms.configPath, readFileSync(ms.configPath, 'utf8').replace('log_level = "debug"', 'log_level = "info"'));
      if (profileDir === undefined) {
        await ms.startDaemon();
        return new Bench(dir, runner, sink, postfix, ms, user, null);
      }
      // --cpu-prof is refused in NODE_OPTIONS, so the profiled daemon is started here, as the harness would.
      const profiled = spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, DAEMON_BUNDLE, '-c', ms.configPath], { stdio: 'ignore' });
      undo.push(() => void profiled.kill('SIGTERM'));
      await ms.waitForSockets(profiled, () => 'profiled mailsubmitd did not start');
      return new Bench(dir, runner, sink, postfix, ms, user, profiled);
    } catch (error) {
      for (const step of undo.reverse()) {
        try {
          await step();
        } catch {
          // Best effort: the original error is the one to report.
        }
      }
      throw error;
    }
  }

  async stop(): Promise<void> {
    const profiled = this.profiled;
    if (profiled !== null && profiled.exitCode === null) {
      // The profile is written when the daemon exits of its own accord.
      const exited = new Promise((resolve) => profiled.once('exit', resolve));
      profiled.kill('SIGTERM');
      await exited;
    }
    await this.ms.stop().catch(() => undefined);
    await this.postfix.stop().catch(() => undefined);
    await this.sink.close();
    removeAll();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Writes one input file and returns its path. */
  file(name: string, content: Buffer): string {
    const path = join(this.dir, name);
    writeFileSync(path, content, { mode: 0o644 });
    return path;
  }

  /** `n` runs of the tool, `parallel` at a time; resolves with each run's times. Throws if any run failed. */
  async runs(tool: 'mailsubmit' | 'sendmail' | 'true', input: string, n: number, parallel: number): Promise<Sample[]> {
    const who = tool === 'sendmail' ? [] : ['-u', String(this.user.uid), '-g', String(this.user.gid)];
    const command =
      tool === 'mailsubmit'
        ? [this.ms.helperPath]
        : tool === 'true'
          ? ['/bin/true']
          : ['/usr/sbin/sendmail', '-C', this.postfix.dir, '-i', '-f', SENDER, RECIPIENT];
    const { stdout } = await run(this.runner, ['-n', String(n), '-p', String(parallel), '-i', input, ...who, '--', ...command], {
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout
      .trim()
      .split('\n')
      .map((line) => {
        const [wall, user, sys] = line.split(' ').map(Number);
        return { wallUs: wall!, cpuUs: user! + sys! };
      });
  }

  /** Runs `send` and resolves with messages per second, counted when the sink has all `n`. */
  async delivered(n: number, send: () => Promise<unknown>): Promise<number> {
    this.sink.messages.length = 0;
    const t0 = process.hrtime.bigint();
    await send();
    await this.sink.waitForMessages(n, 600_000);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    this.sink.messages.length = 0;
    return n / seconds;
  }

  smtpSource(n: number, octets: number): Promise<unknown> {
    return run('/usr/sbin/smtp-source', ['-s', String(PARALLEL), '-m', String(n), '-l', String(octets), '-f', SENDER, '-t', RECIPIENT, `127.0.0.1:${this.postfix.port}`]);
  }

  /** The daemon's user+system CPU so far, in microseconds. */
  daemonCpuUs(): number {
    const stat = readFileSync(`/proc/${this.daemonPid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1e6) / clockTicks();
  }
}

function clockTicks(): number {
  return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
}

function submission(message: Buffer): Buffer {
  return submissionInput([`sender: ${SENDER}`, `recipient: ${RECIPIENT}`], message);
}

const fmt = (value: number, digits = 1): string => value.toFixed(digits);

async function main(): Promise<void> {
  if (!PrivatePostfix.isAvailable()) {
    console.log('skipped: needs root and /usr/sbin/postfix');
    return;
  }
  const counts = { '1 KB': option('n1k', 400), '50 KB': option('n50k', 200) };
  const singleRuns = option('single', 50);
  const daemonRuns = option('daemon-runs', 300);
  const profileAt = process.argv.indexOf('--cpu-prof-dir');
  const bench = await Bench.start(profileAt === -1 ? undefined : process.argv[profileAt + 1]);
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
    const before = bench.daemonCpuUs();
    await bench.delivered(daemonRuns, () => bench.runs('mailsubmit', message4k, daemonRuns, 1));
    const daemonMs = (bench.daemonCpuUs() - before) / daemonRuns / 1000;

    console.log(`\nThroughput, ${PARALLEL} parallel callers, counted at the sink (messages/s):`);
    table(['message', 'N', 'mailsubmit', 'sendmail', 'smtp-source', 'ms/sendmail', 'ms/smtp-source'], rows);
    console.log(`\nOne submission, median of ${singleRuns} sequential runs (ms; CPU = user+sys of the process and its waited children):`);
    table(['message', 'mailsubmit wall', 'helper CPU', 'sendmail wall', 'sendmail CPU', 'wall ms/sendmail'], singles);
    console.log(`Process floor (/bin/true as the test user, same runner): wall ${fmt(floorWall, 2)} ms, CPU ${fmt(floorCpu, 2)} ms`);
    console.log(`\nDaemon CPU per 4 KB submission (${daemonRuns} sequential, /proc utime+stime): ${fmt(daemonMs, 3)} ms`);
  } finally {
    await bench.stop();
  }
}

function table(header: readonly string[], rows: readonly string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  console.log(line(header));
  for (const row of rows) console.log(line(row));
}

await main();
