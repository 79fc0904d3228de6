/**
 * mailsubmitctl: the administrator's command line for mailsubmit.
 *
 * Exit codes follow sysexits(3) like the rest of mailsubmit: a bad command
 * line is 64, whatever the parser library would have chosen.
 */
import { Command, CommanderError } from 'commander';
import { AuthorizationListError, EX_CONFIG, EX_USAGE } from '@mailsubmit/shared';
import { registerAuthorization } from './commands/authorization.ts';
import { registerValidate } from './commands/validate.ts';
import { UsageError } from './errors.ts';
import { DEFAULT_AUTHORIZATION_LIST } from './options.ts';

const program = new Command('mailsubmitctl')
  .description('administer mailsubmit: check submissions, the authorization list, the configuration and the daemon')
  .showHelpAfterError(false)
  .exitOverride()
  .option('--authorization-list <file>', `the authorization list (default ${DEFAULT_AUTHORIZATION_LIST})`)
  .configureOutput({ writeErr: (text) => process.stderr.write(text) });

registerValidate(program);
registerAuthorization(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) {
    // Help and version requests end with exit code 0 through this path too.
    process.exit(err.exitCode === 0 ? 0 : EX_USAGE);
  }
  process.stderr.write(`mailsubmitctl: ${err instanceof Error ? err.message : String(err)}\n`);
  if (err instanceof UsageError) process.exit(EX_USAGE);
  if (err instanceof AuthorizationListError) process.exit(EX_CONFIG);
  const code = (err as NodeJS.ErrnoException).code;
  process.exit(code === 'ENOENT' || code === 'EACCES' ? EX_CONFIG : 75);
});
