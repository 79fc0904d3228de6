/**
 * mailsubmitd as install.sh runs it: as an unprivileged user of its own,
 * not as root. Some attacks only work against such a daemon (root may set
 * O_NOATIME on anyone's file, an unprivileged daemon gets EPERM), so the
 * tests of them restart the harness's daemon this way: the run directory
 * and the spool become the daemon user's, and it runs with the socket's
 * group as its only group, through setpriv like install/lib/daemon.sh.
 * The local queue the root daemon made becomes the user's too, as
 * install.sh makes it the daemon user's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { collectLogLines } from './daemon-log.ts';
import { DAEMON_BUNDLE, type MailsubmitUnderTest } from './mailsubmit-under-test.ts';
import type { TestUser } from './test-accounts.ts';

export interface UserDaemon {
  readonly pid: number;
  readonly logLines: Record<string, unknown>[];
  readonly stderr: () => string;
  /** True while the process has not exited. */
  alive(): boolean;
  stop(): Promise<void>;
}

/** Stops the harness's root daemon and starts the same configuration as `user`, in group `gid`. */
export async function restartAsUser(ms: MailsubmitUnderTest, user: TestUser, gid: number): Promise<UserDaemon> {
  await ms.stopDaemon();
  const runDir = join(ms.dir, 'run');
  chownSync(runDir, user.uid, gid);
  const spool = join(ms.dir, 'spool');
  if (existsSync(spool)) chownSync(spool, user.uid, gid);
  const queue = join(ms.dir, 'queue');
  if (existsSync(queue)) chownTree(queue, user.uid, gid);
  rmSync(ms.socketPath, { force: true });
  rmSync(ms.controlSocketPath, { force: true });
  const child: ChildProcess = spawn('setpriv', [`--reuid=${user.uid}`, `--regid=${gid}`, '--clear-groups', process.execPath, DAEMON_BUNDLE, '-c', ms.configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logLines: Record<string, unknown>[] = [];
  collectLogLines(child.stdout, logLines);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await ms.waitForSockets(child, () => `mailsubmitd as ${user.name} did not start: ${stderr}`);
  return {
    pid: child.pid as number,
    logLines,
    stderr: () => stderr,
    alive: () => child.exitCode === null && child.signalCode === null,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** The directory and everything in it (the queue is directories and files, no links). */
function chownTree(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid);
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const inner = join(path, entry.name);
    if (entry.isDirectory()) chownTree(inner, uid, gid);
    else chownSync(inner, uid, gid);
  }
}
