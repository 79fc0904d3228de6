/**
 * Builds the bundled commands once before the tests, so a test of a command
 * always runs the code in the tree (esbuild takes well under a second).
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export default function setup(): void {
  execFileSync(process.execPath, [join(import.meta.dirname, '..', 'scripts', 'build.mjs')], { stdio: 'inherit' });
}
