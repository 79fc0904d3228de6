/**
 * The control protocol between mailsubmitctl and mailsubmitd: one JSON
 * request line, one JSON reply line, then the daemon closes the connection.
 *
 *     -> {"command":"status"}
 *     <- {"protocol":1,"ok":true,"status":{...}}
 *     -> {"command":"reload"}
 *     <- {"protocol":1,"ok":true,"reload":{...}}
 *     -> {"command":"stats"}
 *     -> {"command":"queue-hold","id":"0TPLIWVCL8B-1A1BI"}
 *     <- {"protocol":1,"ok":true,"queue_action":{"command":"queue-hold","ids":["0TPLIWVCL8B-1A1BI"]}}
 *     -> {"command":"stats"}
 *     <- {"protocol":1,"ok":false,"error":"unknown command \"stats\" (known: status, reload, queue-list, ...)"}
 *
 * The queue commands (control/queue-control.ts) take an "id" where they act
 * on one message; a failed one says why in "reason", so mailsubmitctl can
 * tell an id the queue does not hold from a daemon without a queue.
 *
 * A request may carry "protocol": 1; a version this side does not know is
 * refused rather than guessed at. Both sides import this file, so the
 * shapes below are the one definition of the wire format.
 */

import { isQueueId } from '../5-transport/local-queue/queue-id.ts';
import type { QueuedMessageDetail, QueueListing, QueueSummary } from './queue-control.ts';

export const CONTROL_PROTOCOL = 1;
/** A request is a few dozen octets; anything long is not from mailsubmitctl. */
export const MAX_REQUEST_OCTETS = 4096;
/** Which queue commands need an id, may take one, or take none. */
const QUEUE_ID_ARGUMENT = {
  'queue-list': 'none',
  'queue-show': 'required',
  'queue-flush': 'optional',
  'queue-hold': 'required',
  'queue-release': 'required',
  'queue-delete': 'required',
  'queue-requeue': 'optional',
} as const;
export type QueueCommand = keyof typeof QUEUE_ID_ARGUMENT;
export const QUEUE_COMMANDS = Object.keys(QUEUE_ID_ARGUMENT) as QueueCommand[];
/** The queue commands that change the queue (and are logged as such). */
export type QueueActionCommand = Exclude<QueueCommand, 'queue-list' | 'queue-show'>;

export const CONTROL_COMMANDS = ['status', 'reload', ...QUEUE_COMMANDS] as const;
export type ControlCommand = 'status' | 'reload' | QueueCommand;

/** One request as the daemon understands it; `id` only for a queue command that takes one. */
export interface ControlRequest {
  readonly command: ControlCommand;
  readonly id?: string;
}

export interface StatusReport {
  readonly version: string;
  readonly pid: number;
  readonly config_path: string;
  readonly started_at: string;
  readonly uptime_s: number;
  readonly log_level: string;
  /** Submissions admitted and not yet answered. */
  readonly in_flight: number;
  readonly submissions: {
    readonly total: number;
    readonly by_outcome: Readonly<Record<string, number>>;
  };
  readonly downstream: {
    readonly description: string;
    /** False when the last submission that reached the MTA's side failed there. */
    readonly healthy: boolean;
    readonly last_success_at: string | null;
    readonly last_error: { readonly at: string; readonly outcome: string; readonly text: string } | null;
  };
  /** Each configured downstream, in the file's order (5-transport/downstream-member.ts). */
  readonly downstreams: readonly DownstreamStatus[];
  readonly authorization_list: {
    readonly path: string;
    readonly entries: number;
    readonly loaded_at: string | null;
    /** Why the file cannot be used (file:line: problem); every submission gets 75 until it is fixed. Null when the list is in force. */
    readonly invalid: string | null;
  };
  /** Totals of the local queue (`mailsubmitctl queue list` shows each message); null until it is open. */
  readonly local_queue: (QueueSummary & { readonly directory: string }) | null;
  /** The last few failed submissions of any kind, oldest first. */
  readonly last_errors: readonly { readonly at: string; readonly outcome: string; readonly text: string }[];
}

export interface DownstreamStatus {
  readonly name: string;
  readonly description: string;
  readonly priority: number;
  readonly weight: number;
  /** False from a failure of the way to it (connect, timeout, session, TLS, AUTH) until a probe or delivery gets through. */
  readonly healthy: boolean;
  readonly last_success_at: string | null;
  readonly last_error: { readonly at: string; readonly outcome: string; readonly text: string } | null;
}

export interface ReloadReport {
  readonly config: {
    readonly path: string;
    readonly reloaded: boolean;
    /** Why the file was not used; the running configuration stays in force. */
    readonly error: string | null;
    /** Keys whose new values are in force now. */
    readonly changed: readonly string[];
    /** Keys that changed in the file but take effect only after a restart. */
    readonly restart_required: readonly string[];
  };
  readonly authorization_list: {
    readonly path: string;
    readonly reloaded: boolean;
    /** Why the list cannot be used; every submission gets 75 until it is fixed. */
    readonly error: string | null;
    readonly entries: number;
    readonly loaded_at: string | null;
  };
}

