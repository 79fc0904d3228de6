/**
 * Where a CPU profile's time went: self time per function, largest first,
 * as a share of the non-idle time, and the collapsed stacks a flame graph
 * is drawn from (one line per stack, frames joined by `;`, then the
 * microseconds: the input of flamegraph.pl, speedscope and inferno).
 *
 *   npx tsx bench/submit/profile-summary.ts PROFILE.cpuprofile [--top 30] [--folded FILE]
 *
 * PROFILE is what `node --cpu-prof` wrote (bench/submit/submit.bench.ts
 * --cpu-prof-dir DIR). Frames in a bundle with its source map beside it
 * (dist/mailsubmitd.mjs.map) are named by their source file and line. The profile samples the JavaScript thread by the
 * wall clock, so a system call that wakes another process also carries the
 * time the daemon then waited for a CPU.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';
import { option } from './timed-runs.ts';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number; readonly columnNumber: number };
  readonly children?: readonly number[];
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const IDLE = '(idle)';

/** The source maps of the bundles a profile names (a bundle with BUNDLE.map beside it), read once each. */
const sourceMaps = new Map<string, SourceMap | null>();

function sourceMapOf(url: string): SourceMap | null {
  if (!sourceMaps.has(url)) {
    const mapFile = url.startsWith('file://') ? `${fileURLToPath(url)}.map` : '';
    sourceMaps.set(url, mapFile !== '' && existsSync(mapFile) ? new SourceMap(JSON.parse(readFileSync(mapFile, 'utf8'))) : null);
  }
  return sourceMaps.get(url)!;
}

/** A frame's function and where it is: the original source file and line where the bundle's source map knows them. */
function frameName(node: ProfileNode): string {
  const { functionName, url, lineNumber, columnNumber } = node.callFrame;
  const name = functionName === '' ? '(anonymous)' : functionName;
  const entry = sourceMapOf(url)?.findEntry(lineNumber, columnNumber);
  if (entry !== undefined && 'originalSource' in entry) {
    // The map's sources are relative to the bundle's directory: "../src/flow.ts", "../../socket-addon/src/index.ts".
    return `${name} ${entry.originalSource.replace(/^(\.\.\/)+/, '')}:${entry.originalLine + 1}`;
  }
  const file = url.split('/').pop() ?? '';
  return `${name}${file === '' ? '' : ` ${file}:${lineNumber + 1}`}`;
}

function main(): void {
  const file = process.argv[2];
  if (file === undefined || file.startsWith('--')) {
    console.error('usage: profile-summary.ts PROFILE.cpuprofile [--top 30] [--folded FILE]');
    process.exit(64);
  }
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);

  // Microseconds per node: each sample's delta goes to the node it landed in.
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));

  let busyUs = 0;
  let idleUs = 0;
  const byFunction = new Map<string, number>();
  const folded: string[] = [];
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!;
    if (node.callFrame.functionName === IDLE) {
      idleUs += us;
      continue;
    }
    busyUs += us;
    const name = frameName(node);
    byFunction.set(name, (byFunction.get(name) ?? 0) + us);
    const stack: string[] = [];
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) stack.unshift(frameName(byId.get(at)!).replaceAll(';', ','));
    folded.push(`${stack.join(';')} ${us}`);
  }

  console.log(`non-idle ${(busyUs / 1000).toFixed(0)} ms, idle ${(idleUs / 1000).toFixed(0)} ms`);
  const top = [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, option('top', 30));
  for (const [name, us] of top) console.log(`${((100 * us) / busyUs).toFixed(1).padStart(5)} %  ${name}`);
  const foldedAt = process.argv.indexOf('--folded');
  if (foldedAt !== -1) writeFileSync(process.argv[foldedAt + 1]!, `${folded.join('\n')}\n`);
}

main();
