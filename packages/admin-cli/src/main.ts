/**
 * mailsubmitctl: the administrator's command line for mailsubmit.
 *
 * Exit codes follow sysexits(3) like the rest of mailsubmit: a bad command
 * line is 64, whatever the parser library would have chosen.
 */
import { Command, CommanderError } from 'commander';
import { EX_USAGE } from '@mailsubmit/shared';
import { registerValidate } from './commands/validate.ts';

const program = new Command('mailsubmitctl')
  .description('administer mailsubmit: check submissions, the authorization list, the configuration and the daemon')
  .showHelpAfterError(false)
  .exitOverride()
  .configureOutput({ writeErr: (text) => process.stderr.write(text) });

registerValidate(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) {
    // Help and version requests end with exit code 0 through this path too.
    process.exit(err.exitCode === 0 ? 0 : EX_USAGE);
  }
  process.stderr.write(`mailsubmitctl: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(75);
});
