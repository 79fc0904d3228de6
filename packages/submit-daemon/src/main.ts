/**
 * mailsubmitd: the daemon behind mailsubmit(1). Reads its configuration,
 * checks that nobody but root can change what it trusts, listens (the
 * submission socket, the control socket, the optional metrics endpoint), and
 * stops in order on SIGTERM. SIGHUP does what `mailsubmitctl reload` does:
 * re-reads the configuration's reloadable keys and the authorization list.
 *
 * Exit codes: 0 after an orderly stop, 78 when the configuration or the
 * installation is wrong (the message names the key or path and the fix;
 * this includes a control socket or metrics address it cannot listen on),
 * 75 for anything else that stops it from starting.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname } from 'node:path';
import { Command, CommanderError } from 'commander';
import { AuthorizationListError, EX_CONFIG, EX_TEMPFAIL, EX_USAGE } from '@mailsubmit/shared';
import { limitMallocArenas } from '@mailsubmit/socket-addon';
import { AuthSecretError } from './config/auth-secret.ts';
import type { DaemonConfig } from './config/daemon-config.ts';
import { assertConfigReadable, ConfigError, DEFAULT_CONFIG_PATH, loadConfig } from './config/load-config.ts';
import { ControlServer } from './control/control-server.ts';
import { Daemon } from './daemon.ts';
import { groupIdOf } from './2-authorize/user-database.ts';
import { createLogger, type Logger } from './logging/logger.ts';
import { MetricsServer } from './metrics/metrics-server.ts';
import { SubmissionMetrics } from './metrics/submission-metrics.ts';
import { registerDownstreamMetrics } from './metrics/downstream-metrics.ts';
import { registerLocalQueueMetrics } from './metrics/local-queue-metrics.ts';
import { closeInheritedFds } from './util/inherited-fds.ts';
import { takeSystemdSockets } from './1-accept/systemd-socket.ts';
import { assertRootOnlyWritable, UnsafePathError } from './util/safe-path.ts';
import { assertPrivateSpoolDirectory } from './config/spool-directory.ts';

// Node opens its inspector on SIGUSR1; anyone who can signal the daemon's
// uid could then run code as it. A listener of our own keeps it closed.
process.on('SIGUSR1', () => undefined);

// The submission socket, when systemd holds it (1-accept/systemd-socket.ts); more than one is not ours.
const passedSocket = takeSystemdSockets()[0] ?? null;
// Before anything of ours is opened: whatever the starter left open above fd 2 (util/inherited-fds.ts).
const inheritedClosed = closeInheritedFds(new Set(passedSocket === null ? [] : [passedSocket]));
// Before the thread pool starts: memory freed by one thread is reused by the others (socket-addon/src/malloc-arenas.c).
limitMallocArenas(1);


interface Options {
  config: string;
  pidFile?: string;
  pretty?: boolean;
  checkConfig?: boolean;
}

const program = new Command('mailsubmitd')
  .description('the mailsubmit daemon: authorizes, validates and streams submissions to the MTA')
  .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG_PATH)
  .option('--pid-file <file>', 'write the process id here while running')
  .option('--pretty', 'human-readable log lines instead of JSON')
  .option('--check-config', 'validate the configuration and exit')
  .exitOverride();

try {
  program.parse(process.argv);
} catch (err) {
  process.exit(err instanceof CommanderError && err.exitCode === 0 ? 0 : EX_USAGE);
}

const options = program.opts<Options>();

function fatal(code: number, message: string): never {
  process.stderr.write(`mailsubmitd: ${message}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  let config;
  try {
    assertConfigReadable(options.config);
    assertRootOnlyWritable(options.config);
    config = loadConfig(options.config);
    assertRootOnlyWritable(config.authorizationList);
    // Whoever can write the socket's directory can put their own socket in its place.
    assertRootOnlyWritable(dirname(config.socket.path), process.getuid?.() ?? null);
    // The daemon's own, 0700: held qmail-queue messages are nobody else's to read or fill.
    assertPrivateSpoolDirectory(config.spoolDirectory, process.geteuid?.() ?? 0, userInfo().username);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof UnsafePathError) fatal(EX_CONFIG, err.message);
    throw err;
  }
  if (config.installMode === 'setgid' && groupIdOf(config.socket.group) === null) {
    fatal(EX_CONFIG, `${config.source}: daemon.socket_group: group "${config.socket.group}" does not exist: create it (groupadd --system ${config.socket.group}) or name another group`);
  }
  if (options.checkConfig) {
    process.stdout.write(`${options.config}: ok\n`);
    return;
  }
  const log = createLogger({ level: config.log.level, pretty: options.pretty === true });
  if (inheritedClosed.length > 0) log.info({ fds: inheritedClosed.map(({ fd, target }) => `${fd}: ${target}`) }, 'closed descriptors inherited at start');
  let daemon: Daemon;
  try {
    daemon = new Daemon(config, log, passedSocket);
    await daemon.start();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    log.fatal({ err: message }, 'cannot start');
    log.flush();
    fatal(err instanceof AuthorizationListError || err instanceof UnsafePathError || err instanceof ConfigError || err instanceof AuthSecretError ? EX_CONFIG : EX_TEMPFAIL, message);
  }
  let services: AdminServices;
  try {
    services = await startAdminServices(daemon, config, log);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    log.fatal({ err: message }, 'cannot start');
    await daemon.stop(0);
    log.flush();
    fatal(EX_CONFIG, message);
  }
  if (options.pidFile) writeFileSync(options.pidFile, `${process.pid}\n`, { mode: 0o644 });

  process.on('SIGHUP', () => daemon.reload());
  const stop = (signal: string) => {
    log.info({ signal }, 'stop requested');
    // The control socket stays up during the grace period, so `mailsubmitctl status` shows the drain.
    void daemon.stop(daemon.currentConfig.timeouts.shutdown).then(async () => {
      await services.close();
      if (options.pidFile) rmSync(options.pidFile, { force: true });
      log.flush();
      process.exit(0);
    });
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  // Every submission ends in its own flow's reply (flow.ts catches all there); these are for
  // bugs outside any flow. An unhandled rejection is logged and the daemon goes on: no state is
  // known to be broken, and exiting would fail every submission in progress.
  process.on('unhandledRejection', (reason) => {
    log.error({ err: reason instanceof Error ? (reason.stack ?? reason.message) : String(reason) }, 'unhandled rejection');
  });
  // An exception thrown to the top leaves unknown state: stop accepting, let the submissions in
  // progress finish (or get 75 at the grace deadline) as on SIGTERM, then exit 75 for a restart.
  let dying = false;
  process.on('uncaughtException', (err) => {
    log.fatal({ err: err.stack ?? String(err) }, 'uncaught exception');
    if (dying) return;
    dying = true;
    void daemon
      .stop(daemon.currentConfig.timeouts.shutdown)
      .catch(() => undefined)
      .then(async () => {
        await services.close().catch(() => undefined);
        if (options.pidFile) rmSync(options.pidFile, { force: true });
        log.flush();
        process.exit(EX_TEMPFAIL);
      });
  });
}

interface AdminServices {
  close(): Promise<void>;
}

/** The control socket and, when configured, the metrics endpoint; a failure closes what was opened. */
async function startAdminServices(daemon: Daemon, config: DaemonConfig, log: Logger): Promise<AdminServices> {
  const control = new ControlServer(config.control.path, daemon, log, () => daemon.localQueue);
  await control.listen();
  let metricsServer: MetricsServer | null = null;
  if (config.metrics !== null) {
    const metrics = new SubmissionMetrics(() => daemon.status().in_flight);
    daemon.addObserver(metrics);
    registerLocalQueueMetrics(metrics.registry, () => daemon.localQueue?.figures() ?? null);
    registerDownstreamMetrics(metrics.registry, daemon.downstreamTallies, () => daemon.downstreamHealth);
    metricsServer = new MetricsServer(metrics, config.metrics, log);
    try {
      await metricsServer.listen();
    } catch (err) {
      await control.close();
      throw err;
    }
  }
  return {
    async close() {
      await metricsServer?.close();
      await control.close();
    },
  };
}

void main();
