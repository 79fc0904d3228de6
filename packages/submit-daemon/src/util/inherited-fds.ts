/**
 * Closes the descriptors mailsubmitd inherited from whoever started it (a
 * shell with a file or socket open on fd 5, a supervisor's leftovers): they
 * would otherwise stay open for the daemon's lifetime, and pass on to every
 * sendmail(1) child it starts, under the daemon's uid.
 *
 * The difficulty is telling them apart from the descriptors Node itself
 * opened before any of our code ran. Two easier ways do not work:
 *  - close-on-exec: inherited fds lack it at exec, but Node's start-up
 *    (PlatformInit) sets FD_CLOEXEC on every fd it finds, so by the time
 *    JavaScript runs both kinds have it (measured: Node 20, strace);
 *  - numbers: Node takes the lowest free numbers, so its fds sit between
 *    the inherited ones.
 * What does work is what the descriptors are. Before our code runs, Node
 * and libuv open only kernel objects of their own making: epoll instances,
 * eventfds, io_uring, signalfd/timerfd (all anon_inode:[...]), pipes whose
 * both ends they hold (the signal and wake-up pipes), and, with V8's
 * profiling options (--perf-basic-prof, --prof), files named after this
 * process's pid (perf-PID.map, jit-PID.dump, isolate-...-PID-v8.log), which
 * V8 goes on writing to: closed, their numbers would be taken by sockets
 * and V8's lines written into them. Anything else above fd 2 (another
 * file, a directory, a device, a socket, one end of a pipe) was inherited
 * and is closed. An inherited anon_inode or pipe with both ends would
 * survive; such a thing gives no access to anything, and a starter that
 * passes it, or a file named after a pid it could only know by starting
 * the daemon itself, is already the daemon's own (root, systemd). This must run
 * before the daemon opens any file or socket of its own (first thing in
 * main), since those would look inherited.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { closeFd } from '@mailsubmit/socket-addon';

export interface InheritedFd {
  readonly fd: number;
  readonly target: string;
}

/** fd -> what /proc/self/fd says it is, for fds above 2 (the listing's own fd is gone by the time it returns). */
function openFds(procFd: string): Map<number, string> {
  const found = new Map<number, string>();
  for (const name of readdirSync(procFd)) {
    const fd = Number(name);
    if (!Number.isInteger(fd) || fd <= 2) continue;
    try {
      found.set(fd, readlinkSync(`${procFd}/${name}`));
    } catch {
      // The directory listing's own fd, closed since.
    }
  }
  return found;
}

/** What V8's profiling options open, named after the process (see the header). */
function profilerFile(pid: number): RegExp {
  return new RegExp(`/(perf-${pid}\\.map|jit-${pid}\\.dump|isolate-0x[0-9a-f]+-${pid}-v8\\.log)$`);
}

/** The inherited ones among `fds` (see the header for the rule), but for those in `keep`. */
export function inheritedFds(fds: ReadonlyMap<number, string>, keep: ReadonlySet<number> = new Set(), pid = process.pid): InheritedFd[] {
  const pipeEnds = new Map<string, number>();
  for (const target of fds.values()) if (target.startsWith('pipe:')) pipeEnds.set(target, (pipeEnds.get(target) ?? 0) + 1);
  const nodesOwnFile = profilerFile(pid);
  const inherited: InheritedFd[] = [];
  for (const [fd, target] of fds) {
    if (keep.has(fd) || target.startsWith('anon_inode:') || nodesOwnFile.test(target)) continue;
    if (target.startsWith('pipe:') && (pipeEnds.get(target) ?? 0) >= 2) continue;
    inherited.push({ fd, target });
  }
  return inherited.sort((a, b) => a.fd - b.fd);
}

/**
 * Closes every inherited fd above 2 but those in `keep` (the socket systemd
 * passed on purpose); returns what was closed (for the start-up log).
 */
export function closeInheritedFds(keep: ReadonlySet<number> = new Set(), procFd = '/proc/self/fd'): InheritedFd[] {
  const inherited = inheritedFds(openFds(procFd), keep);
  for (const { fd } of inherited) {
    try {
      closeFd(fd);
    } catch {
      // Gone already: the goal.
    }
  }
  return inherited;
}
