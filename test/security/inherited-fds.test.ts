/**
 * Descriptors the daemon inherits from whoever starts it (a shell with a
 * file, a socket or a pipe open above fd 2) are closed at start: kept, they
 * would stay open for the daemon's lifetime and pass on to every child it
 * runs. The daemon is started from bash with four such fds; afterwards none
 * of them is in its fd table, and it still serves.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAEMON_BUNDLE, MailsubmitUnderTest } from '../support/mailsubmit-under-test.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import { tearDown } from '../support/tear-down.ts';
import { ensureUser, type TestUser } from '../support/test-accounts.ts';
import { heldWithin } from '../support/until.ts';

describe('descriptors inherited at start', () => {
  const sink = new RecordingSink();
  let ms: MailsubmitUnderTest;
  let user: TestUser;
  let scratch: string;
  let daemon: ChildProcess | undefined;
  let inherited: string[];
  const log: string[] = [];

  beforeAll(async () => {
    const port = await sink.listen();
    ms = await MailsubmitUnderTest.start({ downstreamPort: port });
    user = ensureUser('mstinherit');
    ms.setAuthorizations(['mstinherit']);
    await ms.stopDaemon();
    scratch = mkdtempSync('/tmp/mailsubmit-inherit-');
    const file = join(scratch, 'secret-file');
    writeFileSync(file, 'not the daemon\'s\n');
    const targets = join(scratch, 'targets');
    // fd 7: a file, 8: a directory, 9: one end of a pipe, 10: a TCP connection. bash sets no close-on-exec on them.
    const script = [
      `exec 7<'${file}' 8<'${scratch}' 9< <(sleep 120) 10<>/dev/tcp/127.0.0.1/${port}`,
      `for fd in 7 8 9 10; do readlink /proc/$$/fd/$fd; done > '${targets}'`,
      `exec '${process.execPath}' '${DAEMON_BUNDLE}' -c '${ms.configPath}'`,
    ].join('\n');
    daemon = spawn('bash', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    daemon.stdout?.on('data', (chunk: Buffer) => log.push(chunk.toString()));
    await ms.waitForSockets(daemon, () => 'mailsubmitd did not start');
    inherited = readFileSync(targets, 'utf8').trim().split('\n');
  }, 30_000);

  afterAll(async () => {
    if (daemon !== undefined && daemon.exitCode === null) {
      const exited = new Promise((resolve) => daemon?.once('exit', resolve));
      daemon.kill('SIGTERM');
      await exited;
    }
    await tearDown(ms, undefined, sink);
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  });

  it('were four: a file, a directory, a pipe and a socket', () => {
    expect(inherited).toHaveLength(4);
    expect(inherited[0]).toMatch(/secret-file$/);
    expect(inherited[2]).toMatch(/^pipe:/);
    expect(inherited[3]).toMatch(/^socket:/);
  });

  it('are not open in the running daemon', () => {
    const pid = daemon?.pid as number;
    const open = readdirSync(`/proc/${pid}/fd`).map((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        return '';
      }
    });
    for (const target of inherited) expect(open).not.toContain(target);
  });

  it('leaves the daemon serving', async () => {
    const result = await ms.submit(user, 'sender: a@example.net\nrecipient: b@example.org\n\nSubject: x\n\nbody\n');
    expect(result.code).toBe(0);
    expect(daemon?.exitCode).toBeNull();
    // The log says what was closed (log lines are written in batches: wait for it).
    await heldWithin(5000, () => /closed descriptors inherited at start/.test(log.join('')));
    expect(log.join('')).toMatch(/closed descriptors inherited at start.*secret-file|secret-file.*closed descriptors inherited at start/);
  });
});
