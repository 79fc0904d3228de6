/**
 * What the submission benches share: their command-line options, run-timed.c
 * (compiled once per run) and the samples it prints, and the figures and
 * tables made of them.
 */
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A positive integer option `--name N`, or the fallback. */
export function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  const value = at === -1 ? undefined : Number(process.argv[at + 1]);
  return value !== undefined && Number.isInteger(value) && value > 0 ? value : fallback;
}

/** A comma-separated list of positive integers `--name 1,8,32`, or the fallback. */
export function optionList(name: string, fallback: readonly number[]): number[] {
  const at = process.argv.indexOf(`--${name}`);
  const values = at === -1 ? [] : (process.argv[at + 1] ?? '').split(',').map(Number);
  return values.length > 0 && values.every((value) => Number.isInteger(value) && value > 0) ? values : [...fallback];
}

/** One run of a command: wall time and the CPU of it and its waited children, in microseconds. */
export interface Sample {
  readonly wallUs: number;
  readonly cpuUs: number;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The nearest-rank percentile (p in 0..100). */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export const fmt = (value: number, digits = 1): string => value.toFixed(digits);

export function table(header: readonly string[], rows: readonly string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  console.log(line(header));
  for (const row of rows) console.log(line(row));
}

/** A process's user+system CPU so far (/proc/PID/stat), in microseconds; with `thread`, that thread's alone (its main thread: the pid). */
export function processCpuUs(pid: number, thread?: number): number {
  const stat = readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / clockTicks();
}

/** A process's resident set now and at its peak (VmRSS, VmHWM in /proc/PID/status), in kB. */
export function processMemoryKb(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: field('VmRSS'), peak: field('VmHWM') };
}

/** Starts a process's peak resident set (VmHWM) again from its present size (clear_refs, Linux 4.0). */
export function resetPeakMemory(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

let ticks: number | undefined;

/** Clock ticks per second, the unit of /proc/PID/stat's CPU times. */
export function clockTicks(): number {
  ticks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  return ticks;
}

/** Compiles this folder's NAME.c into `dir`/NAME and returns the program's path. */
export function compileBenchProgram(dir: string, name: string): string {
  const program = join(dir, name);
  execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', program, join(import.meta.dirname, `${name}.c`)]);
  return program;
}

export interface TimedRuns {
  readonly n: number;
  readonly parallel: number;
  /** The file each run reads as its standard input. */
  readonly input: string;
  /** Who runs the command; root when absent. */
  readonly user?: { readonly uid: number; readonly gid: number };
  readonly command: readonly string[];
  /** Put before run-timed itself, e.g. to enter a mount namespace once for all runs. */
  readonly wrapper?: readonly string[];
}

/** Runs the command `n` times, `parallel` at a time; resolves with each run's times, throws if any run failed. */
export async function runTimed(runner: string, runs: TimedRuns): Promise<Sample[]> {
  const who = runs.user === undefined ? [] : ['-u', String(runs.user.uid), '-g', String(runs.user.gid)];
  const argv = [runner, '-n', String(runs.n), '-p', String(runs.parallel), '-i', runs.input, ...who, '--', ...runs.command];
  const [program, ...args] = [...(runs.wrapper ?? []), ...argv];
  const { stdout } = await run(program!, args, { maxBuffer: 64 * 1024 * 1024 });
  return stdout
    .trim()
    .split('\n')
    .map((line) => {
      const [wall, user, sys] = line.split(' ').map(Number);
      return { wallUs: wall!, cpuUs: user! + sys! };
    });
}
