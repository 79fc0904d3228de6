/**
 * The set-gid helper, installed by MailsubmitUnderTest as install.sh installs
 * it (2755 root:GROUP), attacked by its own unprivileged caller: the loader's
 * environment (LD_PRELOAD), the environment the helper might read (NODE_OPTIONS,
 * PATH, IFS, MAILSUBMIT_*), fds 0-2 closed at exec, stops and signals inside
 * and after the privileged window, ptrace, and the socket path replaced. None
 * of it may give the caller the group, or let anyone submit as someone else.
 *
 * The privileged window (from exec until the group is dropped after
 * connect) is made to last: the daemon is stopped and its listen backlog
 * filled, so the helper sleeps in connect() holding the group, and the test
 * looks at it there through /proc instead of racing it.
 *
 * What the kernel does, asserted below: a set-gid exec makes the process
 * non-dumpable, and changing the effective gid back keeps it so, so the
 * caller can ptrace it neither while it holds the group nor after the drop.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MailsubmitUnderTest } from '../support/mailsubmit-under-test.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import { tearDown } from '../support/tear-down.ts';
import { ensureGroup, ensureUser, type TestUser } from '../support/test-accounts.ts';
import {
  CONNECT_SYSCALL,
  fdsOf,
  fillBacklog,
  gidsOf,
  PRELOAD_SOURCE,
  runAsCaller,
  startDecoySocket,
  startHelper,
  traceAsCaller,
  waitUntilAwaitingReply,
  waitUntilInSyscall,
  waitUntilStopped,
  type HelperRun,
} from './setgid-probes.ts';
import { ATTACK_PATHS, type PathAttack } from './socket-path-attacks.ts';

/** The LD_PRELOAD probe compiles its shared object; CI must have a compiler (it builds the helper too). */
const HAVE_CC = spawnSync('cc', ['--version'], { stdio: 'ignore' }).status === 0;

const submission = (tag: string): string => `sender: ${tag}@example.net\nrecipient: rcpt@example.org\n\nSubject: ${tag}\n\nbody\n`;

