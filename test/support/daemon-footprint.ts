/**
 * What a daemon under test holds: its open descriptors and its resident
 * memory after a full garbage collection, for tests that check that
 * nothing of a finished submission stays behind.
 *
 * The daemon has no way to be told to collect (SIGUSR1 is closed, and a
 * test-only hook has no place in it), so it is started with Node's own
 * --heapsnapshot-signal (through NODE_OPTIONS, `withHeapSnapshotSignal`): a
 * heap snapshot begins with a full GC. The young generation, which V8 grows
 * under a burst and keeps, is capped at 1 MB (--max-semi-space-size) so its
 * high-water mark is not mistaken for growth.
 */
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from './until.ts';

export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

export function vmRssKb(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (match === null) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]);
}

/** Waits until `read` gives the same value twice, `intervalMs` apart (or gives up and returns the last). */
export async function settled(read: () => number, intervalMs: number, tries: number): Promise<number> {
  let last = read();
  for (let i = 0; i < tries; i++) {
    await sleep(intervalMs);
    const now = read();
    if (now === last) return now;
    last = now;
  }
  return last;
}

/** Runs `start` with NODE_OPTIONS that let SIGUSR2 write a heap snapshot into `snapshotDir`. */
export async function withHeapSnapshotSignal<T>(snapshotDir: string, start: () => Promise<T>): Promise<T> {
  const nodeOptions = process.env.NODE_OPTIONS;
  process.env.NODE_OPTIONS = `${nodeOptions ?? ''} --heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${snapshotDir} --max-semi-space-size=1`.trim();
  try {
    return await start();
  } finally {
    if (nodeOptions === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = nodeOptions;
  }
}

/** Resident kB of the process's malloc heap (the `[heap]` mapping: glibc's main arena). */
export function mallocHeapKb(pid: number): number {
  let inHeap = false;
  let kb = 0;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const mapping = /^[0-9a-f]+-[0-9a-f]+ /.test(line);
    if (mapping) inHeap = line.endsWith('[heap]');
    else if (inHeap) kb += Number(/^Rss:\s+(\d+) kB/.exec(line)?.[1] ?? 0);
  }
  return kb;
}

export interface Footprint {
  /** VmRSS just before the GC. */
  readonly beforeKb: number;
  /** VmRSS after it. */
  readonly afterKb: number;
  /** The JavaScript heap's live objects: the snapshot's size. */
  readonly liveHeapOctets: number;
  /** malloc's main arena after the GC. */
  readonly mallocHeapKb: number;
}

/**
 * The daemon's VmRSS in kB just before and after a full GC, with what the
 * GC found alive. Writing the snapshot leaves malloc some 40 MB larger the
 * first time, so only readings taken this way are compared with each other.
 */
export async function collectedRssKb(pid: number, snapshotDir: string): Promise<Footprint> {
  const beforeKb = vmRssKb(pid);
  process.kill(pid, 'SIGUSR2');
  let file: string | undefined;
  for (let i = 0; i < 100 && file === undefined; i++) {
    await sleep(100);
    file = readdirSync(snapshotDir).find((f) => f.endsWith('.heapsnapshot'));
  }
  if (file === undefined) throw new Error('the daemon wrote no heap snapshot');
  const path = join(snapshotDir, file);
  // The file appears empty and grows while it is written: done when it is not empty and stops
  // changing. Memory read while the writer still runs would count the writer's buffers.
  for (let i = 0; i < 100 && statSync(path).size === 0; i++) await sleep(100);
  const liveHeapOctets = await settled(() => statSync(path).size, 300, 100);
  // Removed, so that the next snapshot is told apart.
  rmSync(path);
  const afterKb = (await settled(() => Math.round(vmRssKb(pid) / 1024), 500, 20)) * 1024;
  return { beforeKb, afterKb, liveHeapOctets, mallocHeapKb: mallocHeapKb(pid) };
}
