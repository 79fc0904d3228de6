/**
 * `mailsubmitctl queue ...`: the daemon's local queue (the messages the MTA
 * could not take yet), through the control socket, as root. The daemon's
 * queue runner does the work and logs each change; this side checks the id,
 * asks, and prints.
 *
 * `queue list` prints what Postfix's mailq prints, in its layout, so an
 * administrator's eye (and a script written for mailq) finds the same
 * columns: id with `*` (being delivered) or `!` (held), size, arrival time,
 * sender (MAILER-DAEMON for the null sender), the last error in parentheses,
 * the recipients, and the `-- N Kbytes in M Requests.` line.
 *
 * Exit codes beyond the control client's (control-client.ts): an id the
 * queue does not hold 66, a daemon without a local queue 69, an id that is
 * not one, or a delete nobody confirmed, 64.
 */
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { escapeText } from '@mailsubmit/shared';
import { isQueueId, type ControlCommand, type QueueActionReport, type QueuedMessageDetail, type QueueListing, type QueueListReport } from '@mailsubmit/submit-daemon/admin';
import { controlRequest, type ControlSuccess } from '../control-client.ts';
import { UsageError } from '../errors.ts';
import { controlSocketPath, type GlobalOptions } from '../options.ts';
import { formatDuration, jsonLine } from './daemon-control.ts';

interface JsonOption {
  json?: boolean;
}

export function registerQueue(program: Command): void {
  const queue = program.command('queue').description('the local queue: messages the MTA could not take yet');

  queue
    .command('list')
    .description('list the queued messages as mailq does: id, size, arrival, sender, last error, recipients')
    .option('--json', 'print every message and the totals as JSON')
    .action(async (options: JsonOption, command: Command) => {
      const { queue_list: listing } = partOf(await ask(command, 'queue-list'), 'queue_list');
      process.stdout.write(options.json ? `${jsonLine(listing)}\n` : formatListing(listing));
    });

  queue
    .command('show')
    .description('show one queued message: its state, envelope and text')
    .argument('<id>', 'queue id, as queue list prints it')
    .option('--json', "print the daemon's reply as JSON")
    .action(async (id: string, options: JsonOption, command: Command) => {
      const { queue_message: detail } = partOf(await ask(command, 'queue-show', queueId(id)), 'queue_message');
      process.stdout.write(options.json ? `${jsonLine(detail)}\n` : formatDetail(detail));
    });

  queue
    .command('flush')
    .description('attempt delivery now: of one message, or of every message not held')
    .argument('[id]', 'queue id; every message not held when absent')
    .action(async (id: string | undefined, _options: unknown, command: Command) => {
      await act(command, 'queue-flush', id === undefined ? undefined : queueId(id));
    });

  for (const [name, description] of [
    ['hold', 'keep a message out of delivery until it is released'],
    ['release', 'end the hold of a message; it is attempted at once'],
  ] as const) {
    queue
      .command(name)
      .description(description)
      .argument('<id>', 'queue id')
      .action(async (id: string, _options: unknown, command: Command) => {
        await act(command, `queue-${name}`, queueId(id));
      });
  }

  queue
    .command('delete')
    .description('remove a message without delivering it and without telling its sender')
    .argument('<id>', 'queue id')
    .option('--yes', 'do not ask for confirmation (needed when standard input is not a terminal)')
    .action(async (id: string, options: { yes?: boolean }, command: Command) => {
      const checked = queueId(id);
      if (!options.yes && !(await confirmed(`delete ${checked}? [y/N] `))) {
        process.stdout.write(`not deleted: ${checked}\n`);
        return;
      }
      await act(command, 'queue-delete', checked);
    });

  queue
    .command('requeue')
    .description('forget the retry history (attempts, last error) of one message, or of every message not held, and attempt it now')
    .argument('[id]', 'queue id; every message not held when absent')
    .action(async (id: string | undefined, _options: unknown, command: Command) => {
      await act(command, 'queue-requeue', id === undefined ? undefined : queueId(id));
    });
}

/** An id as the daemon would take it, or a usage error before anything is asked. */
function queueId(id: string): string {
  if (!isQueueId(id)) throw new UsageError(`not a queue id: ${escapeText(id)} (queue list prints them, such as 0TPLIWVCL8B-1A1BI)`);
  return id;
}

function ask(command: Command, request: ControlCommand, id?: string): Promise<ControlSuccess> {
  return controlRequest(controlSocketPath(command.optsWithGlobals<GlobalOptions>()), request, id);
}

