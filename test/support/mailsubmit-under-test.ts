/**
 * A complete mailsubmit in a temporary directory, as install.sh lays it out
 * but with its own paths: the helper built with this directory's socket and
 * authorization list compiled in and installed set-gid (2755 root:GROUP),
 * and the daemon (the built bundle) running as a child process with its own
 * configuration, talking to a private Postfix.
 *
 *   const ms = await MailsubmitUnderTest.start({ downstreamPort: postfix.port });
 *   ms.allow('alice'); const r = await ms.submit({ user, input });
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openChild } from './child-output.ts';
import { collectLogLines } from './daemon-log.ts';
import { buildHelper } from './helper-build.ts';
import { ensureGroup, type TestUser } from './test-accounts.ts';
import { heldWithin, sleep } from './until.ts';

const ROOT = join(import.meta.dirname, '..', '..');
export const DAEMON_BUNDLE = join(ROOT, 'packages', 'submit-daemon', 'dist', 'mailsubmitd.mjs');

export interface StartOptions {
  /** The private Postfix's re-injection port. */
  readonly downstreamPort: number;
  /** Extra TOML, appended to the generated configuration (whole tables). */
  readonly extraConfig?: string;
  /** Extra lines of the [daemon] table (e.g. `metrics_listen = "127.0.0.1:9465"`). */
  readonly daemon?: string;
  /** Lines of the [downstream] table replacing the default SMTP target. */
  readonly downstream?: string;
  /**
   * Whole `[[downstream]]` tables (raw TOML, table headers included)
   * replacing the [downstream] table: several downstreams. Takes precedence
   * over `downstream`; `downstreamPort` is then unused.
   */
  readonly downstreams?: string;
  readonly limits?: string;
  readonly timeouts?: string;
  /** Lines of the [queue] table (the local queue's directory is the instance's own unless given). */
  readonly queue?: string;
  readonly installMode?: 'setgid' | 'open';
  /** The group of the set-gid helper and the socket. */
  readonly group?: string;
}

export interface OpenSubmission {
  write(chunk: string | Buffer): void;
  end(chunk?: string | Buffer): Promise<SubmitResult>;
  /** Settles when the helper exits, whether or not the input was ended. */
  readonly result: Promise<SubmitResult>;
}

export interface SubmitResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export class MailsubmitUnderTest {
  readonly logLines: Record<string, unknown>[] = [];
  private daemon: ChildProcess | null = null;

  private constructor(
    readonly dir: string,
    readonly group: string,
    readonly socketPath: string,
    readonly authorizationList: string,
    readonly helperPath: string,
    readonly configPath: string,
  ) {}

  static async start(options: StartOptions): Promise<MailsubmitUnderTest> {
    // Per test process: files run in parallel workers, and one file's cleanup must not delete another's group.
    const group = options.group ?? `mstsub${process.pid}`;
    const gid = ensureGroup(group);
    const dir = mkdtempSync('/tmp/mailsubmit-e2e-');
    chmodSync(dir, 0o755);
    const runDir = join(dir, 'run');
    mkdirSync(runDir);
    chownSync(runDir, 0, gid);
    chmodSync(runDir, options.installMode === 'open' ? 0o755 : 0o750);
    const socketPath = join(runDir, 'mailsubmit.sock');
    // The daemon's own spool, as install.sh makes it: owned by the daemon's user (root here), 0700.
    const spoolDir = join(dir, 'spool');
    mkdirSync(spoolDir, { mode: 0o700 });
    const authorizationList = join(dir, 'authorized');
    writeFileSync(authorizationList, '# test authorization list\n', { mode: 0o644 });
    mkdirSync(join(dir, 'bin'));
    const helperPath = join(dir, 'bin', 'mailsubmit');
    buildHelper({ out: helperPath, socket: socketPath, authorizationList });
    chownSync(helperPath, 0, gid);
    chmodSync(helperPath, options.installMode === 'open' ? 0o755 : 0o2755);
    const configPath = join(dir, 'mailsubmit.conf');
    writeFileSync(
      configPath,
      [
        '[daemon]',
        `socket = "${socketPath}"`,
        `socket_group = "${group}"`,
        `install_mode = "${options.installMode ?? 'setgid'}"`,
        options.installMode === 'open' ? 'socket_mode = "0666"' : 'socket_mode = "0660"',
        `authorization_list = "${authorizationList}"`,
        `control_socket = "${join(runDir, 'control.sock')}"`,
        'log_level = "debug"',
        ...(options.daemon?.includes('spool_directory') ? [] : [`spool_directory = "${spoolDir}"`]),
        ...(options.daemon ? [options.daemon] : []),
        ...(options.downstreams !== undefined ? [options.downstreams] : ['[downstream]', options.downstream ?? `target = "127.0.0.1:${options.downstreamPort}"`]),
        '[queue]',
        ...(options.queue?.includes('directory') ? [] : [`directory = "${join(dir, 'queue')}"`]),
        ...(options.queue ? [options.queue] : []),
        ...(options.limits ? ['[limits]', options.limits] : []),
        ...(options.timeouts ? ['[timeouts]', options.timeouts] : []),
        options.extraConfig ?? '',
        '',
      ].join('\n'),
      { mode: 0o644 },
    );
    const instance = new MailsubmitUnderTest(dir, group, socketPath, authorizationList, helperPath, configPath);
    await instance.startDaemon();
    return instance;
  }

