/**
 * Tools for attacking the installed set-gid helper the way its unprivileged
 * caller can: start it with a chosen environment and with fds 0-2 closed,
 * look at it from /proc while it runs (credentials, fds, the system call it
 * sleeps in), try to ptrace it or read its memory as the caller, and serve a
 * decoy socket that records any connection. The caller's side runs in small
 * Python programs under the caller's uid, so every check is the kernel's
 * answer to that user, not to root.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { childOutput, type ChildOutput } from '../support/child-output.ts';

const PYTHON = '/usr/bin/python3';

export interface Caller {
  readonly uid: number;
  readonly gid: number;
}

export interface HelperRun {
  readonly child: ChildProcess;
  /** The helper's pid: the wrapper execs it in place. */
  readonly pid: number;
  /**
   * Settles once the wrapper is gone from that pid: the helper has been
   * exec'd (or the wrapper ended without exec'ing, and `result` says why).
   * A signal meant for the helper must wait for it: see WRAPPER.
   */
  readonly execed: Promise<void>;
  readonly result: Promise<ChildOutput>;
  write(chunk: string | Buffer): void;
  end(chunk?: string | Buffer): void;
}

/**
 * Closes the listed fds, then execs the helper with exactly the given
 * environment. Python itself runs with an empty one, so an LD_PRELOAD meant
 * for the helper cannot act on the wrapper.
 *
 * Until the exec the pid is Python's, and Python catches SIGINT: it installs
 * its handler early in interpreter start-up, so a SIGINT there becomes a
 * KeyboardInterrupt, and one raised while the site module is imported is
 * "Fatal Python error: init_import_site" and exit status 1; one landing just
 * before execve() is recorded by the handler and lost with it, and the
 * helper then runs to the end. Neither says anything about the helper. So
 * the wrapper holds fd 3, one end of a socketpair from the harness, and
 * marks it close-on-exec: the kernel closes it inside execve(), after the
 * point of no return, and the harness reads end-of-file exactly when the
 * pid has become the helper's (execed). A signal sent from then on is the
 * helper's: the exec resets caught signals to their defaults, and one that
 * arrives while execve() is still finishing stays pending until then.
 */
const WRAPPER = String.raw`
import json, os, sys
helper, argv0, closes, env = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
os.set_inheritable(3, False)
for fd in closes:
    os.close(fd)
os.execve(helper, [argv0], env)
`;

/** Starts the helper as `caller`, stdin a pipe left open until end(). */
export function startHelper(helper: string, caller: Caller, options: { env?: Record<string, string>; close?: readonly number[]; argv0?: string } = {}): HelperRun {
  const args = ['-c', WRAPPER, helper, options.argv0 ?? helper, JSON.stringify(options.close ?? []), JSON.stringify(options.env ?? {})];
  const child = spawn(PYTHON, args, { uid: caller.uid, gid: caller.gid, stdio: ['pipe', 'pipe', 'pipe', 'pipe'], env: {}, cwd: '/' });
  // The wrapper's fd 3: end-of-file when it is closed at the helper's exec (or when the wrapper dies first).
  const execNotice = child.stdio[3] as Readable;
  const execed = new Promise<void>((resolve) => {
    execNotice.once('close', () => resolve());
    execNotice.on('error', () => undefined);
    execNotice.resume();
  });
  const result = childOutput(child);
  if (child.pid === undefined) throw new Error('the helper did not start');
  return {
    child,
    pid: child.pid,
    execed,
    result,
    write: (chunk) => void child.stdin.write(chunk),
    end: (chunk = '') => void child.stdin.end(chunk),
  };
}

/** Real, effective, saved and file-system gid from /proc/<pid>/status. */
export function gidsOf(pid: number): readonly [number, number, number, number] | null {
  try {
    const line = /^Gid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return line === null ? null : [Number(line[1]), Number(line[2]), Number(line[3]), Number(line[4])];
  } catch {
    return null;
  }
}

/** The process state letter (R, S, T, Z...) from /proc/<pid>/status. */
export function stateOf(pid: number): string | null {
  try {
    return /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? null;
  } catch {
    return null;
  }
}

/** What each open fd of the process points at, by fd number. */
export function fdsOf(pid: number): Map<number, string> {
  const fds = new Map<number, string>();
  for (const name of readdirSync(`/proc/${pid}/fd`)) {
    try {
      fds.set(Number(name), readlinkSync(`/proc/${pid}/fd/${name}`));
    } catch {
      // Closed in the meantime.
    }
  }
  return fds;
}

/** System call numbers as /proc/PID/syscall shows them; glibc's poll() is poll or ppoll. */
const SYSCALLS = process.arch === 'arm64' ? { poll: ['73'], connect: '203' } : { poll: ['7', '271'], connect: '42' };
const POLL_SYSCALLS = new Set(SYSCALLS.poll);
export const CONNECT_SYSCALL = SYSCALLS.connect;

/**
 * Resolves once the helper sleeps in poll() with its socket open, that is,
 * while it waits for the daemon's reply (it polls nowhere else).
 */
