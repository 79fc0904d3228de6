/**
 * The mail path a submission bench measures: a private Postfix relaying to a
 * recording sink, a mailsubmit under test with its own group and the daemon
 * at the installed log level (info), one authorized unprivileged caller,
 * run-timed compiled into a temporary directory; optionally the daemon under
 * `node --cpu-prof`. Whatever started is stopped again if a later step fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startMailPath } from '../../test/support/mail-path.ts';
import { DAEMON_BUNDLE, MailsubmitUnderTest } from '../../test/support/mailsubmit-under-test.ts';
import type { PrivatePostfix } from '../../test/support/private-postfix.ts';
import { RecordingSink } from '../../test/support/recording-sink.ts';
import { ensureUser, removeAll, type TestUser } from '../../test/support/test-accounts.ts';
import { compileRunTimed } from './timed-runs.ts';

export interface BenchMailPathOptions {
  /** The helper's group, the bench's own, so a concurrent test run's group is left alone. */
  readonly group: string;
  /** The authorized caller's user name. */
  readonly user: string;
  /** Start the daemon under `node --cpu-prof`, writing its profile here when it stops. */
  readonly profileDir?: string;
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
  ) {}

  get daemonPid(): number | undefined {
    return this.profiled?.pid ?? this.ms.daemonPid;
  }

  static async start(options: BenchMailPathOptions): Promise<BenchMailPath> {
    const dir = mkdtempSync('/tmp/mailsubmit-bench-');
    // Undone in reverse if starting fails half-way, so no Postfix or daemon is left running.
    const undo: Array<() => Promise<unknown> | void> = [() => rmSync(dir, { recursive: true, force: true })];
    try {
      const runner = compileRunTimed(dir);
      const sink = new RecordingSink();
      undo.push(() => sink.close());
      undo.push(() => removeAll());
      const { postfix, ms } = await startMailPath(sink, { mailsubmit: { group: options.group } });
      undo.push(() => postfix.stop());
      undo.push(() => ms.stop());
      const user = ensureUser(options.user);
      ms.setAuthorizations([user.name]);
      // The harness logs at debug level; measure the daemon as installed (info).
      await ms.stopDaemon();
      writeFileSync(ms.configPath, readFileSync(ms.configPath, 'utf8').replace('log_level = "debug"', 'log_level = "info"'));
      if (options.profileDir === undefined) {
        await ms.startDaemon();
        return new BenchMailPath(dir, runner, sink, postfix, ms, user, null);
      }
      // --cpu-prof is refused in NODE_OPTIONS, so the profiled daemon is started here, as the harness would.
      const profiled = spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`, DAEMON_BUNDLE, '-c', ms.configPath], { stdio: 'ignore' });
      undo.push(() => void profiled.kill('SIGTERM'));
      await ms.waitForSockets(profiled, () => 'profiled mailsubmitd did not start');
      return new BenchMailPath(dir, runner, sink, postfix, ms, user, profiled);
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

  /** Writes one input file into the bench's directory and returns its path. */
  file(name: string, content: Buffer): string {
    const path = join(this.dir, name);
    writeFileSync(path, content, { mode: 0o644 });
    return path;
  }
}