  /** Starts (or restarts) the daemon and waits for its socket. */
  async startDaemon(): Promise<void> {
    const child = spawn(process.execPath, [DAEMON_BUNDLE, '-c', this.configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.daemon = child;
    collectLogLines(child.stdout, this.logLines);
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    await this.waitForSockets(child, () => `mailsubmitd did not start: ${stderr}`);
  }

  /**
   * Waits until a daemon on this configuration (started here, or by a test
   * its own way) has both its sockets; throws `failure()` when `child` ends
   * first or 10 s pass. The control socket comes up right after the
   * submission socket; tests may use either at once.
   */
  async waitForSockets(child: ChildProcess, failure: () => string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!existsSync(this.socketPath) || !existsSync(this.controlSocketPath)) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(failure());
      await sleep(20);
    }
  }

  /** The daemon's control socket (mailsubmitctl status/reload), in the run directory. */
  get controlSocketPath(): string {
    return join(this.dir, 'run', 'control.sock');
  }

  get daemonPid(): number | undefined {
    return this.daemon?.pid;
  }

  /** Stops the daemon with a signal and waits for it to exit. */
  async stopDaemon(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    const child = this.daemon;
    // A daemon killed by a signal has exitCode null and signalCode set: it is gone too.
    if (child === null || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill(signal);
    const code = await exited;
    this.daemon = null;
    return code;
  }

  /** Writes the authorization list (root-owned, as the daemon demands). */
  setAuthorizations(lines: readonly string[]): void {
    writeFileSync(this.authorizationList, `${lines.join('\n')}\n`, { mode: 0o644 });
  }

  /**
   * Runs the helper as `user` with `input` on stdin. Node's spawn sets the
   * uid and primary gid and clears supplementary groups; `initGroups` runs it
   * through setpriv --init-groups instead, so @group principals can match.
   */
  submit(user: Pick<TestUser, 'uid' | 'gid'>, input: string | Buffer, args: readonly string[] = [], options: { initGroups?: boolean } = {}): Promise<SubmitResult> {
    return this.startSubmission(user, args, options).end(input);
  }

  /**
   * Starts the helper as `user` and leaves its stdin open: a slow writer,
   * so a test can act while the submission is in flight. `end` writes the
   * rest, closes stdin and resolves with the helper's result.
   */
  startSubmission(user: Pick<TestUser, 'uid' | 'gid'>, args: readonly string[] = [], options: { initGroups?: boolean } = {}): OpenSubmission {
    const child = options.initGroups
      ? spawn('setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--init-groups', this.helperPath, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: {} })
      : spawn(this.helperPath, args, { uid: user.uid, gid: user.gid, stdio: ['pipe', 'pipe', 'pipe'], env: {} });
    return openChild(child);
  }

  /** Submission log lines of the daemon (one JSON object per submission). */
  submissions(): Record<string, unknown>[] {
    return this.logLines.filter((line) => line.msg === 'submission');
  }

  /**
   * Submits, then waits for the daemon's log line of this submission (it
   * logs after replying, so its stdout may lag the helper's exit a little).
   */
  async submitAndLog(user: Pick<TestUser, 'uid' | 'gid'>, input: string | Buffer): Promise<{ result: SubmitResult; logged: Record<string, unknown> }> {
    const before = this.submissions().length;
    const result = await this.submit(user, input);
    return { result, logged: await this.submissionAfter(before) };
  }

  /** The log line of the submission after the first `count`, once the daemon has logged exactly that many more. */
  async submissionAfter(count: number, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    if (!(await heldWithin(timeoutMs, () => this.submissions().length === count + 1))) {
      throw new Error(`mailsubmitd logged ${this.submissions().length} submissions, not ${count + 1}, in ${timeoutMs} ms`);
    }
    return this.submissions()[count] ?? {};
  }

  /** Waits for the daemon's log line of a submission (pino writes it asynchronously, after the reply). */
  waitForSubmission(match: (line: Record<string, unknown>) => boolean, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    return this.waitForLog((line) => line.msg === 'submission' && match(line), timeoutMs);
  }

  /** Waits for any log line of the daemon's (written in batches, so possibly well after what caused it). */
  async waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    let line: Record<string, unknown> | undefined;
    if (!(await heldWithin(timeoutMs, () => (line = this.logLines.find(match)) !== undefined))) {
      throw new Error(`mailsubmitd logged no matching line in ${timeoutMs} ms`);
    }
    return line as Record<string, unknown>;
  }

  async stop(): Promise<void> {
    await this.stopDaemon();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
