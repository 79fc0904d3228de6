/**
 * Queueing while the MTA is down: mailsubmit-sendmail into mailsubmit's
 * local queue against Postfix's own sendmail into the maildrop queue (its
 * set-gid postdrop), both called by the same unprivileged user, side by
 * side in one run, with the same 1 KB and 50 KB messages. Postfix's daemons
 * are stopped (`postfix -c DIR stop`) for the whole run, and mailsubmit's
 * downstream is that stopped Postfix, so every mailsubmit submission is
 * refused a connection and queued locally, and every sendmail one stays in
 * maildrop/. Needs root and the postfix package.
 *
 *   npx tsx bench/submit/queueing.bench.ts [--n1k 400] [--n50k 200] [--single 100]
 *       [--cpu-prof-dir DIR]   (profile the daemon: node --cpu-prof, written when it stops)
 *
 * A batch counts only when each of its messages is there afterwards: one
 * more committed file in mailsubmit's queue (ready/) or one more complete
 * file in Postfix's maildrop/ (postdrop marks completion with the owner's
 * execute bit), so a broken run fails instead of reporting a figure.
 */
import { readdirSync, statSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { sampleMessage } from '../validate/sample-message.ts';
import { PrivatePostfix } from '../../test/support/private-postfix.ts';
import { BenchMailPath } from './bench-mail-path.ts';
import { fmt, median, option, percentile, processCpuUs, runTimed, table, type Sample } from './timed-runs.ts';

const PARALLEL = 8;
const SENDER = 'mstbenchq@example.org';
const RECIPIENT = 'rcpt@example.org';
/** The same command line for both: sendmail's usual -i -f SENDER RCPT. */
const SENDMAIL_ARGS = ['-i', '-f', SENDER, RECIPIENT];

type Tool = 'mailsubmit' | 'postfix';

class QueueingBench {
  private constructor(
    private readonly path: BenchMailPath,
    private readonly mailsubmitSendmail: string,
    /** The prefix under which postdrop accepts the private instance (PrivatePostfix.admittingCallers). */
    private readonly admitted: readonly string[],
  ) {}

  static async start(profileDir: string | undefined): Promise<QueueingBench> {
    const path = await BenchMailPath.start({ group: 'mstbenchqueue', user: 'mstbenchq', profileDir });
    try {
      const mailsubmitSendmail = join(dirname(path.ms.helperPath), 'mailsubmit-sendmail');
      symlinkSync(path.ms.helperPath, mailsubmitSendmail);
      // The MTA down for the whole run: postdrop's maildrop stays, mailsubmit's downstream refuses connections.
      await path.postfix.stopMailSystem();
      return new QueueingBench(path, mailsubmitSendmail, path.postfix.admittingCallers());
    } catch (error) {
      await path.stop();
      throw error;
    }
  }

  stop(): Promise<void> {
    return this.path.stop();
  }

  file(name: string, content: Buffer): string {
    return this.path.file(name, content);
  }

  /**
   * `n` submissions, `parallel` at a time, by the unprivileged user; throws
   * unless exactly `n` more messages are queued afterwards. Both tools run
   * in the namespace where postdrop accepts the private instance.
   */
  async queue(tool: Tool, input: string, n: number, parallel: number): Promise<{ samples: Sample[]; seconds: number }> {
    const before = this.queued(tool);
    const command = tool === 'mailsubmit' ? [this.mailsubmitSendmail, ...SENDMAIL_ARGS] : ['/usr/sbin/sendmail', '-C', this.path.postfix.dir, ...SENDMAIL_ARGS];
    const t0 = process.hrtime.bigint();
    const samples = await runTimed(this.path.runner, { n, parallel, input, user: this.path.user, command, wrapper: this.admitted });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const added = this.queued(tool) - before;
    if (added !== n) throw new Error(`${tool}: ${n} submissions exited 0 but ${added} messages were queued`);
    return { samples, seconds };
  }

  /** Committed messages: files in mailsubmit's ready/, or complete files in Postfix's maildrop/. */
  queued(tool: Tool): number {
    if (tool === 'mailsubmit') return readdirSync(join(this.path.ms.dir, 'queue', 'ready')).length;
    const maildrop = join(this.path.postfix.dir, 'queue', 'maildrop');
    return readdirSync(maildrop).filter((name) => (statSync(join(maildrop, name)).mode & 0o100) !== 0).length;
  }

  /** The daemon's user+system CPU so far, in microseconds. */
  daemonCpuUs(): number {
    return processCpuUs(this.path.daemonPid!);
  }
}

async function main(): Promise<void> {
  if (!PrivatePostfix.isAvailable()) {
    console.log('skipped: needs root and /usr/sbin/postfix');
    return;
  }
  const counts = { '1 KB': option('n1k', 400), '50 KB': option('n50k', 200) };
  const singleRuns = option('single', 100);
  const profileAt = process.argv.indexOf('--cpu-prof-dir');
  const bench = await QueueingBench.start(profileAt === -1 ? undefined : process.argv[profileAt + 1]);
  try {
    const throughput: string[][] = [];
    const singles: string[][] = [];
    for (const [label, octets] of [['1 KB', 1024], ['50 KB', 50 * 1024]] as const) {
      const input = bench.file(`message-${octets}`, sampleMessage(octets, '\n'));
      const n = counts[label];
      // Warm up both paths (the daemon's JIT, the page cache, the directories).
      await bench.queue('mailsubmit', input, 16, PARALLEL);
      await bench.queue('postfix', input, 16, PARALLEL);

      const cpuBefore = bench.daemonCpuUs();
      const ms = await bench.queue('mailsubmit', input, n, PARALLEL);
      const daemonMs = (bench.daemonCpuUs() - cpuBefore) / n / 1000;
      const pf = await bench.queue('postfix', input, n, PARALLEL);
      const msRate = n / ms.seconds;
      const pfRate = n / pf.seconds;
      throughput.push([label, String(n), fmt(msRate), fmt(pfRate), fmt(msRate / pfRate, 2), fmt(daemonMs, 2)]);

      const msOne = (await bench.queue('mailsubmit', input, singleRuns, 1)).samples;
      const pfOne = (await bench.queue('postfix', input, singleRuns, 1)).samples;
      const wall = (samples: Sample[], p: number) => percentile(samples.map((s) => s.wallUs), p) / 1000;
      const cpu = (samples: Sample[]) => median(samples.map((s) => s.cpuUs)) / 1000;
      singles.push([
        label,
        fmt(wall(msOne, 50), 2),
        fmt(wall(msOne, 90), 2),
        fmt(cpu(msOne), 2),
        fmt(wall(pfOne, 50), 2),
        fmt(wall(pfOne, 90), 2),
        fmt(cpu(pfOne), 2),
        fmt(wall(msOne, 50) / wall(pfOne, 50), 2),
        fmt(wall(msOne, 90) / wall(pfOne, 90), 2),
      ]);
    }
    console.log(`\nQueueing with the MTA down, ${PARALLEL} parallel callers (messages/s; every message counted in its queue):`);
    table(['message', 'N', 'mailsubmit', 'postfix sendmail', 'mailsubmit/postfix', 'daemon CPU ms/msg'], throughput);
    console.log(`\nOne submission with the MTA down, ${singleRuns} sequential runs (wall ms, median and p90; CPU = median user+sys of the command and its waited children):`);
    table(['message', 'ms p50', 'ms p90', 'helper CPU', 'pf p50', 'pf p90', 'sendmail+postdrop CPU', 'p50 ms/pf', 'p90 ms/pf'], singles);
  } finally {
    await bench.stop();
  }
}

await main();
