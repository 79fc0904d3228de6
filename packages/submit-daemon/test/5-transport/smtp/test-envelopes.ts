/**
 * Envelopes and message sources for the transport tests, built directly from
 * the types (the envelope parser is tested elsewhere).
 */
import type { Address, Envelope, Recipient } from '@mailsubmit/shared';

export function address(text: string): Address {
  return { text, utf8: /[^\u0000-\u007f]/.test(text), unqualified: text !== '' && !text.includes('@') };
}

export function recipients(...texts: string[]): Recipient[] {
  return texts.map((text, i) => ({ address: address(text), line: i + 2 }));
}

export function envelope(extra: Partial<Envelope> = {}): Envelope {
  return {
    sender: address('sender@example.org'),
    recipients: recipients('rcpt@example.com'),
    client: {},
    sasl: {},
    tls: {},
    asserted: [],
    ...extra,
  };
}

/** A message source yielding `parts` as byte chunks. */
export async function* chunks(...parts: string[]): AsyncGenerator<Buffer> {
  for (const part of parts) yield Buffer.from(part);
}

/** Yields `parts`, then fails with `error` (as a validating source does half-way). */
export async function* failing(error: Error, ...parts: string[]): AsyncGenerator<Buffer> {
  for (const part of parts) yield Buffer.from(part);
  throw error;
}

export const MESSAGE = 'Subject: test\r\n\r\nHello.\r\n..dot-stuffed line\r\n';