describe('the installed set-gid helper under attack', () => {
  const sink = new RecordingSink();
  let ms: MailsubmitUnderTest;
  let helperGid: number;
  let caller: TestUser; // on the authorization list
  let outsider: TestUser; // not on it
  let scratch: string;
  let marker: string;
  let preload: string;
  let serial = 0;

  beforeAll(async () => {
    ms = await MailsubmitUnderTest.start({ downstreamPort: await sink.listen() });
    helperGid = ensureGroup(ms.group);
    caller = ensureUser('mstsgcaller');
    outsider = ensureUser('mstsgoutsider');
    ms.setAuthorizations(['mstsgcaller']);
    scratch = mkdtempSync('/tmp/mailsubmit-setgid-');
    chmodSync(scratch, 0o755);
    mkdirSync(join(scratch, 'marks'), { mode: 0o777 });
    chmodSync(join(scratch, 'marks'), 0o777);
    marker = join(scratch, 'marks', 'constructor-ran');
    preload = join(scratch, 'preload.so');
    if (HAVE_CC) {
      writeFileSync(join(scratch, 'preload.c'), PRELOAD_SOURCE);
      execFileSync('cc', ['-shared', '-fPIC', `-DMARKER="${marker}"`, '-o', preload, join(scratch, 'preload.c')]);
      chmodSync(preload, 0o755);
    }
  }, 30_000);

  afterAll(async () => {
    // Never leave the daemon stopped, whatever failed.
    if (ms?.daemonPid !== undefined) process.kill(ms.daemonPid, 'SIGCONT');
    for (const helper of started) if (helper.child.exitCode === null && helper.child.signalCode === null) helper.child.kill('SIGKILL');
    await tearDown(ms, undefined, sink);
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  }, 60_000);

  const markerLines = (): string[] => {
    try {
      return readFileSync(marker, 'utf8').split('\n').filter((line) => line !== '');
    } catch {
      return [];
    }
  };

  const started: HelperRun[] = [];
  /** startHelper, remembered so that afterAll can kill what a failed test left running. */
  const start = (user: TestUser, options: Parameters<typeof startHelper>[2] = {}): HelperRun => {
    const helper = startHelper(ms.helperPath, user, options);
    started.push(helper);
    return helper;
  };

  /** Runs the helper to its end with `input` as stdin. */
  async function run(user: TestUser, input: string, options: Parameters<typeof startHelper>[2] = {}) {
    const helper = start(user, options);
    helper.end(input);
    return helper.result;
  }

  /** Waits for the sink to get the message whose sender is tag@example.net. */
  const delivered = (tag: string) => sink.waitForMessage((m) => m.mailFrom.startsWith(`MAIL FROM:<${tag}@example.net>`));

  it('is installed set-gid 2755 root:GROUP, the socket 0660 root:GROUP in a 0750 root:GROUP directory', () => {
    const helper = statSync(ms.helperPath);
    expect({ mode: (helper.mode & 0o7777).toString(8), uid: helper.uid, gid: helper.gid }).toEqual({ mode: '2755', uid: 0, gid: helperGid });
    const runDir = statSync(dirname(ms.socketPath));
    expect({ mode: (runDir.mode & 0o7777).toString(8), uid: runDir.uid, gid: runDir.gid }).toEqual({ mode: '750', uid: 0, gid: helperGid });
    const socket = statSync(ms.socketPath);
    expect(socket.isSocket()).toBe(true);
    expect({ mode: (socket.mode & 0o777).toString(8), gid: socket.gid }).toEqual({ mode: '660', gid: helperGid });
  });

  it.skipIf(!HAVE_CC && !process.env.CI)('ignores LD_PRELOAD and LD_LIBRARY_PATH: the constructor that runs in an ordinary program never runs in the helper', async () => {
    // The shared object works: an ordinary program run the same way runs its constructor.
    execFileSync('/bin/true', [], { uid: caller.uid, gid: caller.gid, env: { LD_PRELOAD: preload } });
    expect(markerLines()).toEqual([expect.stringMatching(new RegExp(`^pid \\d+ egid ${caller.gid}$`))]);
    rmSync(marker);

    const env = { LD_PRELOAD: preload, LD_LIBRARY_PATH: scratch, LD_AUDIT: preload };
    const tag = `preload-${++serial}`;
    const allowed = await run(caller, submission(tag), { env });
    expect(allowed.stderr).toBe('');
    expect(allowed.code).toBe(0);
    await delivered(tag);
    const refused = await run(outsider, submission('preload-outsider'), { env });
    expect(refused.code).toBe(77);
    expect(markerLines()).toEqual([]);
  });

  it('takes no path and no option from the environment: a decoy socket and list named there are never used', async () => {
    const decoy = join(scratch, 'decoy.sock');
    const decoyLog = join(scratch, 'decoy.log');
    const fakeList = join(scratch, 'authorized');
    writeFileSync(fakeList, 'mstsgoutsider\nmstsgcaller\n', { mode: 0o644 });
    writeFileSync(join(scratch, 'evil.js'), `require('fs').appendFileSync(${JSON.stringify(marker)}, 'node ran\\n');\n`, { mode: 0o644 });
    const server = await startDecoySocket(decoy, decoyLog);
    try {
      const env = {
        NODE_OPTIONS: `--require ${join(scratch, 'evil.js')}`,
        PATH: scratch,
        IFS: '/',
        MAILSUBMIT_SOCKET: decoy,
        MAILSUBMIT_AUTH_LIST: fakeList,
        MAILSUBMIT_TIMEOUT: '1',
        SOCKET: decoy,
        AUTH_LIST: fakeList,
        GCONV_PATH: scratch,
        LOCPATH: scratch,
        NLSPATH: `${scratch}/%N`,
        LC_ALL: 'xx_XX.UTF-8',
        TMPDIR: scratch,
        HOSTALIASES: fakeList,
        MALLOC_CHECK_: '3',
      };
      const tag = `environment-${++serial}`;
      const allowed = await run(caller, submission(tag), { env });
      expect(allowed.stderr).toBe('');
      expect(allowed.code).toBe(0);
      await delivered(tag);
      expect(await ms.waitForSubmission((l) => l.sender === `${tag}@example.net`)).toMatchObject({ uid: caller.uid, status: 'ok' });
      // The list in the environment would admit the outsider; the compiled-in one does not.
      const refused = await run(outsider, submission('environment-outsider'), { env });
      expect(refused.stderr).toMatch(/^mailsubmit: user mstsgoutsider \(uid \d+\) is not authorized/);
      expect(refused.code).toBe(77);
    } finally {
      await server.stop();
    }
    expect(readFileSync(decoyLog, 'utf8')).toBe('');
    expect(markerLines()).toEqual([]);
  });

  describe('closed fds 0, 1 and 2 at exec', () => {
    // For a set-gid program glibc itself (AT_SECURE) opens /dev/null on a closed fd 0, 1 or 2 before main():
    // the helper never sees them closed, and the daemon refuses the /dev/null it is passed as a device.
    it('refuses a closed fd 0 with 66 (there is nothing to submit)', async () => {
      const result = await run(caller, '', { close: [0] });
      expect(result.stderr).toBe('mailsubmit: standard input is missing or not readable: standard input is a device, not a message\n');
      expect(result.code).toBe(66);
    });

    it('refuses fds 0, 1 and 2 all closed with 66, writing nowhere', async () => {
      const result = await run(caller, '', { close: [0, 1, 2] });
      expect(result.stderr).toBe('');
      expect(result.stdout).toBe('');
      expect(result.code).toBe(66);
    });

    it('puts /dev/null on closed fds 1 and 2, so its socket is never fd 1 or 2, and delivers', async () => {
      const tag = `closed-out-${++serial}`;
      const helper = start(caller, { close: [1, 2] });
      helper.write(submission(tag).slice(0, 20));
      await waitUntilAwaitingReply(helper.pid);
      const fds = fdsOf(helper.pid);
      expect(fds.get(1)).toBe('/dev/null');
      expect(fds.get(2)).toBe('/dev/null');
      // Node's stdio "pipes" are socketpairs; the daemon connection is the one socket above fd 2.
      expect(fds.get(0)).toMatch(/^(pipe|socket):/);
      expect([...fds].filter(([fd, target]) => fd > 2 && target.startsWith('socket:'))).toHaveLength(1);
      helper.end(submission(tag).slice(20));
      expect((await helper.result).code).toBe(0);
      await delivered(tag);
    });

    it('writes its refusal to the /dev/null on a closed fd 2, not into anything it opened, and exits 77', async () => {
      const result = await run(outsider, submission('closed-err'), { close: [2] });
      expect(result.stderr).toBe('');
      expect(result.code).toBe(77);
      const list = statSync(ms.authorizationList);
      expect(readFileSync(ms.authorizationList, 'utf8')).toBe('mstsgcaller\n');
      expect(list.size).toBe('mstsgcaller\n'.length);
    });

    it('refuses a closed fd 1 in the qmail-queue mode with 54 (the envelope is missing)', async () => {
      const result = await run(caller, 'Subject: x\n\nx\n', { close: [1], argv0: join(dirname(ms.helperPath), 'mailsubmit-qmail-queue') });
      // The /dev/null glibc put on fd 1 reaches the daemon as the envelope fd, and is refused as a device.
      expect(result.stderr).toBe('mailsubmit-qmail-queue: standard input is missing or not readable: the envelope (fd 1) is a device, not a message\n');
      expect(result.code).toBe(54);
    });
  });

  /**
   * Stops the daemon and fills its backlog, starts the helper, and calls
   * `inside` while the helper sleeps in connect() holding the group. The
   * daemon is let go again afterwards whatever happened.
   */
  async function inPrivilegedWindow(user: TestUser, inside: (helper: HelperRun) => Promise<void>): Promise<HelperRun> {
    const daemon = ms.daemonPid as number;
    process.kill(daemon, 'SIGSTOP');
    let filler: Awaited<ReturnType<typeof fillBacklog>> | undefined;
    try {
      await waitUntilStopped(daemon);
      filler = await fillBacklog(ms.socketPath);
      expect(filler.connections).toBeGreaterThan(0);
      const helper = start(user);
      await waitUntilInSyscall(helper.pid, CONNECT_SYSCALL);
      expect(readlinkSync(`/proc/${helper.pid}/exe`)).toBe(ms.helperPath);
      await inside(helper);
      return helper;
    } finally {
      process.kill(daemon, 'SIGCONT');
      await filler?.release();
    }
  }

  it('holds the group only inside connect(), where its caller can neither ptrace it nor read its memory', async () => {
    const tag = `window-${++serial}`;
    const helper = await inPrivilegedWindow(caller, async (h) => {
      // Real gid the caller's; effective, saved and file-system gid the helper's group.
      expect(gidsOf(h.pid)).toEqual([caller.gid, helperGid, helperGid, helperGid]);
      expect(await traceAsCaller(caller, h.pid)).toEqual({ attach: 'EPERM', mem: 'EACCES' });
      // Stopped and continued inside the window: it still holds nothing more, and goes on.
      process.kill(h.pid, 'SIGSTOP');
      await waitUntilStopped(h.pid);
      expect(gidsOf(h.pid)).toEqual([caller.gid, helperGid, helperGid, helperGid]);
      expect(await traceAsCaller(caller, h.pid)).toEqual({ attach: 'EPERM', mem: 'EACCES' });
      process.kill(h.pid, 'SIGCONT');
    });
    helper.write(submission(tag).slice(0, 10));
    await waitUntilAwaitingReply(helper.pid);
    // After connect the group is gone for good: all four gids are the caller's.
    expect(gidsOf(helper.pid)).toEqual([caller.gid, caller.gid, caller.gid, caller.gid]);
    helper.end(submission(tag).slice(10));
    expect((await helper.result).code).toBe(0);
    await delivered(tag);
  });

  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGKILL'] as const) {
    it(`dies of ${signal} inside the privileged window, having sent nothing`, async () => {
      const tag = `window-${signal}-${++serial}`;
      const helper = await inPrivilegedWindow(caller, async (h) => {
        h.write(submission(tag));
        process.kill(h.pid, signal);
        const result = await h.result;
        expect(result).toMatchObject({ code: null, signal });
      });
      expect(gidsOf(helper.pid)).toBeNull();
      // A later submission goes through; the killed one was never delivered.
      const next = `after-${signal}-${++serial}`;
      expect((await run(caller, submission(next))).code).toBe(0);
      await delivered(next);
      expect(sink.messages.some((m) => m.mailFrom.includes(`${tag}@`))).toBe(false);
    }, 60_000);
  }

  it('is stopped and continued while it waits for the reply: dropped gids, no ptrace, then delivers once', async () => {
    const tag = `stopped-${++serial}`;
    const helper = start(caller);
    helper.write(submission(tag).slice(0, 30));
    await waitUntilAwaitingReply(helper.pid);
    process.kill(helper.pid, 'SIGSTOP');
    await waitUntilStopped(helper.pid);
    expect(gidsOf(helper.pid)).toEqual([caller.gid, caller.gid, caller.gid, caller.gid]);
    // Non-dumpable since the set-gid exec, and the drop did not change that: still no ptrace.
    expect(await traceAsCaller(caller, helper.pid)).toEqual({ attach: 'EPERM', mem: 'EACCES' });
    process.kill(helper.pid, 'SIGCONT');
    helper.end(submission(tag).slice(30));
    expect((await helper.result).code).toBe(0);
    await delivered(tag);
    expect(sink.messages.filter((m) => m.mailFrom.includes(`${tag}@`))).toHaveLength(1);
  });

  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGKILL'] as const) {
    it(`dies of ${signal} while it waits for the reply: the daemon abandons the message (75, caller-gone)`, async () => {
      const tag = `waiting-${signal}-${++serial}`;
      const helper = start(caller);
      helper.write(submission(tag).slice(0, 60));
      await waitUntilAwaitingReply(helper.pid);
      process.kill(helper.pid, signal);
      expect(await helper.result).toMatchObject({ code: null, signal });
      const line = await ms.waitForSubmission((l) => l.pid === helper.pid);
      expect(line).toMatchObject({ status: 'caller-gone', exit: 75, uid: caller.uid });
      expect(line).not.toHaveProperty('queue_id');
      expect(sink.messages.some((m) => m.mailFrom.includes(`${tag}@`))).toBe(false);
    });
  }

  it('survives SIGSTOP and SIGCONT at arbitrary moments of its run: every run exits 0 and is delivered once', async () => {
    const runs: { tag: string; result: Awaited<HelperRun['result']> }[] = [];
    let stopped = 0;
    for (let i = 0; i < 12; i++) {
      const tag = `stop-anywhere-${++serial}`;
      const helper = start(caller);
      helper.end(submission(tag));
      // Wherever the stop lands (wrapper, loader, list, connect, send, poll, exit), continuing must be harmless.
      await new Promise((resolve) => setTimeout(resolve, i));
      try {
        process.kill(helper.pid, 'SIGSTOP');
        // A SIGCONT sent before the stop took effect would cancel it.
        await waitUntilStopped(helper.pid);
        stopped++;
        process.kill(helper.pid, 'SIGCONT');
      } catch {
        // Already gone: it finished first.
      }
      runs.push({ tag, result: await helper.result });
    }
    expect(stopped).toBeGreaterThan(0);
    for (const { tag, result } of runs) {
      expect({ tag, code: result.code, stderr: result.stderr }).toEqual({ tag, code: 0, stderr: '' });
      await delivered(tag);
      expect(sink.messages.filter((m) => m.mailFrom.includes(`<${tag}@`))).toHaveLength(1);
    }
  }, 60_000);

  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGKILL'] as const) {
    it(`dies of ${signal} at arbitrary moments, or finishes first: exit 0 only when delivered, never twice`, async () => {
      let killed = 0;
      for (let i = 0; i < 6; i++) {
        const tag = `${signal}-anywhere-${++serial}`;
        const helper = start(caller);
        helper.end(submission(tag));
        // The signal is the helper's, not the Python wrapper's (which turns a SIGINT into exit 1): sent only after the exec.
        await helper.execed;
        await new Promise((resolve) => setTimeout(resolve, i * 2));
        try {
          process.kill(helper.pid, signal);
        } catch {
          // Already gone.
        }
        const result = await helper.result;
        if (result.code === 0) await delivered(tag);
        else expect(result, result.stderr).toMatchObject({ code: null, signal });
        if (result.signal === signal) killed++;
        expect(sink.messages.filter((m) => m.mailFrom.includes(`<${tag}@`)).length).toBeLessThanOrEqual(1);
      }
      // Sent at once after the exec, the signal comes before any reply can: the sink that must take the message first runs in this process.
      expect(killed).toBeGreaterThan(0);
    }, 60_000);
  }

  describe('the socket path', () => {
    const attempts = (attack: PathAttack, gid: number) =>
      runAsCaller<Record<string, string>>({ uid: caller.uid, gid }, attack.program, attack.args(ms.socketPath, scratch));

    for (const attack of ATTACK_PATHS) {
      it(`cannot be ${attack.name} by an authorized user, with or without the helper's group`, async () => {
        const before = statSync(ms.socketPath);
        for (const gid of [caller.gid, helperGid]) {
          const result = await attempts(attack, gid);
          expect(result, `as gid ${gid}`).toEqual(attack.expected);
        }
        const after = statSync(ms.socketPath);
        expect(after.ino).toBe(before.ino);
        const tag = `path-${++serial}`;
        expect((await run(caller, submission(tag))).code).toBe(0);
        await delivered(tag);
      });
    }
  });
});
