// Builds everything that runs: the socket addon (node-gyp), the set-gid
// helper (make, with the default installed paths), and every TypeScript
// command bundled into one file with esbuild, so that an installed copy needs
// nothing but Node.js. The daemon's bundle gets the addon beside it.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { copyFile, mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { build } from 'esbuild';

const run = (command, args, cwd) => execFileSync(command, args, { cwd, stdio: ['ignore', 'inherit', 'inherit'] });

/** True when `product` is missing or older than any of `sources` (files, or directories of them). */
function stale(product, sources) {
  if (!existsSync(product)) return true;
  const built = statSync(product).mtimeMs;
  const newest = (path) =>
    statSync(path).isDirectory() ? Math.max(0, ...readdirSync(path).map((f) => newest(join(path, f)))) : statSync(path).mtimeMs;
  return sources.some((source) => newest(source) > built);
}

const addon = 'packages/socket-addon/build/Release/socket_addon.node';
if (stale(addon, ['packages/socket-addon/src', 'packages/socket-addon/binding.gyp'])) {
  run('npm', ['run', '--silent', 'build'], 'packages/socket-addon');
}
if (stale('packages/submit-helper/build/mailsubmit', ['packages/submit-helper/src', 'packages/submit-helper/Makefile'])) {
  run('make', ['--no-print-directory', '-s'], 'packages/submit-helper');
}

const commands = [
  { entry: 'packages/admin-cli/src/main.ts', out: 'packages/admin-cli/dist/mailsubmitctl.cjs', format: 'cjs' },
  // ESM, so that the addon loader's import.meta.url points at the bundle.
  { entry: 'packages/submit-daemon/src/main.ts', out: 'packages/submit-daemon/dist/mailsubmitd.mjs', format: 'esm' },
];

for (const { entry, out, format } of commands) {
  // Written to a new file and renamed into place, so a daemon starting while
  // another build runs never reads a half-written bundle.
  const result = await build({
    write: false,
    entryPoints: [entry],
    outfile: out,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format,
    sourcemap: 'linked',
    legalComments: 'none',
    logLevel: 'warning',
    // pino and its friends use require(); give ESM bundles a real one. CommonJS has no
    // import.meta: give the addon loader the bundle's own URL so it finds the .node beside it.
    banner: format === 'esm'
      ? { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" }
      : { js: "const __bundleUrl = require('node:url').pathToFileURL(__filename).href;" },
    define: format === 'cjs' ? { 'import.meta.url': '__bundleUrl' } : {},
  });
  await mkdir(dirname(out), { recursive: true });
  for (const file of result.outputFiles) {
    const temporary = `${file.path}.${process.pid}.tmp`;
    await writeFile(temporary, file.contents, { mode: file.path.endsWith('.map') ? 0o644 : 0o755 });
    await rename(temporary, file.path);
  }
}
run(process.execPath, ['scripts/build-man.mjs'], '.');
await mkdir('packages/submit-daemon/dist', { recursive: true });

/**
 * Copies the addon beside a bundle by writing a new file and renaming it
 * into place. A copy over the old file would rewrite the inode that running
 * daemons have mapped (a test run's daemon, while another run builds): their
 * code changes under them and they die with SIGSEGV (seen). After a rename
 * they keep the old inode.
 */
async function replaceAddon(destination) {
  const temporary = `${destination}.${process.pid}.tmp`;
  await copyFile(addon, temporary);
  await rename(temporary, destination);
}
await replaceAddon('packages/submit-daemon/dist/socket_addon.node');
// mailsubmitctl check resolves users as the daemon does, through the addon (installed beside both bundles).
await replaceAddon('packages/admin-cli/dist/socket_addon.node');
