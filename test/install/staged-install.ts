/**
 * install.sh and uninstall.sh run as an administrator stages an install:
 * every path under one temporary root, against a private Postfix, with the
 * daemon in the background (--no-systemd) under a test account. Tests then
 * look at the result through the paths this object names.
 *
 *   const staged = StagedInstall.create({ postfixConfig, listenerPort, account: 'mstms', setgid: true });
 *   await staged.install(); ... await staged.uninstall();
 */
import { execFile, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { childOutput } from '../support/child-output.ts';
import type { TestUser } from '../support/test-accounts.ts';

const ROOT = join(import.meta.dirname, '..', '..');
export const INSTALL_SCRIPT = join(ROOT, 'install', 'install.sh');
export const UNINSTALL_SCRIPT = join(ROOT, 'install', 'uninstall.sh');

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface StagedInstallOptions {
  /** The private Postfix's configuration directory (its master.cf gets the listener). */
  readonly postfixConfig: string;
  /** A free port, for the listener install.sh adds when `listener` is 'tcp'. */
  readonly listenerPort: number;
  /** The re-injection listener: 'private' (install.sh's default, a Unix socket only the daemon's user can reach) or 'tcp' on listenerPort. */
  readonly listener?: 'private' | 'tcp';
  /** The daemon's user and group name (created by install.sh, removed by uninstall.sh). */
  readonly account: string;
  readonly setgid: boolean;
}

/** Runs a command to its end; never throws for a non-zero exit. */
export function runCommand(command: string, args: readonly string[], timeoutMs = 120_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
      resolve({ code, stdout, stderr });
    });
  });
}

export class StagedInstall {
  private constructor(
    /** The temporary root; only `prefix` exists in it before the install. */
    readonly root: string,
    readonly options: StagedInstallOptions,
  ) {}

  static create(options: StagedInstallOptions): StagedInstall {
    const root = mkdtempSync('/tmp/mailsubmit-install-');
    // The daemon's user and the callers must be able to walk down to their files.
    chmodSync(root, 0o755);
    mkdirSync(join(root, 'prefix'), { mode: 0o755 });
    return new StagedInstall(root, options);
  }

  get prefix(): string {
    return join(this.root, 'prefix');
  }
  get sysconfdir(): string {
    return join(this.root, 'etc', 'mailsubmit');
  }
  get rundir(): string {
    return join(this.root, 'run', 'mailsubmit');
  }
  get logdir(): string {
    return join(this.root, 'log', 'mailsubmit');
  }
  get helper(): string {
    return join(this.prefix, 'bin', 'mailsubmit');
  }
  get daemon(): string {
    return join(this.prefix, 'sbin', 'mailsubmitd');
  }
  get ctl(): string {
    return join(this.prefix, 'sbin', 'mailsubmitctl');
  }
  get configFile(): string {
    return join(this.sysconfdir, 'mailsubmit.conf');
  }
  get authorizationList(): string {
    return join(this.sysconfdir, 'authorized');
  }
  get socket(): string {
    return join(this.rundir, 'mailsubmit.sock');
  }
  get pidFile(): string {
    return join(this.rundir, 'mailsubmitd.pid');
  }
  get stateFile(): string {
    return join(this.sysconfdir, 'install.state');
  }
  /** The TCP listener's address (with `listener: 'tcp'`). */
  get listener(): string {
    return `127.0.0.1:${this.options.listenerPort}`;
  }
  get listenerKind(): 'private' | 'tcp' {
    return this.options.listener ?? 'private';
  }
  /** The private listener's directory in the Postfix's queue directory (queue/, as the test harness has it). */
  get downstreamDir(): string {
    return join(this.options.postfixConfig, 'queue', `mailsubmit-${this.options.account}`);
  }
  get downstreamSocket(): string {
    return join(this.downstreamDir, 'smtpd');
  }
  /** The master.cf service name of this install's listener. */
  get listenerService(): string {
    return this.listenerKind === 'private' ? `../mailsubmit-${this.options.account}/smtpd` : this.listener;
  }
  /** The group that may pass through downstreamDir: the daemon's user alone. */
  get mtaGroup(): string {
    return `${this.options.account}-mta`;
  }
  get logFile(): string {
    return join(this.logdir, 'mailsubmitd.log');
  }
  get logrotateFile(): string {
    return join(this.root, 'etc', 'logrotate.d', 'mailsubmitd');
  }

  /** The local queue's directory (--queuedir). */
  get queueDirectory(): string {
    return join(this.root, 'lib', 'mailsubmit', 'queue');
  }

  /** The layout options, the same for install.sh and uninstall.sh. */
  get layoutOptions(): string[] {
    return [
      '--prefix', this.prefix,
      '--sysconfdir', this.sysconfdir,
      '--rundir', this.rundir,
      '--logdir', this.logdir,
      '--spooldir', join(this.root, 'lib', 'mailsubmit', 'spool'),
      '--queuedir', this.queueDirectory,
      '--postfix-config', this.options.postfixConfig,
      '--listener', this.listenerKind === 'private' ? 'private' : this.listener,
      '--logrotate-dir', join(this.root, 'etc', 'logrotate.d'),
      '--user', this.options.account,
      '--group', this.options.account,
      '--no-systemd',
      ...(this.options.setgid ? [] : ['--no-setgid']),
    ];
  }

  /** The same staged install, installed again with another listener (install.sh's migration). */
  withListener(listener: 'private' | 'tcp'): StagedInstall {
    return new StagedInstall(this.root, { ...this.options, listener });
  }

  /** install.sh with the layout; the test run's global setup has built the tree already. */
  install(): Promise<RunResult> {
    return runCommand('bash', [INSTALL_SCRIPT, ...this.layoutOptions, '--no-first-message', '--no-build']);
  }

  /** uninstall.sh, given the same command line as install.sh (as an administrator would paste it). */
  uninstall(extra: readonly string[] = []): Promise<RunResult> {
    return runCommand('bash', [UNINSTALL_SCRIPT, ...this.layoutOptions, '--no-first-message', '--no-build', ...extra]);
  }

  /** mailsubmitctl as installed, on this install's authorization list. */
  ctlCommand(args: readonly string[]): Promise<RunResult> {
    return runCommand(this.ctl, ['--authorization-list', this.authorizationList, ...args]);
  }

  /** The pid the daemon wrote, or null. */
  daemonPid(): number | null {
    return existsSync(this.pidFile) ? Number(readFileSync(this.pidFile, 'utf8').trim()) : null;
  }

  /** Every path under the root, relative to it, sorted. */
  listRoot(): string[] {
    const paths: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        paths.push(relative(this.root, path));
        if (entry.isDirectory()) walk(path);
      }
    };
    walk(this.root);
    return paths.sort();
  }

  /** Runs the installed helper as `user` (uid and primary gid only, empty environment). */
  submit(user: Pick<TestUser, 'uid' | 'gid'>, input: string, args: readonly string[] = []): Promise<RunResult> {
    const child = spawn(this.helper, args, { uid: user.uid, gid: user.gid, stdio: ['pipe', 'pipe', 'pipe'], env: {} });
    const result = childOutput(child);
    child.stdin.end(input);
    return result;
  }
}

/** Pids of running processes whose command line holds `path` as one argument. */
export function processesRunning(path: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      const argv = readFileSync(join('/proc', entry, 'cmdline'), 'utf8').split('\0');
      if (argv.includes(path)) pids.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}