/** The reply's part `key`, or an error saying the daemon answered something else. */
function partOf<K extends 'queue_list' | 'queue_message' | 'queue_action'>(reply: ControlSuccess, key: K): Extract<ControlSuccess, Record<K, unknown>> {
  if (!(key in reply)) throw new Error(`the daemon answered with something other than ${key}`);
  return reply as Extract<ControlSuccess, Record<K, unknown>>;
}

const DONE: Readonly<Record<QueueActionReport['command'], string>> = {
  'queue-flush': 'flushed',
  'queue-hold': 'held',
  'queue-release': 'released',
  'queue-delete': 'deleted',
  'queue-requeue': 'requeued',
};

/** Asks for a change and prints one line per message it changed (`held: ID`). */
async function act(command: Command, request: QueueActionReport['command'], id: string | undefined): Promise<void> {
  const { queue_action: report } = partOf(await ask(command, request, id), 'queue_action');
  const done = DONE[report.command];
  if (report.ids.length === 0) process.stdout.write(`nothing to ${request.slice('queue-'.length)}: every message is held, or the queue is empty\n`);
  for (const changed of report.ids) process.stdout.write(`${done}: ${changed}\n`);
}

/** Asks on the terminal; without one there is nobody to ask, which is a usage error (64) naming --yes. */
async function confirmed(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) throw new UsageError(`${question.split('?')[0] as string}: standard input is not a terminal to confirm on; add --yes`);
  const terminal = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await terminal.question(question)).trim());
  } finally {
    terminal.close();
  }
}

const HEADER = ['-Queue ID-', '--Size--', '----Arrival Time----', '-Sender/Recipient-'];
const MARK: Readonly<Record<QueueListing['state'], string>> = { active: '*', held: '!', deferred: ' ', due: ' ' };

/** mailq's layout: a message is its first line, its last error, its recipients and an empty line. */
function formatListing({ messages, summary }: QueueListReport): string {
  if (messages.length === 0) return 'Mail queue is empty\n';
  const idWidth = Math.max(HEADER[0]?.length as number, ...messages.map((m) => m.id.length));
  const indent = ' '.repeat(idWidth + 1 + 1 + 8 + 1 + 20 + 1);
  const lines = [`${(HEADER[0] as string).padEnd(idWidth + 2)}${HEADER.slice(1).join(' ')}`];
  for (const m of messages) {
    const sender = m.sender === '' ? 'MAILER-DAEMON' : escapeText(m.sender);
    lines.push(`${m.id.padEnd(idWidth)}${MARK[m.state]} ${String(m.size).padStart(8)} ${arrivalTime(m.arrival_time).padEnd(20)} ${sender}`);
    if (m.last_error !== null) lines.push(`(${escapeText(m.last_error)})`);
    for (const recipient of m.recipients) lines.push(`${indent}${escapeText(recipient)}`);
    lines.push('');
  }
  const requests = summary.messages === 1 ? 'Request' : 'Requests';
  lines.push(`-- ${Math.floor(summary.octets / 1024)} Kbytes in ${summary.messages} ${requests}.`);
  return `${lines.join('\n')}\n`;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** As mailq writes it, in local time: `Sun Dec  6 10:00:00`. */
function arrivalTime(iso: string): string {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return escapeText(iso);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${DAYS[t.getDay()]} ${MONTHS[t.getMonth()]} ${String(t.getDate()).padStart(2)} ${two(t.getHours())}:${two(t.getMinutes())}:${two(t.getSeconds())}`;
}

function formatDetail({ listing: m, envelope, message, truncated }: QueuedMessageDetail): string {
  const caller = `uid ${m.caller_uid}${m.caller_user === null ? '' : ` (${escapeText(m.caller_user)})`}`;
  const lines = [
    `queue id:   ${m.id} (${m.state})`,
    `arrival:    ${escapeText(m.arrival_time)}, ${formatDuration(Math.max(0, Math.round(m.age_s)))} ago`,
    `size:       ${m.size} octets`,
    `caller:     ${caller}, ${escapeText(m.front_door)} front door`,
    `attempts:   ${m.attempts}${m.next_attempt === null ? '' : `, next ${escapeText(m.next_attempt)}`}`,
    ...(m.last_error === null ? [] : [`last error: ${escapeText(m.last_error)}`]),
    '',
    ...envelope.map(escapeText),
    '',
    // Line by line, tabs kept (folded headers): nothing in the message may steer the terminal.
    ...message.replace(/\n$/, '').split('\n').map((line) => line.split('\t').map(escapeText).join('\t')),
  ];
  if (truncated) lines.push(`[the rest of the message is not shown; ${m.size} octets in all]`);
  return `${lines.join('\n')}\n`;
}
