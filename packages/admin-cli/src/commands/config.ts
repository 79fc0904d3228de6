/**
 * `mailsubmitctl config check [FILE]`: would mailsubmitd start with this
 * configuration? The same checks, in the same order, with the daemon's own
 * code: nobody but root can write the file or any directory above it, the
 * file parses with every key known and valid, and the authorization list it
 * names is root-only too and parses. Prints `ok: ...` and exits 0, or prints
 * the daemon's message (`FILE:LINE:` where a line is to blame, the key or
 * path, and the fix) and exits 78. After `ok:`, a `warning:` line for each
 * way around the daemon it finds (a downstream others can reach, a control
 * socket that is not 0600; see downstream-reach.ts) and for each path the
 * installed helper was built with that is not the configuration's (see
 * helper-paths.ts): the daemon would start, so the exit stays 0.
 * With --probe, then a block per downstream of what it offers
 * (downstream-offer-report.ts); exit 75 when one of them cannot take mail
 * as configured.
 */
import type { Command } from 'commander';
import { AuthorizationListError, EX_CONFIG, EX_TEMPFAIL } from '@mailsubmit/shared';
import { assertConfigReadable, assertRootOnlyWritable, AuthSecretError, ConfigError, loadConfig, readAuthSecret, UnsafePathError } from '@mailsubmit/submit-daemon/admin';
import { readEntries } from '../authorization-file.ts';
import { probeDownstreams } from '../downstream-offer-report.ts';
import { daemonAccount, reachFindings } from '../downstream-reach.ts';
import { ExitError } from '../errors.ts';
import { helperFindings, installedHelper } from '../helper-paths.ts';
import { configPath, type GlobalOptions } from '../options.ts';

export function registerConfig(program: Command): void {
  const config = program.command('config').description('the daemon\'s configuration file');
  config
    .command('check')
    .description('validate mailsubmit.conf (FILE, or the -c file) and the authorization list it names, as mailsubmitd would at start')
    .argument('[file]', 'configuration file; the -c file when absent')
    .option('--daemon-user <name>', 'the account mailsubmitd runs as (default: the owner of its socket, else mailsubmit)')
    .option('--helper <file>', 'the mailsubmit helper whose compiled-in paths must match (default: install.state\'s beside FILE, else mailsubmit on PATH)')
    .option('--probe', 'then connect to each downstream as the daemon would (TLS, AUTH, EHLO; no mail) and report what it offers and what mailsubmit loses there')
    .action(async (file: string | undefined, options: { daemonUser?: string; helper?: string; probe?: boolean }, command: Command) => {
      const path = file ?? configPath(command.optsWithGlobals<GlobalOptions>());
      try {
        assertConfigReadable(path);
        assertRootOnlyWritable(path);
        const loaded = loadConfig(path);
        assertRootOnlyWritable(loaded.authorizationList);
        const entries = readEntries(loaded.authorizationList).length;
        process.stdout.write(`ok: ${path}; authorization list ${loaded.authorizationList}, ${entries} ${entries === 1 ? 'entry' : 'entries'}\n`);
        const account = daemonAccount(loaded, options.daemonUser);
        // The daemon reads each AUTH secret at start as its own user: the same checks, for that user.
        const secrets = new Map(loaded.downstreams.map((d) => [d, d.authSecretFile === null ? null : readAuthSecret(d.authSecretFile, account ?? { uid: 0, name: 'root' })]));
        const findings = [...reachFindings(loaded, account), ...helperFindings(loaded, options.helper ?? installedHelper(path))];
        for (const line of findings) process.stdout.write(`${line}\n`);
        if (!options.probe) return;
        const report = await probeDownstreams(loaded, (d) => secrets.get(d) ?? null);
        process.stdout.write(report.text);
        if (report.unusable.length > 0) throw new ExitError(`cannot hand mail to ${report.unusable.map((n) => `"${n}"`).join(', ')} as configured (see above)`, EX_TEMPFAIL);
      } catch (err) {
        if (err instanceof ConfigError || err instanceof UnsafePathError || err instanceof AuthorizationListError || err instanceof AuthSecretError) {
          throw new ExitError(err.message, EX_CONFIG);
        }
        throw err;
      }
    });
}