/** queue-list: every message, oldest first, and the totals. */
export interface QueueListReport {
  readonly messages: readonly QueueListing[];
  readonly summary: QueueSummary;
}

/** What a queue command that changes the queue did: the ids it acted on (none: nothing to do). */
export interface QueueActionReport {
  readonly command: QueueActionCommand;
  readonly ids: readonly string[];
}

/**
 * Why a request failed, for the client's exit code: the queue does not hold
 * the id; the daemon runs without a local queue; the queue would not do it
 * now (a message under delivery); anything else.
 */
export type ControlFailureReason = 'unknown-id' | 'no-queue' | 'queue-refused' | 'failed';

export type ControlReply =
  | { readonly protocol: number; readonly ok: true; readonly status: StatusReport }
  | { readonly protocol: number; readonly ok: true; readonly reload: ReloadReport }
  | { readonly protocol: number; readonly ok: true; readonly queue_list: QueueListReport }
  | { readonly protocol: number; readonly ok: true; readonly queue_message: QueuedMessageDetail }
  | { readonly protocol: number; readonly ok: true; readonly queue_action: QueueActionReport }
  | { readonly protocol: number; readonly ok: false; readonly error: string; readonly reason?: ControlFailureReason };

export class ControlProtocolError extends Error {
  readonly code = 'ERR_CONTROL_PROTOCOL';
  override readonly name = 'ControlProtocolError';
}

/** One request line; throws ControlProtocolError saying what is wrong. */
export function parseRequest(line: string): ControlRequest {
  let request: unknown;
  try {
    request = JSON.parse(line);
  } catch {
    throw new ControlProtocolError('the request is not a JSON object');
  }
  if (typeof request !== 'object' || request === null || Array.isArray(request)) throw new ControlProtocolError('the request is not a JSON object');
  const { command, protocol, id } = request as Record<string, unknown>;
  if (protocol !== undefined && protocol !== CONTROL_PROTOCOL) {
    throw new ControlProtocolError(`protocol ${JSON.stringify(protocol)} is not known (this daemon speaks ${CONTROL_PROTOCOL})`);
  }
  if (typeof command !== 'string') throw new ControlProtocolError('the request has no "command" string');
  if (!(CONTROL_COMMANDS as readonly string[]).includes(command)) {
    throw new ControlProtocolError(`unknown command ${JSON.stringify(command.slice(0, 64))} (known: ${CONTROL_COMMANDS.join(', ')})`);
  }
  if (command === 'status' || command === 'reload') {
    if (id !== undefined) throw new ControlProtocolError(`${command} takes no "id"`);
    return { command };
  }
  return queueRequest(command as QueueCommand, id);
}

function queueRequest(command: QueueCommand, id: unknown): ControlRequest {
  const takes = QUEUE_ID_ARGUMENT[command];
  if (id === undefined) {
    if (takes === 'required') throw new ControlProtocolError(`${command} needs an "id"`);
    return { command };
  }
  if (takes === 'none') throw new ControlProtocolError(`${command} takes no "id"`);
  // Only what a queue id can be reaches the queue, or a log line: never a path, never a control character.
  if (typeof id !== 'string' || !isQueueId(id)) throw new ControlProtocolError(`${JSON.stringify(typeof id === 'string' ? id.slice(0, 64) : id)} is not a queue id`);
  return { command, id };
}

/** `id`: the queue id a queue command acts on, when it takes one. */
export function encodeRequest(command: ControlCommand, id?: string): string {
  return `${JSON.stringify({ protocol: CONTROL_PROTOCOL, command, ...(id === undefined ? {} : { id }) })}\n`;
}

export function encodeReply(reply: ControlReply): string {
  return `${JSON.stringify(reply)}\n`;
}

/** A reply line as the client reads it; throws ControlProtocolError when it is not one. */
export function parseReply(line: string): ControlReply {
  let reply: unknown;
  try {
    reply = JSON.parse(line);
  } catch {
    throw new ControlProtocolError('the daemon\'s reply is not JSON');
  }
  if (typeof reply !== 'object' || reply === null || typeof (reply as { ok?: unknown }).ok !== 'boolean') {
    throw new ControlProtocolError('the daemon\'s reply has no "ok"');
  }
  const { protocol } = reply as { protocol?: unknown };
  if (protocol !== CONTROL_PROTOCOL) throw new ControlProtocolError(`the daemon speaks control protocol ${JSON.stringify(protocol)}, not ${CONTROL_PROTOCOL}`);
  return reply as ControlReply;
}
