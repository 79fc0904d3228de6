// Runs every benchmark under bench/ (files named *.bench.ts), one after the
// other, each in its own process (and each benchmark forks again per case).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = import.meta.dirname;
const only = process.argv[2];
let failed = 0;
for (const dir of readdirSync(root).sort()) {
  const path = join(root, dir);
  if (!statSync(path).isDirectory() || (only && dir !== only)) continue;
  for (const file of readdirSync(path).filter((f) => f.endsWith('.bench.ts')).sort()) {
    console.log(`\n== bench/${dir}/${file}`);
    const { status } = spawnSync(process.execPath, ['--import', 'tsx', join(path, file)], { stdio: 'inherit' });
    if (status !== 0) failed++;
  }
}
process.exit(failed === 0 ? 0 : 1);
