/**
 * `mailsubmitctl config check [FILE]`: would mailsubmitd start with this
 * configuration? The same checks, in the same order, with the daemon's own
 * code: nobody but root can write the file or any directory above it, the
 * file parses with every key known and valid, and the authorization list it
 * names is root-only too and parses. Prints `ok: ...` and exits 0, or prints
 * the daemon's message (naming the key or path, and the fix) and exits 78.
 */
import type { Command } from 'commander';
import { AuthorizationListError, EX_CONFIG } from '@mailsubmit/shared';
import { readEntries } from '../authorization-file.ts';
import { assertRootOnlyWritable, ConfigError, loadConfig, UnsafePathError } from '../daemon-modules.ts';
import { ExitError } from '../errors.ts';
import { configPath, type GlobalOptions } from '../options.ts';

export function registerConfig(program: Command): void {
  const config = program.command('config').description('the daemon\'s configuration file');
  config
    .command('check')
    .description('validate mailsubmit.conf (FILE, or the -c file) and the authorization list it names, as mailsubmitd would at start')
    .argument('[file]', 'configuration file; the -c file when absent')
    .action((file: string | undefined, _options: unknown, command: Command) => {
      const path = file ?? configPath(command.optsWithGlobals<GlobalOptions>());
      try {
        assertRootOnlyWritable(path);
        const loaded = loadConfig(path);
        assertRootOnlyWritable(loaded.authorizationList);
        const entries = readEntries(loaded.authorizationList).length;
        process.stdout.write(`ok: ${path}; authorization list ${loaded.authorizationList}, ${entries} ${entries === 1 ? 'entry' : 'entries'}\n`);
      } catch (err) {
        if (err instanceof ConfigError || err instanceof UnsafePathError || err instanceof AuthorizationListError) {
          throw new ExitError(err.message, EX_CONFIG);
        }
        throw err;
      }
    });
}
