/**
 * What a reload (SIGHUP, `mailsubmitctl reload`) may change in a running
 * daemon, and what only a restart can: every key of mailsubmit.conf is in
 * one table below with the place its new value takes effect.
 *
 * Sockets, the install mode and the authorization list's path are fixed at
 * start: the listening sockets are bound then (and the daemon may no longer
 * have the right to bind them again), and the list's path is what every
 * helper has compiled in. The file-read semaphore is sized once.
 * Everything else applies to the next submission; submissions in progress
 * finish with the configuration they were admitted under.
 */
import type { DaemonConfig } from './daemon-config.ts';

/** next-submission: read per submission; downstream: the way to the MTA is rebuilt;
 *  log: the logger's level; restart: ignored until the daemon restarts. */
export type Effect = 'next-submission' | 'downstream' | 'log' | 'restart';

interface KeySpec {
  readonly key: string;
  readonly effect: Effect;
  readonly value: (config: DaemonConfig) => unknown;
}

const KEYS: readonly KeySpec[] = [
  { key: 'daemon.socket', effect: 'restart', value: (c) => c.socket.path },
  { key: 'daemon.socket_mode', effect: 'restart', value: (c) => c.socket.mode },
  { key: 'daemon.socket_group', effect: 'restart', value: (c) => c.socket.group },
  { key: 'daemon.install_mode', effect: 'restart', value: (c) => c.installMode },
  { key: 'daemon.authorization_list', effect: 'restart', value: (c) => c.authorizationList },
  { key: 'daemon.control_socket', effect: 'restart', value: (c) => c.control.path },
  { key: 'daemon.metrics_listen', effect: 'restart', value: (c) => c.metrics },
  { key: 'daemon.log_level', effect: 'log', value: (c) => c.log.level },
  // Checked (owner, mode) at start only: a reload must not switch to a directory nobody checked.
  { key: 'daemon.spool_directory', effect: 'restart', value: (c) => c.spoolDirectory },
  { key: 'downstream.transport', effect: 'downstream', value: (c) => c.downstream.transport },
  { key: 'downstream.target', effect: 'downstream', value: (c) => c.downstream.target },
  { key: 'downstream.helo_name', effect: 'downstream', value: (c) => c.downstream.heloName },
  { key: 'downstream.sendmail_path', effect: 'downstream', value: (c) => c.downstream.sendmailPath },
  { key: 'downstream.sendmail_config_directory', effect: 'downstream', value: (c) => c.downstream.sendmailConfigDirectory },
  { key: 'downstream.pool_size', effect: 'downstream', value: (c) => c.downstream.poolSize },
  { key: 'downstream.xforward', effect: 'downstream', value: (c) => c.downstream.xforward },
  { key: 'limits.max_message_size', effect: 'next-submission', value: (c) => c.limits.maxMessageOctets },
  { key: 'limits.max_line_length', effect: 'next-submission', value: (c) => c.limits.maxLineOctets },
  { key: 'limits.strict_message_syntax', effect: 'next-submission', value: (c) => c.limits.strictMessageSyntax },
  { key: 'limits.max_header_size', effect: 'next-submission', value: (c) => c.limits.maxHeaderOctets },
  { key: 'limits.max_recipients', effect: 'next-submission', value: (c) => c.limits.maxRecipients },
  { key: 'limits.max_envelope_size', effect: 'next-submission', value: (c) => c.limits.maxEnvelopeOctets },
  { key: 'limits.max_connections', effect: 'next-submission', value: (c) => c.limits.maxConnections },
  { key: 'limits.max_per_uid', effect: 'next-submission', value: (c) => c.limits.maxPerUid },
  { key: 'limits.max_file_reads', effect: 'restart', value: (c) => c.limits.maxFileReads },
  { key: 'limits.spool_quota_per_uid', effect: 'next-submission', value: (c) => c.limits.spoolQuotaPerUid },
  { key: 'limits.spool_quota_total', effect: 'next-submission', value: (c) => c.limits.spoolQuotaTotal },
  { key: 'limits.spool_min_free', effect: 'next-submission', value: (c) => c.limits.spoolMinFree },
  { key: 'timeouts.input', effect: 'next-submission', value: (c) => c.timeouts.input },
  { key: 'timeouts.input_idle', effect: 'next-submission', value: (c) => c.timeouts.inputIdle },
  { key: 'timeouts.connect', effect: 'downstream', value: (c) => c.timeouts.connect },
  { key: 'timeouts.command', effect: 'downstream', value: (c) => c.timeouts.command },
  { key: 'timeouts.data_block', effect: 'downstream', value: (c) => c.timeouts.dataBlock },
  { key: 'timeouts.data_end', effect: 'downstream', value: (c) => c.timeouts.dataEnd },
  { key: 'timeouts.sendmail', effect: 'downstream', value: (c) => c.timeouts.sendmail },
  { key: 'timeouts.shutdown', effect: 'next-submission', value: (c) => c.timeouts.shutdown },
];

/** Every configuration key a restart is needed for, for documentation and replies. */
export const RESTART_KEYS: readonly string[] = KEYS.filter((k) => k.effect === 'restart').map((k) => k.key);

export interface ConfigChange {
  readonly key: string;
  readonly effect: Effect;
}

/** The keys whose values differ between two configurations, in file order. */
export function changedKeys(before: DaemonConfig, after: DaemonConfig): ConfigChange[] {
  return KEYS.filter((spec) => JSON.stringify(spec.value(before)) !== JSON.stringify(spec.value(after))).map(({ key, effect }) => ({ key, effect }));
}

/**
 * The configuration a reload puts in force: the new file's values, except
 * for the keys only a restart can change, which keep the running values.
 */
export function reloadableMerge(running: DaemonConfig, next: DaemonConfig): DaemonConfig {
  return {
    ...next,
    source: running.source,
    socket: running.socket,
    installMode: running.installMode,
    authorizationList: running.authorizationList,
    control: running.control,
    metrics: running.metrics,
    spoolDirectory: running.spoolDirectory,
    limits: { ...next.limits, maxFileReads: running.limits.maxFileReads },
  };
}
