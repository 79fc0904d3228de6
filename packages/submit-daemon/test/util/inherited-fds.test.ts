/**
 * Which descriptors found at start are inherited (closed) and which are
 * Node's own (kept); test/security/inherited-fds.test.ts starts a daemon
 * with inherited fds for real.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { inheritedFds } from '../../src/util/inherited-fds.ts';

describe('the rule that tells inherited descriptors from Node\'s own', () => {
  it('keeps anon_inodes and pipes held at both ends, and closes everything else', () => {
    const fds = new Map<number, string>([
      [3, 'anon_inode:[eventpoll]'],
      [4, 'pipe:[100]'],
      [5, '/home/alice/secret'],
      [6, 'pipe:[100]'],
      [7, 'anon_inode:[eventfd]'],
      [8, 'socket:[200]'],
      [9, 'pipe:[300]'],
      [10, '/dev/null'],
      [11, 'anon_inode:[io_uring]'],
    ]);
    expect(inheritedFds(fds).map(({ fd }) => fd)).toEqual([5, 8, 9, 10]);
  });

  it("keeps what V8's profiling options open for this process, and closes the same names of another", () => {
    const fds = new Map<number, string>([
      [18, '/work/isolate-0x35af3d60-4242-v8.log'],
      [19, '/tmp/perf-4242.map'],
      [20, '/tmp/jit-4242.dump'],
      [21, '/tmp/perf-4243.map'],
      [22, '/tmp/isolate-0x35af3d60-14242-v8.log'],
    ]);
    expect(inheritedFds(fds, new Set(), 4242).map(({ fd }) => fd)).toEqual([21, 22]);
  });

  it("takes nothing Node opened itself for inherited, the profiler's map included", () => {
    // A Node with no fd above 2 at exec (bash closes them first: dash takes one-digit fds only), listing what it has once started.
    const list = "const fs = require('fs'); const fds = {}; for (const n of fs.readdirSync('/proc/self/fd')) { try { fds[n] = fs.readlinkSync('/proc/self/fd/' + n); } catch {} } console.log(JSON.stringify({ pid: process.pid, fds }));";
    const closeAbove2 = 'for fd in /proc/$$/fd/*; do n=${fd##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-"; done; exec "$@"';
    const out = execFileSync('bash', ['-c', closeAbove2, 'bash', process.execPath, '--perf-basic-prof', '-e', list], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    const { pid, fds } = JSON.parse(out) as { pid: number; fds: Record<string, string> };
    const found = new Map(Object.entries(fds).map(([fd, target]) => [Number(fd), target] as const).filter(([fd]) => fd > 2));
    expect([...found.values()]).toContain(`/tmp/perf-${pid}.map`);
    expect(inheritedFds(found, new Set(), pid)).toEqual([]);
  });

  it('keeps the socket systemd passed on purpose', () => {
    const fds = new Map<number, string>([
      [3, 'socket:[200]'],
      [4, 'socket:[201]'],
      [5, 'anon_inode:[eventpoll]'],
    ]);
    expect(inheritedFds(fds, new Set([3])).map(({ fd }) => fd)).toEqual([4]);
  });
});
