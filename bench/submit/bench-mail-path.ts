/**
 * The mail path a submission bench measures: a private Postfix relaying to a
 * recording sink, a mailsubmit under test with its own group and the daemon
 * at the installed log level (info), one authorized unprivileged caller,
 * run-timed compiled into a temporary directory; optionally the daemon under
 * `node --cpu-prof` or from another bundle, or the test bed's three Postfix relays in place of the
 * one Postfix, for benches of several downstreams. Whatever started is
 * stopped again if a later step fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startMailPath, type MailPath } from '../../test/support/mail-path.ts';
import { DAEMON_BUNDLE, MailsubmitUnderTest } from '../../test/support/mailsubmit-under-test.ts';
import { PostfixRelays } from '../../test/support/postfix-relays.ts';
import type { PrivatePostfix } from '../../test/support/private-postfix.ts';
import { RecordingSink } from '../../test/support/recording-sink.ts';
import { ensureUser, removeAll, type TestUser } from '../../test/support/test-accounts.ts';
import { compileBenchProgram } from './timed-runs.ts';

export interface BenchMailPathOptions {
  /** The helper's group, the bench's own, so a concurrent test run's group is left alone. */
  readonly group: string;
  /** The authorized caller's user name. */
  readonly user: string;
  /** Start the daemon under `node --cpu-prof`, writing its profile here when it stops. */
  readonly profileDir?: string;
  /**
   * Start this daemon bundle (with the addon beside it) instead of the tree's
   * `dist/mailsubmitd.mjs`: another build measured on the same mail path.
   */
  readonly daemonBundle?: string;
  /** Options for the daemon's node (V8 flags such as --max-semi-space-size), to measure their effect. */
  readonly daemonNodeFlags?: readonly string[];
  /**
   * Start the test bed's PostfixRelays (local, starttls, auth) on the sink
   * instead of one private Postfix; `postfix` is then the local instance,
   * the daemon's first downstream until `restartDaemon` gives it others.
   */
  readonly relays?: boolean;
  /** Extra main.cf lines for the private Postfix. */
  readonly postfixMainCf?: readonly string[];
  /** The daemon's `[limits]` lines. */
  readonly limits?: string;
}

export class BenchMailPath {
  private constructor(
    /** A temporary directory for the bench's files, removed at stop. */
    readonly dir: string,
    readonly runner: string,
    readonly sink: RecordingSink,
    readonly postfix: PrivatePostfix,
    readonly ms: MailsubmitUnderTest,
    readonly user: TestUser,
    private readonly profiled: ChildProcess | null,
    /** The three relays, when started with `relays`. */
    readonly relays: PostfixRelays | null = null,
  ) {}

  get daemonPid(): number | undefined {
    return this.profiled?.pid ?? this.ms.daemonPid;
  }

  static async start(options: BenchMailPathOptions): Promise<BenchMailPath> {
    const dir = mkdtempSync('/tmp/mailsubmit-bench-');
    // Undone in reverse if starting fails half-way, so no Postfix or daemon is left running.
    const undo: Array<() => Promise<unknown> | void> = [() => rmSync(dir, { recursive: true, force: true })];
    try {
      const runner = compileBenchProgram(dir, 'run-timed');
      const sink = new RecordingSink();
      undo.push(() => sink.close());
      undo.push(() => removeAll());
      let relays: PostfixRelays | null = null;
      let path: MailPath;
      if (options.relays === true) {
        const started = await PostfixRelays.start(sink);
        relays = started;
        undo.push(() => started.stop());
        path = { postfix: started.local, ms: await MailsubmitUnderTest.start({ group: options.group, limits: options.limits, downstreamPort: started.local.port }) };
      } else {
        path = await startMailPath(sink, { postfix: { mainCf: options.postfixMainCf }, mailsubmit: { group: options.group, limits: options.limits } });
        undo.push(() => path.postfix.stop());
      }
      const { postfix, ms } = path;
      undo.push(() => ms.stop());
      const user = ensureUser(options.user);
      ms.setAuthorizations([user.name]);
      // The harness logs at debug level; measure the daemon as installed (info).
      await ms.stopDaemon();
      writeFileSync(ms.configPath, readFileSync(ms.configPath, 'utf8').replace('log_level = "debug"', 'log_level = "info"'));
      const nodeFlags = options.daemonNodeFlags ?? [];
      if (options.profileDir === undefined && options.daemonBundle === undefined && nodeFlags.length === 0) {
        await ms.startDaemon();
        return new BenchMailPath(dir, runner, sink, postfix, ms, user, null, relays);
      }
      // --cpu-prof is refused in NODE_OPTIONS, so the profiled daemon (or another bundle, or other flags) is started here, as the harness would.
      const profiling = options.profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`];
      const profiled = spawn(process.execPath, [...profiling, ...nodeFlags, options.daemonBundle ?? DAEMON_BUNDLE, '-c', ms.configPath], { stdio: 'ignore' });
      undo.push(() => void profiled.kill('SIGTERM'));
      await ms.waitForSockets(profiled, () => 'profiled mailsubmitd did not start');
      return new BenchMailPath(dir, runner, sink, postfix, ms, user, profiled, relays);
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
    await (this.relays ?? this.postfix).stop().catch(() => undefined);
    await this.sink.close();
    removeAll();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * Restarts the daemon with these downstream tables (whole TOML tables,
   * headers included) in place of its [downstream] or [[downstream]]
   * tables. Not for a daemon under the profiler, which this path started
   * itself.
   */
  async restartDaemon(downstreams: string): Promise<void> {
    if (this.profiled !== null) throw new Error('restartDaemon: the profiled daemon cannot be restarted');
    await this.ms.stopDaemon();
    const config = readFileSync(this.ms.configPath, 'utf8');
    // The harness writes the downstream tables right before [queue].
    const tables = /^\[\[?downstream\]\]?\n[\s\S]*?(?=^\[queue\]$)/m;
    if (!tables.test(config)) throw new Error(`restartDaemon: no downstream table in ${this.ms.configPath}`);
    writeFileSync(this.ms.configPath, config.replace(tables, `${downstreams.trim()}\n`));
    await this.ms.startDaemon();
  }

  /** Writes one input file into the bench's directory and returns its path. */
  file(name: string, content: Buffer): string {
    const path = join(this.dir, name);
    writeFileSync(path, content, { mode: 0o644 });
    return path;
  }
}
