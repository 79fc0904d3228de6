/**
 * mailsubmitctl: the administrator's command line for mailsubmit.
 *
 * Exit codes follow sysexits(3) like the rest of mailsubmit: a bad command
 * line is 64, whatever the parser library would have chosen; a bad
 * configuration or authorization list is 78; a daemon that does not answer
 * is 75. -c names the daemon's configuration, from which the paths of the
 * authorization list and the control socket are taken.
 */
import { Command, CommanderError, Help } from 'commander';
import { AuthorizationListError, EX_CONFIG, EX_USAGE } from '@mailsubmit/shared';
import { ConfigError, UnsafePathError } from '@mailsubmit/submit-daemon/admin';
import { registerAuthorization } from './commands/authorization.ts';
import { registerCheck } from './commands/check.ts';
import { registerConfig } from './commands/config.ts';
import { registerDaemonControl } from './commands/daemon-control.ts';
import { registerQueue } from './commands/queue.ts';
import { registerValidate } from './commands/validate.ts';
import { ExitError, UsageError } from './errors.ts';
import { DEFAULT_AUTHORIZATION_LIST, DEFAULT_CONFIG_PATH } from './options.ts';

const program = new Command('mailsubmitctl')
  .description('administer mailsubmit: check submissions, the authorization list, the configuration and the daemon')
  .showHelpAfterError(false)
  .exitOverride()
  .option('-c, --config <file>', `the daemon's configuration, for the paths below (default ${DEFAULT_CONFIG_PATH}, when it exists)`)
  .option('--authorization-list <file>', `the authorization list (default: the configuration's, else ${DEFAULT_AUTHORIZATION_LIST})`)
  .configureOutput({ writeErr: (text) => process.stderr.write(text) });

registerValidate(program);
registerAuthorization(program);
registerCheck(program);
registerConfig(program);
registerDaemonControl(program);
registerQueue(program);

/*
 * `mailsubmitctl --help` lists every command an administrator can run, the
 * subcommands of a group (`config check`) included, not just the group's
 * name, which alone does nothing.
 */
program.configureHelp({
  visibleCommands(this: Help, cmd: Command): Command[] {
    const listed = Help.prototype.visibleCommands.call(this, cmd);
    if (cmd !== program) return listed;
    return listed.flatMap((c) => (c.commands.length > 0 ? Help.prototype.visibleCommands.call(this, c).filter((sub) => sub.name() !== 'help') : [c]));
  },
  subcommandTerm(this: Help, cmd: Command): string {
    let term = Help.prototype.subcommandTerm.call(this, cmd);
    for (let group = cmd.parent; group !== null && group !== program; group = group.parent) term = `${group.name()} ${term}`;
    return term;
  },
});

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) {
    // Help and version requests end with exit code 0 through this path too.
    process.exit(err.exitCode === 0 ? 0 : EX_USAGE);
  }
  process.stderr.write(`mailsubmitctl: ${err instanceof Error ? err.message : String(err)}\n`);
  if (err instanceof ExitError) process.exit(err.exitCode);
  if (err instanceof UsageError) process.exit(EX_USAGE);
  if (err instanceof AuthorizationListError || err instanceof ConfigError || err instanceof UnsafePathError) process.exit(EX_CONFIG);
  const code = (err as NodeJS.ErrnoException).code;
  process.exit(code === 'ENOENT' || code === 'EACCES' ? EX_CONFIG : 75);
});
