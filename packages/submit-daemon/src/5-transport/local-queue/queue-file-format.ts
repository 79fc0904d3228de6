/**
 * What one queue file holds, in the order it is written:
 *
 *   mailsubmit-queue-file 1          the format version, alone on the first line
 *   queue-id: 0TPLIWVCL8B-1A1BI
 *   caller-uid: 1000
 *   caller-user: alice               absent when the user database had no name
 *   front-door: sendmail
 *   arrival-time: 2026-12-05T23:30:13.123Z
 *   eight-bit: yes                   what the delivery request says (downstream.ts)
 *   local-submission: yes
 *                                    empty line: end of the facts
 *   sender: <alice@example.org>      the native envelope block (packages/shared's
 *   recipient: <bob@example.net>     writer), with its own empty line
 *
 *   ...message...                    the octets as they go to the MTA: SMTP DATA
 *                                    form (CRLF, dot-stuffed, no final dot)
 *   \nend-of-message 00000000000000012345\n    fixed-length trailer: the message's length
 *
 * The trailer is Postfix's END record in miniature: a file cut short (a file
 * system that lost data blocks after the rename survived) reads as damaged,
 * never as a shorter message. A reader that does not know the version on
 * the first line stops there and leaves the file alone.
 */
import { parseEnvelopeBlock, writeEnvelopeBlock, type Envelope, type Limits, DEFAULT_LIMITS } from '@mailsubmit/shared';

export const QUEUE_FILE_VERSION = 1;
const VERSION_LINE = /^mailsubmit-queue-file (\d{1,9})$/;

/** Who handed the message in, as the later delivery and its log need it. */
export interface CallerFacts {
  readonly uid: number;
  readonly user: string | null;
  /** The front door's name (3-intake/front-door.ts): native, sendmail, qmail-queue. */
  readonly frontDoor: string;
  readonly arrivalTime: Date;
}

/** Everything a delivery from the queue needs besides the message octets. */
export interface QueueEntry {
  readonly envelope: Envelope;
  readonly caller: CallerFacts;
  readonly eightBit: boolean;
  readonly localSubmission: boolean;
}

export interface QueueFileHead extends QueueEntry {
  readonly queueId: string;
  /** Offset of the first message octet in the file. */
  readonly messageOffset: number;
}

/** The file's version is not one this code reads: left alone, reported. */
export class UnknownQueueFileVersion extends Error {
  constructor(readonly firstLine: string) {
    super(`the queue file's first line is ${JSON.stringify(firstLine.slice(0, 80))}, not a version this mailsubmit reads (${QUEUE_FILE_VERSION})`);
    this.name = 'UnknownQueueFileVersion';
  }
}

/** A file of a known version that does not follow it: left alone, reported. */
export class DamagedQueueFile extends Error {
  constructor(problem: string) {
    super(`the queue file is damaged: ${problem}`);
    this.name = 'DamagedQueueFile';
  }
}

/**
 * Envelopes were validated under the limits of the day they were queued;
 * reading one back must not refuse it under smaller ones.
 */
const READ_BACK_LIMITS: Limits = { ...DEFAULT_LIMITS, maxRecipients: Number.MAX_SAFE_INTEGER, maxEnvelopeOctets: Number.MAX_SAFE_INTEGER };

export function writeQueueFileHead(queueId: string, entry: QueueEntry): Buffer {
  const { caller } = entry;
  const facts: [string, string | null][] = [
    ['queue-id', queueId],
    ['caller-uid', String(caller.uid)],
    ['caller-user', caller.user],
    ['front-door', caller.frontDoor],
    ['arrival-time', caller.arrivalTime.toISOString()],
    ['eight-bit', yesNo(entry.eightBit)],
    ['local-submission', yesNo(entry.localSubmission)],
  ];
  let text = `mailsubmit-queue-file ${QUEUE_FILE_VERSION}\n`;
  for (const [name, value] of facts) {
    if (value === null) continue;
    if (value === '' || /[\u0000-\u001f\u007f]/.test(value)) throw new Error(`the queue file fact ${name} cannot be written: ${JSON.stringify(value)}`);
    text += `${name}: ${value}\n`;
  }
  return Buffer.from(`${text}\n${writeEnvelopeBlock(entry.envelope)}`, 'utf8');
}

