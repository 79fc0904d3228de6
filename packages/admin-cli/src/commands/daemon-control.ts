/**
 * `mailsubmitctl status` and `mailsubmitctl reload`: the running daemon, through
 * its control socket (daemon.control_socket in mailsubmit.conf, which -c
 * names). Both are for root: the socket is mode 0600.
 *
 * status: a readable summary, or the daemon's reply as it is with --json.
 * reload: what SIGHUP does (configuration and authorization list), then
 * what changed, what needs a restart, and what could not be used; exit 78
 * when something could not be used (the running configuration stays in
 * force; an authorization list that cannot be used gets every submission
 * 75 until it is fixed).
 *
 * Texts from the daemon can quote callers (an error naming a sender): they
 * are shown through escapeText, so no control or bidi character reaches the
 * terminal.
 */
import type { Command } from 'commander';
import { escapeText, EX_CONFIG } from '@mailsubmit/shared';
import type { ReloadReport, StatusReport } from '@mailsubmit/submit-daemon/admin';
import { controlRequest } from '../control-client.ts';
import { controlSocketPath, type GlobalOptions } from '../options.ts';

interface JsonOption {
  json?: boolean;
}

export function registerDaemonControl(program: Command): void {
  program
    .command('status')
    .description('show the running daemon: uptime, submissions in flight and by outcome, the MTA, the authorization list, the local queue')
    .option('--json', "print the daemon's status reply as JSON")
    .action(async (options: JsonOption, command: Command) => {
      const socket = controlSocketPath(command.optsWithGlobals<GlobalOptions>(), (problem) => {
        process.stderr.write(`mailsubmitctl: warning: ${problem} (mailsubmitd keeps its running configuration; a reload would refuse this file)\n`);
      });
      const reply = await controlRequest(socket, 'status');
      if (!('status' in reply)) throw new Error('the daemon answered status with something else');
      process.stdout.write(options.json ? `${jsonLine(reply.status)}\n` : formatStatus(reply.status));
    });

  program
    .command('reload')
    .description('make the daemon re-read its configuration and the authorization list (as SIGHUP does)')
    .option('--json', "print the daemon's reload reply as JSON")
    .action(async (options: JsonOption, command: Command) => {
      const reply = await controlRequest(controlSocketPath(command.optsWithGlobals<GlobalOptions>()), 'reload');
      if (!('reload' in reply)) throw new Error('the daemon answered reload with something else');
      const report = reply.reload;
      if (options.json) process.stdout.write(`${jsonLine(report)}\n`);
      else writeReload(report);
      if (!report.config.reloaded || !report.authorization_list.reloaded) process.exitCode = EX_CONFIG;
    });
}

