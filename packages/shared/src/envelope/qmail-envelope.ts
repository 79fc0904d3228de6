/**
 * The qmail-queue(8) envelope: `F` sender NUL, then `T` recipient NUL for
 * each recipient, then one more NUL. It arrives on a second fd, separate
 * from the message, and is turned here into the same validated Envelope the
 * native envelope block produces, so everything after intake (capabilities,
 * delivery, logging) is shared.
 *
 * Addresses go through parseAddress, the one address validator: qmail's own
 * format admits any octet but NUL, and a CR, LF or space in an address must
 * never reach an SMTP command line. The TCP facts tcpserver leaves in the
 * environment (TCPREMOTEIP, TCPREMOTEHOST, TCPREMOTEPORT) become the client
 * attributes and count as asserted, so the caller's `client` capability
 * decides whether they may be used, exactly as for the native attributes.
 */
import { SubmissionError, type InputPosition } from '../errors.ts';
import { DEFAULT_LIMITS, type Limits } from '../limits.ts';
import { parseAddress } from './address.ts';
import { parseClientAddress } from './client-address.ts';
import type { ClientAttributes, Envelope, Recipient } from './envelope.ts';
import { parseClientName, parseClientPort } from './value-grammars.ts';

/** A qmail envelope is a few addresses; this bounds what is read before the message. */
export const MAX_QMAIL_ENVELOPE_OCTETS = 1024 * 1024;

/** The tcpserver environment values the helper forwards, as text. */
export interface QmailClientFacts {
  /** TCPREMOTEIP */
  readonly address?: string;
  /** TCPREMOTEHOST */
  readonly name?: string;
  /** TCPREMOTEPORT */
  readonly port?: string;
}

export interface QmailEnvelopeOptions {
  readonly limits?: Limits;
  readonly client?: QmailClientFacts;
  readonly maxOctets?: number;
}

const NUL = 0;
const F = 0x46;
const T = 0x54;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function syntax(detail: string, at: InputPosition = {}): never {
  throw new SubmissionError('envelope-syntax', `qmail-queue envelope: ${detail}`, at);
}

/** Parses a complete qmail-queue envelope; throws SubmissionError. */
export function parseQmailEnvelope(bytes: Uint8Array, options: QmailEnvelopeOptions = {}): Envelope {
  const limits = options.limits ?? DEFAULT_LIMITS;
  const maxOctets = options.maxOctets ?? MAX_QMAIL_ENVELOPE_OCTETS;
  if (bytes.byteLength > maxOctets) {
    throw new SubmissionError('over-limit', `qmail-queue envelope is longer than ${maxOctets} octets`);
  }
  if (bytes.byteLength === 0) syntax('empty: expected F sender NUL, T recipient NUL ..., and a final NUL');
  const fields = splitFields(bytes);
  const [first, ...rest] = fields;
  if (first === undefined || first.byteLength === 0 || first[0] !== F) syntax('must begin with F and the sender', { attribute: 'sender' });
  const senderText = decode(first.subarray(1), { attribute: 'sender' });
  const sender = parseAddress(senderText === '' ? '<>' : senderText, 'sender', { attribute: 'sender' });
  const recipients: Recipient[] = [];
  for (const [index, field] of rest.entries()) {
    const at: InputPosition = { attribute: 'recipient' };
    if (field.byteLength === 0 || field[0] !== T) syntax(`entry ${index + 2} does not begin with T`, at);
    if (recipients.length >= limits.maxRecipients) {
      throw new SubmissionError('over-limit', `more than ${limits.maxRecipients} recipients`, at);
    }
    const address = parseAddress(decode(field.subarray(1), at), 'recipient', at);
    recipients.push(Object.freeze({ address, line: index + 2 }));
  }
  if (recipients.length === 0) syntax('no recipients: at least one T entry is needed', { attribute: 'recipient' });
  const { client, asserted } = clientAttributes(options.client ?? {});
  return Object.freeze({
    sender,
    recipients: Object.freeze(recipients),
    client,
    sasl: Object.freeze({}),
    tls: Object.freeze({}),
    asserted: Object.freeze(['sender', 'recipient', ...asserted]),
  });
}

/** The NUL-terminated entries before the final NUL; refuses anything after it or a missing terminator. */
function splitFields(bytes: Uint8Array): Uint8Array[] {
  const fields: Uint8Array[] = [];
  let start = 0;
  for (;;) {
    const nul = bytes.indexOf(NUL, start);
    if (nul === -1) syntax(start === 0 ? 'no NUL terminator at all' : 'ends without the final NUL');
    if (nul === start) {
      if (nul !== bytes.byteLength - 1) syntax('octets after the final NUL');
      if (fields.length === 0) syntax('must begin with F and the sender', { attribute: 'sender' });
      return fields;
    }
    fields.push(bytes.subarray(start, nul));
    start = nul + 1;
  }
}

function decode(octets: Uint8Array, at: InputPosition): string {
  try {
    return utf8.decode(octets);
  } catch {
    return syntax('an address that is not valid UTF-8', at);
  }
}

function clientAttributes(facts: QmailClientFacts): { client: ClientAttributes; asserted: string[] } {
  const client: { -readonly [K in keyof ClientAttributes]: ClientAttributes[K] } = {};
  const asserted: string[] = [];
  if (facts.name !== undefined) {
    // qpsmtpd says "Unknown" where tcpserver leaves TCPREMOTEHOST unset: both mean no reverse name.
    const name = facts.name.toLowerCase() === 'unknown' ? 'unknown' : facts.name;
    client.clientName = parseClientName(name, { attribute: 'client_name' });
    asserted.push('client_name');
  }
  if (facts.address !== undefined) {
    client.clientAddress = parseClientAddress(facts.address, { attribute: 'client_address' });
    asserted.push('client_address');
  }
  if (facts.port !== undefined) {
    client.clientPort = parseClientPort(facts.port, { attribute: 'client_port' });
    asserted.push('client_port');
  }
  return { client: Object.freeze(client), asserted };
}
