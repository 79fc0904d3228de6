// Builds every command of the tree into a single bundled file with esbuild.
// Commands are bundled so that an installed copy needs nothing but Node.
import { build } from 'esbuild';
import { chmod } from 'node:fs/promises';

const commands = [
  { entry: 'packages/admin-cli/src/main.ts', out: 'packages/admin-cli/dist/mailsubmitctl.cjs' },
];

for (const { entry, out } of commands) {
  await build({
    entryPoints: [entry],
    outfile: out,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    sourcemap: 'linked',
    legalComments: 'none',
    logLevel: 'warning',
  });
  await chmod(out, 0o755);
}
