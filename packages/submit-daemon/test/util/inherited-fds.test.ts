/**
 * Which descriptors found at start are inherited (closed) and which are
 * Node's own (kept); test/security/inherited-fds.test.ts starts a daemon
 * with inherited fds for real.
 */
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

  it('keeps the socket systemd passed on purpose', () => {
    const fds = new Map<number, string>([
      [3, 'socket:[200]'],
      [4, 'socket:[201]'],
      [5, 'anon_inode:[eventpoll]'],
    ]);
    expect(inheritedFds(fds, new Set([3])).map(({ fd }) => fd)).toEqual([4]);
  });
});
