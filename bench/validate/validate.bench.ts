/**
 * Throughput of the MessageEncoder (the daemon's hot path) against a floor:
 * the bare line scan, Buffer#indexOf(10) over the same 64 KiB chunks, which
 * is the least any line-aware check must do. Each measurement runs in a fresh
 * child process (this file, forked with `--measure`), so JIT state and heap
 * from one case cannot help or hurt another.
 *
 *   npx tsx bench/validate/validate.bench.ts [--repeat N] [--case '10 MB']
 *
 * Prints MB/s (2^20 octets of input a second: median over the runs inside a
 * process, then over N processes) and encoder/floor (median over the N
 * adjacent floor/encoder pairs).
 */

import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { MessageEncoder } from '@mailsubmit/shared';
import { pipeChunks, sampleMessage } from './sample-message.ts';

type Kind = 'floor' | 'encoder';
type Eol = 'lf' | 'crlf';

interface Case {
  readonly name: string;
  readonly octets: number;
  readonly eol: Eol;
}

const CASES: readonly Case[] = [
  { name: '4 KB, LF', octets: 4 * 1024, eol: 'lf' },
  { name: '4 KB, CRLF', octets: 4 * 1024, eol: 'crlf' },
  { name: '10 MB, LF', octets: 10 * 1024 * 1024, eol: 'lf' },
  { name: '10 MB, CRLF', octets: 10 * 1024 * 1024, eol: 'crlf' },
];

/** Octets of input per timed run: small messages are repeated up to this. */
const RUN_OCTETS = 10 * 1024 * 1024;
const WARMUP_RUNS = 5;
const TIMED_RUNS = 21;

function floorScan(chunk: Buffer): number {
  let lines = 0;
  let p = 0;
  for (;;) {
    const lf = chunk.indexOf(10, p);
    if (lf === -1) break;
    lines++;
    p = lf + 1;
  }
  return lines;
}

/** What is timed, per message: a fresh encoder (or nothing, for the floor), every chunk, the end. */
interface Subject {
  start(): void;
  chunk(chunk: Buffer): number;
  end(): number;
}

function subject(kind: Kind, declaredSize: number): Subject {
  if (kind === 'floor') return { start() {}, chunk: floorScan, end: () => 0 };
  let encoder = new MessageEncoder();
  return {
    start() {
      encoder = new MessageEncoder({ declaredSize });
    },
    chunk: (chunk) => encoder.write(chunk).length,
    end: () => encoder.end().length,
  };
}

/**
 * Child side: one kind, one case; returns MB/s.
 *
 * A pipe hands over each read in a buffer the kernel has just written, so the
 * octets are in the CPU cache. A 10 MB message built up front is not, and the
 * first pass over each chunk would pay for the memory fetch that a real read
 * already paid. So each 64 KiB chunk is first copied into one reused read
 * buffer, outside the timing, and only the work on it is timed. A 4 KB
 * message is one read and stays cached between repetitions anyway, so small
 * messages are timed in whole batches.
 */
function measure(kind: Kind, octets: number, eol: Eol): number {
  const message = sampleMessage(octets, eol === 'lf' ? '\n' : '\r\n');
  const chunks = pipeChunks(message);
  const copies = Math.max(1, Math.round(RUN_OCTETS / message.length));
  const s = subject(kind, message.length);
  const readBuffer = Buffer.allocUnsafe(64 * 1024);
  // Keep results alive so that nothing is optimized away.
  let sink = 0;
  const runSmall = (): number => {
    const only = chunks[0] as Buffer;
    const start = process.hrtime.bigint();
    for (let i = 0; i < copies; i++) {
      s.start();
      sink += s.chunk(only) + s.end();
    }
    return Number(process.hrtime.bigint() - start) / 1e9;
  };
  const runLarge = (): number => {
    let ns = 0n;
    for (let i = 0; i < copies; i++) {
      let t = process.hrtime.bigint();
      s.start();
      ns += process.hrtime.bigint() - t;
      for (const chunk of chunks) {
        chunk.copy(readBuffer);
        const read = readBuffer.subarray(0, chunk.length);
        t = process.hrtime.bigint();
        sink += s.chunk(read);
        ns += process.hrtime.bigint() - t;
      }
      t = process.hrtime.bigint();
      sink += s.end();
      ns += process.hrtime.bigint() - t;
    }
    return Number(ns) / 1e9;
  };
  const run = chunks.length === 1 ? runSmall : runLarge;
  for (let i = 0; i < WARMUP_RUNS; i++) run();
  const seconds: number[] = [];
  for (let i = 0; i < TIMED_RUNS; i++) seconds.push(run());
  if (sink === 0) throw new Error('nothing measured');
  return (message.length * copies) / 2 ** 20 / median(seconds);
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

function inChild(kind: Kind, c: Case): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), ['--measure', kind, String(c.octets), c.eol], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let result: number | undefined;
    child.on('message', (m) => {
      result = Number(m);
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0 && result !== undefined) resolve(result);
      else reject(new Error(`measurement ${kind} ${c.name} exited ${code}`));
    });
  });
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--measure') {
    const [, kind, octets, eol] = args;
    process.send?.(measure(kind as Kind, Number(octets), eol as Eol));
    return;
  }
  const repeatAt = args.indexOf('--repeat');
  const repeat = repeatAt === -1 ? 3 : Math.max(1, Number(args[repeatAt + 1]));
  const caseAt = args.indexOf('--case');
  const only = caseAt === -1 ? '' : (args[caseAt + 1] ?? '');
  console.log(`MessageEncoder vs. Buffer#indexOf(10) line scan, 64 KiB chunks; Node ${process.version}; median of ${repeat} processes`);
  console.log(['case'.padEnd(14), 'floor MB/s', 'encoder MB/s', 'encoder/floor'].join('   '));
  for (const c of CASES.filter((k) => k.name.includes(only))) {
    const floor: number[] = [];
    const encoder: number[] = [];
    // Alternate, so that a slow spell of the machine hits both sides.
    for (let i = 0; i < repeat; i++) {
      floor.push(await inChild('floor', c));
      encoder.push(await inChild('encoder', c));
    }
    // The ratio of each adjacent pair, then the median: a machine that gets
    // busier during the run moves both sides of a pair alike.
    const ratio = median(encoder.map((e, i) => e / (floor[i] as number)));
    const row = [c.name.padEnd(14), median(floor).toFixed(0).padStart(10), median(encoder).toFixed(0).padStart(12), ratio.toFixed(2).padStart(13)];
    console.log(row.join('   '));
  }
}

await main();
