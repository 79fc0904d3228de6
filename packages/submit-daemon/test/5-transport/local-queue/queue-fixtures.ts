/**
 * What the local queue's tests share: an envelope carrying every attribute
 * kind, caller facts, message bodies streamed in chunks, and a private
 * queue root per test.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEnvelopeBlock, type Envelope } from '@mailsubmit/shared';
import type { QueueEntry } from '../../../src/5-transport/local-queue/queue-file-format.ts';
import type { QueueLimits } from '../../../src/5-transport/local-queue/queue-limits.ts';

/** Client, SASL, TLS and DSN (per recipient and per message) attributes, UTF-8 addresses among them. */
export const FULL_ENVELOPE_BLOCK = [
  'sender: <alice@example.org>',
  'dsn-envelope-id: QQ314159',
  'dsn-return-option: headers',
  'size: 12345',
  'protocol_name: ESMTPSA',
  'helo_name: client.example.org',
  'client_name: client.example.org',
  'client_address: [ipv6:2001:db8::1]',
  'client_port: 54321',
  'sasl_method: plain',
  'sasl_username: älice',
  'sasl_sender: <owner@example.org>',
  'ccert_subject: solaris9.porcupine.org',
  'ccert_issuer: Wietse Venema',
  'ccert_fingerprint: C2:9D:F4:87:71:73:73:D9:18:E7:C2:F3:C1:DA:6E:04',
  'encryption_protocol: TLSv1.3',
  'encryption_cipher: TLS_AES_256_GCM_SHA384',
  'encryption_keysize: 256',
  'recipient: <bob@example.net>',
  'dsn-notify-options: failure,delay',
  'dsn-orig-rcpt: rfc822;bob@example.net',
  'recipient: <jörg@bücher.example>',
  'dsn-notify-options: never',
  'recipient: <carol@example.com>',
  'dsn-orig-rcpt: utf-8;carol@example.com',
  '',
  '',
].join('\n');

export const MINIMAL_ENVELOPE_BLOCK = 'sender: <>\nrecipient: <postmaster>\n\n';

export function entryFor(envelopeBlock: string, overrides: Partial<QueueEntry['caller']> = {}): QueueEntry {
  return {
    envelope: parseEnvelopeBlock(envelopeBlock),
    caller: { uid: 1000, user: 'alice', frontDoor: 'sendmail', arrivalTime: new Date('2026-12-05T23:30:13.123Z'), ...overrides },
    eightBit: true,
    localSubmission: true,
  };
}

/** The envelope without the line numbers, which say where a block put each recipient. */
export function withoutLines(envelope: Envelope): unknown {
  return { ...envelope, recipients: envelope.recipients.map(({ line: _line, ...rest }) => rest) };
}

export const NO_LIMITS: QueueLimits = { maxCount: 1_000_000, maxOctets: Number.MAX_SAFE_INTEGER, maxOctetsPerUid: Number.MAX_SAFE_INTEGER, minFree: 0 };

/** `total` octets of a repeating pattern of every octet value, in chunks of `chunk`. */
export async function* patternedBody(total: number, chunk = 64 * 1024): AsyncGenerator<Buffer> {
  for (let at = 0; at < total; at += chunk) {
    const size = Math.min(chunk, total - at);
    const out = Buffer.alloc(size);
    for (let i = 0; i < size; i++) out[i] = (at + i) % 251;
    yield out;
  }
}

export async function* chunksOf(...parts: (string | Buffer)[]): AsyncGenerator<Buffer> {
  for (const part of parts) yield typeof part === 'string' ? Buffer.from(part, 'utf8') : part;
}

export async function readAll(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part);
  return Buffer.concat(parts);
}

export async function privateRoot(): Promise<{ root: string; cleanup: () => Promise<void> }> {
  const parent = await mkdtemp(join(tmpdir(), 'local-queue-'));
  return { root: join(parent, 'queue'), cleanup: () => rm(parent, { recursive: true, force: true }) };
}
