/**
 * The envelope writer: an Envelope back to the native envelope block text.
 *
 * The other front doors (sendmail-style arguments, qmail-queue's fd 1) build
 * an Envelope and hand the daemon the same thing the native door would have
 * read; the property tests use it to check the parser against itself.
 *
 * Round trip: parseEnvelopeBlock(writeEnvelopeBlock(e)) deep-equals e except
 * for the `line` of each recipient, which tells where the written block put
 * it. `asserted` survives too: lines are written in the order that makes
 * each name first appear where `asserted` says (recipients keep their order,
 * and each one's DSN lines follow it). Names in `asserted` with no value are
 * skipped, and values whose name is missing from it are written after the
 * rest; either happens only for an envelope that no parse produced.
 *
 * Lines end in "\n"; the block ends with the empty line.
 */
import type { Address, Envelope, Recipient } from './envelope.ts';
import { SubmissionError } from '../errors.ts';
import { ATTRIBUTE_NAMES, type AttributeName, type PerRecipientName, type SingleName } from './attribute-names.ts';

type SingleValues = Partial<Record<SingleName, string>>;

function bracketed(address: Address): string {
  return `<${address.text}>`;
}

/** The written value of every single-valued attribute the envelope has. */
function singleValues(envelope: Envelope): SingleValues {
  const { client, sasl, tls } = envelope;
  const values: SingleValues = { sender: bracketed(envelope.sender) };
  const put = (name: SingleName, value: string | number | undefined): void => {
    if (value !== undefined) values[name] = String(value);
  };
  put('dsn-envelope-id', envelope.envelopeId);
  put('dsn-return-option', envelope.returnOption);
  put('size', envelope.size);
  put('protocol_name', client.protocolName);
  put('helo_name', client.heloName);
  put('client_name', client.clientName);
  if (client.clientAddress !== undefined) {
    const { family, address } = client.clientAddress;
    put('client_address', family === 4 ? `[${address}]` : `[ipv6:${address}]`);
  }
  put('client_port', client.clientPort);
  put('sasl_method', sasl.method);
  put('sasl_username', sasl.username);
  if (sasl.sender !== undefined) put('sasl_sender', bracketed(sasl.sender));
  put('ccert_subject', tls.ccertSubject);
  put('ccert_issuer', tls.ccertIssuer);
  put('ccert_fingerprint', tls.ccertFingerprint);
  put('encryption_protocol', tls.encryptionProtocol);
  put('encryption_cipher', tls.encryptionCipher);
  put('encryption_keysize', tls.encryptionKeysize);
  return values;
}

function perRecipientValue(recipient: Recipient, name: PerRecipientName): string | undefined {
  if (name === 'dsn-notify-options') return recipient.notify?.join(',');
  return recipient.orcpt === undefined ? undefined : `${recipient.orcpt.type};${recipient.orcpt.value}`;
}

/**
 * The recipient lines in order. Where one recipient carries both DSN
 * attributes and both first appear there, they follow the order of `asserted`.
 */
function recipientLines(envelope: Envelope, rank: (name: AttributeName) => number): [AttributeName, string][] {
  const lines: [AttributeName, string][] = [];
  for (const recipient of envelope.recipients) {
    lines.push(['recipient', bracketed(recipient.address)]);
    const names: PerRecipientName[] = ['dsn-notify-options', 'dsn-orig-rcpt'];
    names.sort((a, b) => rank(a) - rank(b));
    for (const name of names) {
      const value = perRecipientValue(recipient, name);
      if (value !== undefined) lines.push([name, value]);
    }
  }
  return lines;
}

export function writeEnvelopeBlock(envelope: Envelope): string {
  const order = new Map<AttributeName, number>(envelope.asserted.map((name, i) => [name as AttributeName, i]));
  const rank = (name: AttributeName): number => order.get(name) ?? Number.MAX_SAFE_INTEGER;
  const singles = singleValues(envelope);
  const stream = recipientLines(envelope, rank);
  const out: string[] = [];
  let next = 0;
  const emitStreamThrough = (name: AttributeName): void => {
    while (next < stream.length) {
      const [streamName, value] = stream[next++] as [AttributeName, string];
      out.push(line(streamName, value));
      if (streamName === name) return;
    }
  };
  const emitSingle = (name: SingleName): void => {
    const value = singles[name];
    if (value === undefined) return;
    out.push(line(name, value));
    delete singles[name];
  };
  for (const name of envelope.asserted) {
    if (name === 'recipient' || name === 'dsn-notify-options' || name === 'dsn-orig-rcpt') emitStreamThrough(name);
    else if ((ATTRIBUTE_NAMES as readonly string[]).includes(name)) emitSingle(name as SingleName);
  }
  for (const name of ATTRIBUTE_NAMES) {
    if (name !== 'recipient' && name !== 'dsn-notify-options' && name !== 'dsn-orig-rcpt') emitSingle(name);
  }
  for (const [name, value] of stream.slice(next)) out.push(line(name, value));
  return `${out.join('')}\n`;
}

/**
 * One attribute line. The envelope is trusted to be validated, but an
 * Envelope built by hand could hold a line end, which would let one value
 * become another attribute, or an empty or space-edged value, which would
 * read back as something else; these are refused instead.
 */
function line(name: AttributeName, value: string): string {
  if (value === '' || /[\u0000-\u001f\u007f]/.test(value) || value.startsWith(' ') || value.endsWith(' ')) {
    throw new SubmissionError('internal', `writeEnvelopeBlock: the value of ${name} is not valid for an envelope line`, {
      attribute: name,
    });
  }
  return `${name}: ${value}\n`;
}