export async function waitUntilAwaitingReply(pid: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let syscall = '';
    try {
      syscall = readFileSync(`/proc/${pid}/syscall`, 'utf8').split(' ')[0] ?? '';
    } catch {
      // Not there (yet, or any more).
    }
    if (POLL_SYSCALLS.has(syscall) && [...fdsOf(pid).values()].some((target) => target.startsWith('socket:'))) return;
    if (!existsSync(`/proc/${pid}`) || Date.now() > deadline) throw new Error(`helper ${pid} never waited for a reply`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Waits until the process is stopped (after SIGSTOP); throws if it ends instead. */
export async function waitUntilStopped(pid: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let state = stateOf(pid); state !== 'T'; state = stateOf(pid)) {
    if (state === null || state === 'Z') throw new Error(`process ${pid} ended before it stopped`);
    if (Date.now() > deadline) throw new Error(`process ${pid} did not stop`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Runs a small Python program as `caller` and returns its last stdout line, parsed as JSON. */
export function runAsCaller<T>(caller: Caller, program: string, args: readonly string[]): Promise<T> {
  const child = spawn(PYTHON, ['-c', program, ...args], { uid: caller.uid, gid: caller.gid, stdio: ['ignore', 'pipe', 'pipe'], env: {}, cwd: '/' });
  return childOutput(child).then(({ code, stdout, stderr }) => {
    if (code !== 0) throw new Error(`python as uid ${caller.uid} exited ${code}: ${stderr}`);
    return JSON.parse(stdout.trim().split('\n').pop() ?? 'null') as T;
  });
}

/**
 * PTRACE_ATTACH, then opening /proc/<pid>/mem, as the caller. Each is the
 * errno name of the failure, or "ok" (after which the tracee is detached).
 */
const TRACE = String.raw`
import ctypes, errno, json, os, sys
pid = int(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
out = {}
if libc.ptrace(16, pid, None, None) == 0:  # PTRACE_ATTACH
    out["attach"] = "ok"
    os.waitpid(pid, 0x40000000)  # __WALL
    libc.ptrace(17, pid, None, None)  # PTRACE_DETACH
else:
    out["attach"] = errno.errorcode.get(ctypes.get_errno(), "?")
try:
    os.close(os.open("/proc/%d/mem" % pid, os.O_RDONLY))
    out["mem"] = "ok"
except OSError as e:
    out["mem"] = errno.errorcode.get(e.errno, "?")
print(json.dumps(out))
`;

export function traceAsCaller(caller: Caller, pid: number): Promise<{ attach: string; mem: string }> {
  return runAsCaller(caller, TRACE, [String(pid)]);
}

/**
 * A SOCK_SEQPACKET listener at `path` (mode 0777) that appends one line to
 * `log` per connection it accepts: the decoy a helper reading its socket
 * path from the environment would reach.
 */
const DECOY = String.raw`
import os, socket, sys
path, log = sys.argv[1], sys.argv[2]
server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
server.bind(path)
os.chmod(path, 0o777)
server.listen(16)
open(log, "a").close()
print("ready", flush=True)
while True:
    conn, _ = server.accept()
    with open(log, "a") as out:
        out.write("connection\n")
    conn.close()
`;

export async function startDecoySocket(path: string, log: string): Promise<{ stop(): Promise<void> }> {
  const child = spawn(PYTHON, ['-c', DECOY, path, log], { stdio: ['ignore', 'pipe', 'inherit'], env: {} });
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`decoy socket exited ${code}`)));
    child.stdout.once('data', () => resolve());
  });
  return {
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** A shared object whose constructor appends "pid egid" to `marker`: what LD_PRELOAD would run. */
export const PRELOAD_SOURCE = String.raw`
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

__attribute__((constructor)) static void hijack(void)
{
    int fd = open(MARKER, O_WRONLY | O_CREAT | O_APPEND, 0666);
    if (fd >= 0) {
        dprintf(fd, "pid %d egid %d\n", (int)getpid(), (int)getegid());
        close(fd);
    }
}
`;

/**
 * Fills the listen backlog of the socket at `path` (as root, non-blocking
 * connects until EAGAIN). While the daemon is stopped, a further connect()
 * then blocks: the helper sleeps in it holding the group, which makes the
 * privileged window something a test can look at without racing it.
 */
const FILLER = String.raw`
import errno, socket, sys
held = []
while True:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.setblocking(False)
    try:
        s.connect(sys.argv[1])
    except BlockingIOError:
        s.close()
        break
    held.append(s)
print(len(held), flush=True)
sys.stdin.read()
for s in held:
    s.close()
`;

export async function fillBacklog(path: string): Promise<{ connections: number; release(): Promise<void> }> {
  const child = spawn(PYTHON, ['-c', FILLER, path], { stdio: ['pipe', 'pipe', 'inherit'], env: {} });
  const connections = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`backlog filler exited ${code}`)));
    child.stdout.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
  });
  return {
    connections,
    release: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin.end();
      await exited;
    },
  };
}

/** Resolves once the process sleeps in the given system call (see CONNECT_SYSCALL). */
export async function waitUntilInSyscall(pid: number, syscall: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let current = '';
    try {
      current = readFileSync(`/proc/${pid}/syscall`, 'utf8').split(' ')[0] ?? '';
    } catch {
      // Not there (yet, or any more).
    }
    if (current === syscall) return;
    if (!existsSync(`/proc/${pid}`) || Date.now() > deadline) throw new Error(`process ${pid} never entered system call ${syscall}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
