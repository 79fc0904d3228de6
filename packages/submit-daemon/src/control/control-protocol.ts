/**
 * The control protocol between mailsubmitctl and mailsubmitd: one JSON
 * request line, one JSON reply line, then the daemon closes the connection.
 *
 *     -> {"command":"status"}
 *     <- {"protocol":1,"ok":true,"status":{...}}
 *     -> {"command":"reload"}
 *     <- {"protocol":1,"ok":true,"reload":{...}}
 *     -> {"command":"stats"}
 *     <- {"protocol":1,"ok":false,"error":"unknown command \"stats\" (known: status, reload)"}
 *
 * A request may carry "protocol": 1; a version this side does not know is
 * refused rather than guessed at. Both sides import this file, so the
 * shapes below are the one definition of the wire format.
 */

export const CONTROL_PROTOCOL = 1;
/** A request is a few dozen octets; anything long is not from mailsubmitctl. */
export const MAX_REQUEST_OCTETS = 4096;
export const CONTROL_COMMANDS = ['status', 'reload'] as const;
export type ControlCommand = (typeof CONTROL_COMMANDS)[number];

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
  readonly authorization_list: {
    readonly path: string;
    readonly entries: number;
    readonly loaded_at: string | null;
    /** Why the file cannot be used (file:line: problem); every submission gets 75 until it is fixed. Null when the list is in force. */
    readonly invalid: string | null;
  };
  /** The last few failed submissions of any kind, oldest first. */
  readonly last_errors: readonly { readonly at: string; readonly outcome: string; readonly text: string }[];
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

export type ControlReply =
  | { readonly protocol: number; readonly ok: true; readonly status: StatusReport }
  | { readonly protocol: number; readonly ok: true; readonly reload: ReloadReport }
  | { readonly protocol: number; readonly ok: false; readonly error: string };

export class ControlProtocolError extends Error {
  readonly code = 'ERR_CONTROL_PROTOCOL';
  override readonly name = 'ControlProtocolError';
}

/** The command of one request line; throws ControlProtocolError saying what is wrong. */
export function parseRequest(line: string): ControlCommand {
  let request: unknown;
  try {
    request = JSON.parse(line);
  } catch {
    throw new ControlProtocolError('the request is not a JSON object');
  }
  if (typeof request !== 'object' || request === null || Array.isArray(request)) throw new ControlProtocolError('the request is not a JSON object');
  const { command, protocol } = request as Record<string, unknown>;
  if (protocol !== undefined && protocol !== CONTROL_PROTOCOL) {
    throw new ControlProtocolError(`protocol ${JSON.stringify(protocol)} is not known (this daemon speaks ${CONTROL_PROTOCOL})`);
  }
  if (typeof command !== 'string') throw new ControlProtocolError('the request has no "command" string');
  if (!(CONTROL_COMMANDS as readonly string[]).includes(command)) {
    throw new ControlProtocolError(`unknown command ${JSON.stringify(command.slice(0, 64))} (known: ${CONTROL_COMMANDS.join(', ')})`);
  }
  return command as ControlCommand;
}

export function encodeRequest(command: string): string {
  return `${JSON.stringify({ protocol: CONTROL_PROTOCOL, command })}\n`;
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