function formatStatus(status: StatusReport): string {
  const { downstream, submissions, authorization_list: list } = status;
  const counts = Object.entries(submissions.by_outcome)
    .sort(([, a], [, b]) => b - a)
    .map(([outcome, n]) => `${outcome} ${n}`);
  const health = [
    downstream.healthy ? 'healthy' : 'FAILING',
    `last success ${downstream.last_success_at ?? 'never'}`,
    ...(downstream.last_error ? [`last error ${downstream.last_error.at} ${downstream.last_error.outcome}: ${escapeText(downstream.last_error.text)}`] : []),
  ];
  const lines = [
    `mailsubmitd ${status.version}, pid ${status.pid}, up ${formatDuration(status.uptime_s)} (since ${status.started_at})`,
    `configuration:      ${status.config_path} (log level ${status.log_level})`,
    list.invalid
      ? `authorization list: INVALID: ${escapeText(list.invalid)} (fix it; submissions get 75 until then)`
      : `authorization list: ${list.path}, ${list.entries} ${list.entries === 1 ? 'entry' : 'entries'}, loaded ${list.loaded_at ?? 'never'}`,
    `downstream:         ${status.downstreams.length > 1 ? `${status.downstreams.length} downstreams` : downstream.description}: ${health.join('; ')}`,
    ...(status.downstreams.length > 1 ? status.downstreams.map(formatDownstream) : []),
    `in flight:          ${status.in_flight}`,
    `submissions:        ${submissions.total}${counts.length > 0 ? ` (${counts.join(', ')})` : ''}`,
  ];
  if (status.local_queue !== null) lines.push(`local queue:        ${formatLocalQueue(status.local_queue)}`);
  if (status.last_errors.length > 0) {
    lines.push('last errors:');
    for (const e of status.last_errors) lines.push(`  ${e.at} ${e.outcome}: ${escapeText(e.text)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** One of several downstreams: `  relay (smtp relay.example.net:587), priority 2, weight 1: UNHEALTHY; last error ...`. */
function formatDownstream(d: StatusReport['downstreams'][number]): string {
  const health = [
    d.healthy ? 'healthy' : 'UNHEALTHY (probed until it answers)',
    `last success ${d.last_success_at ?? 'never'}`,
    ...(d.last_error ? [`last error ${d.last_error.at} ${d.last_error.outcome}: ${escapeText(d.last_error.text)}`] : []),
  ];
  return `  ${escapeText(d.name)} (${escapeText(d.description)}), priority ${d.priority}, weight ${d.weight}: ${health.join('; ')}`;
}

/** `/var/lib/mailsubmit/queue: 3 messages (1 held), 12 KB, oldest 5m 2s (mailsubmitctl queue list)`. */
function formatLocalQueue(queue: NonNullable<StatusReport['local_queue']>): string {
  if (queue.messages === 0) return `${queue.directory}: empty`;
  const held = queue.held > 0 ? ` (${queue.held} held)` : '';
  const age = queue.oldest_arrival === null ? '' : `, oldest ${formatDuration(Math.max(0, Math.floor((Date.now() - Date.parse(queue.oldest_arrival)) / 1000)))}`;
  return `${queue.directory}: ${queue.messages} ${queue.messages === 1 ? 'message' : 'messages'}${held}, ${Math.ceil(queue.octets / 1024)} KB${age} (mailsubmitctl queue list)`;
}

function writeReload(report: ReloadReport): void {
  const { config, authorization_list: list } = report;
  if (config.reloaded) {
    const changed = config.changed.length > 0 ? `changed: ${config.changed.join(', ')}` : 'nothing that applies changed';
    process.stdout.write(`configuration ${config.path}: reloaded; ${changed}\n`);
    if (config.restart_required.length > 0) {
      process.stdout.write(`  changed, but in force only after a restart: ${config.restart_required.join(', ')}\n`);
    }
  } else {
    process.stderr.write(`mailsubmitctl: configuration ${config.path} not reloaded, the running configuration stays in force: ${config.error ?? ''}\n`);
  }
  if (list.reloaded) {
    process.stdout.write(`authorization list ${list.path}: reloaded, ${list.entries} ${list.entries === 1 ? 'entry' : 'entries'}\n`);
  } else {
    process.stderr.write(`mailsubmitctl: authorization list INVALID: ${escapeText(list.error ?? list.path)} (fix it; submissions get 75 until then)\n`);
  }
}

/**
 * JSON as JSON.stringify writes it, with format characters and separators
 * (which it leaves raw) written as \\u escapes: the same value for a
 * program, nothing that reorders the line for a person.
 */
export function jsonLine(value: unknown): string {
  // Per UTF-16 unit: an astral format character (U+E0001) becomes its surrogate pair, as JSON writes it.
  const unit = (c: string, i: number): string => `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`;
  return JSON.stringify(value).replace(/[\p{Cf}\p{Zl}\p{Zp}\p{Cc}]/gu, (c) => (c.length === 2 ? unit(c, 0) + unit(c, 1) : unit(c, 0)));
}

export function formatDuration(seconds: number): string {
  const parts: string[] = [];
  for (const [unit, size] of [['d', 86_400], ['h', 3_600], ['m', 60]] as const) {
    if (seconds >= size || parts.length > 0) {
      parts.push(`${Math.floor(seconds / size)}${unit}`);
      seconds %= size;
    }
  }
  parts.push(`${seconds}s`);
  return parts.join(' ');
}
