/**
 * Envelope objects for the encoder tests, built directly from the types so
 * the tests do not depend on the envelope parser (and can hand the builders
 * values the parser would never let through).
 */
import type { Address, ClientAttributes, Envelope, Recipient } from '../../src/envelope/envelope.ts';
import { NO_CAPABILITIES, type ServerCapabilities } from '../../src/smtp/capabilities.ts';

const NON_ASCII = /[^\u0000-\u007f]/;

export function address(text: string): Address {
  return { text, utf8: NON_ASCII.test(text), unqualified: text !== '' && !text.includes('@') };
}

export function recipient(text: string, extra: Partial<Omit<Recipient, 'address'>> = {}): Recipient {
  return { address: address(text), line: 2, ...extra };
}

export function envelope(extra: Partial<Envelope> = {}): Envelope {
  return {
    sender: address('sender@example.org'),
    recipients: [recipient('rcpt@example.com')],
    client: {},
    sasl: {},
    tls: {},
    asserted: [],
    ...extra,
  };
}

export function client(extra: ClientAttributes): ClientAttributes {
  return extra;
}

/** Everything Postfix's re-injection listener announces. */
export const ALL_CAPABILITIES: ServerCapabilities = Object.freeze({
  pipelining: true,
  size: 10_240_000,
  eightBitMime: true,
  smtpUtf8: true,
  dsn: true,
  enhancedStatusCodes: true,
  chunking: true,
  xforward: new Set(['NAME', 'ADDR', 'PROTO', 'HELO', 'SOURCE', 'PORT', 'IDENT']),
  auth: new Set<string>(),
});

export function capabilities(extra: Partial<ServerCapabilities> = {}): ServerCapabilities {
  return { ...NO_CAPABILITIES, ...extra };
}
