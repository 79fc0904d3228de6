/**
 * XFORWARD commands (Postfix XFORWARD_README) carrying the original client's
 * facts to the downstream MTA, so its logs and Received: header name the
 * real client and not this daemon.
 *
 * Rules followed:
 * - only attributes the server listed after XFORWARD in its EHLO reply;
 * - values are xtext (as Postfix 2.3 and later expect), each at most 255
 *   characters once encoded (Postfix's smtpd answers 501 to a longer one);
 * - ADDR of an IPv6 client is `IPV6:addr`, as Postfix writes it;
 * - SOURCE=REMOTE unless the caller says the message was submitted on
 *   this host (the sendmail door: SOURCE=LOCAL). SOURCE sets the rewrite
 *   context of Postfix's cleanup whatever local_header_rewrite_clients
 *   says (smtpd.c FORWARD_DOMAIN): LOCAL adds a missing Message-Id, Date
 *   and From and qualifies header addresses with myorigin, as for
 *   Postfix's own sendmail; REMOTE leaves the header section alone (with
 *   Postfix's default empty remote_header_rewrite_domain). Sent with or
 *   without client attributes: without any, the message is still not
 *   local mail;
 * - a command line stays within RFC 5321's 512 octets including CRLF: the
 *   attributes are packed in order into as many commands as needed, as the
 *   Postfix smtp client splits them over two commands.
 * IDENT is never sent: this daemon has no upstream queue id to forward.
 */
import type { ClientAttributes } from '../envelope/envelope.ts';
import { SubmissionError } from '../errors.ts';
import type { ServerCapabilities } from './capabilities.ts';
import { assertSafeCommandLine } from './command-line-safety.ts';
import { encodeXtext } from './xtext.ts';

export type XforwardSource = 'REMOTE' | 'LOCAL';

export interface XforwardOptions {
  /** LOCAL for a message submitted on this host (default REMOTE). */
  readonly source?: XforwardSource;
}

/** RFC 5321 section 4.5.3.1.4: 512 octets including the CRLF. */
export const MAX_XFORWARD_LINE_OCTETS = 510;
/** XFORWARD_README note 1; Postfix's smtpd enforces it on the encoded value. */
export const MAX_XFORWARD_VALUE_CHARACTERS = 255;

interface Attribute {
  readonly name: string;
  readonly value: string;
}

function attributeValue(name: string, attribute: string, value: string): Attribute {
  if (typeof value !== 'string') {
    throw new SubmissionError('envelope-syntax', 'value is not a string', { attribute });
  }
  let encoded: string;
  try {
    encoded = encodeXtext(value);
  } catch (err) {
    if (err instanceof SubmissionError) throw new SubmissionError(err.outcome, err.detail, { attribute });
    throw err;
  }
  if (encoded.length > MAX_XFORWARD_VALUE_CHARACTERS) {
    throw new SubmissionError(
      'envelope-syntax',
      `value is ${encoded.length} characters once xtext-encoded; XFORWARD allows ${MAX_XFORWARD_VALUE_CHARACTERS}`,
      { attribute },
    );
  }
  return { name, value: encoded };
}

function clientAttributes(client: ClientAttributes): { attributes: Attribute[] } {
  const attributes: Attribute[] = [];
  const add = (name: string, attribute: string, value: string | undefined): void => {
    if (value === undefined || value === '') return;
    attributes.push(attributeValue(name, attribute, value));
  };

  add('NAME', 'client_name', client.clientName);
  const address = client.clientAddress;
  if (address !== undefined) {
    if ((address.family !== 4 && address.family !== 6) || typeof address.address !== 'string') {
      throw new SubmissionError('envelope-syntax', 'not an IPv4 or IPv6 address', { attribute: 'client_address' });
    }
    add('ADDR', 'client_address', address.family === 6 ? `IPV6:${address.address}` : address.address);
  }
  const port = client.clientPort;
  if (port !== undefined) {
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new SubmissionError('envelope-syntax', 'port is not an integer in 0..65535', { attribute: 'client_port' });
    }
    add('PORT', 'client_port', String(port));
  }
  add('PROTO', 'protocol_name', client.protocolName);
  add('HELO', 'helo_name', client.heloName);
  return { attributes };
}

/**
 * The XFORWARD lines to send before MAIL FROM, in order; empty when the
 * server announces no XFORWARD or none of the attributes there are to send.
 */
export function xforwardCommands(
  client: ClientAttributes,
  caps: ServerCapabilities,
  options: XforwardOptions = {},
): string[] {
  if (caps.xforward.size === 0) return [];
  const { attributes } = clientAttributes(client);
  const source = options.source ?? 'REMOTE';
  if (source !== 'REMOTE' && source !== 'LOCAL') {
    throw new SubmissionError('envelope-syntax', 'XFORWARD SOURCE is neither REMOTE nor LOCAL');
  }
  attributes.push({ name: 'SOURCE', value: source });

  const lines: string[] = [];
  let line = '';
  for (const { name, value } of attributes) {
    if (!caps.xforward.has(name)) continue;
    const item = ` ${name}=${value}`;
    if (line !== '' && line.length + item.length > MAX_XFORWARD_LINE_OCTETS) {
      lines.push(line);
      line = '';
    }
    line = (line === '' ? 'XFORWARD' : line) + item;
  }
  if (line !== '') lines.push(line);
  for (const command of lines) assertSafeCommandLine(command);
  return lines;
}

/**
 * The client attributes the caller gave that the server cannot take with
 * XFORWARD, for the log's `omitted` list (as mail-command.ts lists DSN
 * parameters): `XFORWARD NAME (no XFORWARD)` when the server announces no
 * XFORWARD at all, `XFORWARD PORT (not announced)` when it lists XFORWARD
 * without that attribute. Exim and OpenSMTPD announce no XFORWARD.
 */
export function xforwardOmitted(client: ClientAttributes, caps: ServerCapabilities, options: XforwardOptions = {}): string[] {
  // Only which attributes were given matters here, not their encoding: a value
  // XFORWARD could not carry is no reason to refuse mail for a server without it.
  const given: readonly (readonly [string, unknown])[] = [
    ['NAME', client.clientName],
    ['ADDR', client.clientAddress],
    ['PORT', client.clientPort],
    ['PROTO', client.protocolName],
    ['HELO', client.heloName],
  ];
  const reason = caps.xforward.size === 0 ? 'no XFORWARD' : 'not announced';
  const omitted = given
    .filter(([name, value]) => value !== undefined && value !== '' && !caps.xforward.has(name))
    .map(([name]) => `XFORWARD ${name} (${reason})`);
  // Locally submitted mail the server cannot be told about: it completes the header as for any client.
  if (options.source === 'LOCAL' && !caps.xforward.has('SOURCE')) omitted.push(`XFORWARD SOURCE=LOCAL (${reason})`);
  return omitted;
}