function yesNo(value: boolean): string {
  return value ? 'yes' : 'no';
}

const LF_LF = Buffer.from('\n\n');

/**
 * The head of a queue file from its first octets, or null when `bytes` does
 * not reach the envelope's empty line yet (read more). Throws
 * UnknownQueueFileVersion or DamagedQueueFile.
 */
export function parseQueueFileHead(bytes: Buffer): QueueFileHead | null {
  const firstLf = bytes.indexOf(0x0a);
  if (firstLf < 0) {
    if (bytes.length > 64) throw new UnknownQueueFileVersion(bytes.subarray(0, 64).toString('latin1'));
    return null;
  }
  const firstLine = bytes.subarray(0, firstLf).toString('latin1');
  const version = VERSION_LINE.exec(firstLine);
  if (version === null || Number(version[1]) !== QUEUE_FILE_VERSION) throw new UnknownQueueFileVersion(firstLine);
  const factsEnd = bytes.indexOf(LF_LF, firstLf);
  if (factsEnd < 0) return null;
  const envelopeStart = factsEnd + 2;
  const envelopeEnd = bytes.indexOf(LF_LF, envelopeStart);
  if (envelopeEnd < 0) return null;
  const facts = parseFacts(bytes.subarray(firstLf + 1, factsEnd + 1).toString('utf8'));
  let envelope: Envelope;
  try {
    envelope = parseEnvelopeBlock(bytes.subarray(envelopeStart, envelopeEnd + 2), READ_BACK_LIMITS);
  } catch (err) {
    throw new DamagedQueueFile(`its envelope does not parse (${(err as Error).message})`);
  }
  return { ...facts, envelope, messageOffset: envelopeEnd + 2 };
}

/** `name: value` lines (each ended by LF) into a map; the queue file's facts and the state sidecar use them. */
export function parseFactLines(lines: readonly string[]): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(': ');
    if (colon < 0) throw new DamagedQueueFile(`the line ${JSON.stringify(line)} has no value`);
    values.set(line.slice(0, colon), line.slice(colon + 2));
  }
  return values;
}

function parseFacts(text: string): Omit<QueueFileHead, 'envelope' | 'messageOffset'> {
  const values = parseFactLines(text.split('\n').slice(0, -1));
  const need = (name: string): string => {
    const value = values.get(name);
    if (value === undefined) throw new DamagedQueueFile(`it has no ${name} line`);
    return value;
  };
  const flag = (name: string): boolean => {
    const value = need(name);
    if (value !== 'yes' && value !== 'no') throw new DamagedQueueFile(`${name} is ${JSON.stringify(value)}, not yes or no`);
    return value === 'yes';
  };
  const uid = Number(need('caller-uid'));
  const arrivalTime = new Date(need('arrival-time'));
  if (!Number.isSafeInteger(uid) || uid < 0) throw new DamagedQueueFile(`caller-uid is not a uid`);
  if (Number.isNaN(arrivalTime.getTime())) throw new DamagedQueueFile(`arrival-time is not a time`);
  return {
    queueId: need('queue-id'),
    caller: { uid, user: values.get('caller-user') ?? null, frontDoor: need('front-door'), arrivalTime },
    eightBit: flag('eight-bit'),
    localSubmission: flag('local-submission'),
  };
}

const TRAILER_WORD = '\nend-of-message ';
const TRAILER_DIGITS = 20;
export const TRAILER_OCTETS = TRAILER_WORD.length + TRAILER_DIGITS + 1;
const TRAILER = /^\nend-of-message (\d{20})\n$/;

export function writeTrailer(messageOctets: number): Buffer {
  return Buffer.from(`${TRAILER_WORD}${String(messageOctets).padStart(TRAILER_DIGITS, '0')}\n`, 'latin1');
}

/** The message length the trailer states, or null when the last octets are not a trailer. */
export function parseTrailer(bytes: Buffer): number | null {
  const match = TRAILER.exec(bytes.toString('latin1'));
  return match === null ? null : Number(match[1]);
}
