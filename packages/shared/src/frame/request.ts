/**
 * The request frame, helper to daemon: the front door the helper was started
 * as, its argv, and for the qmail-queue mode a few environment values. The fds
 * travel beside it as SCM_RIGHTS, never inside it.
 *
 *   header (8)  length u32  mode u8  flags u8  envc u16  argc u32
 *   argc x { length u32, octets }                  argv[0] first, as the caller gave it
 *   envc x { length u8, name, length u16, value }  names unique
 *
 * `length` is the whole frame's, header included. On the socket the frame is
 * cut into packets of MAX_PACKET_OCTETS (requestPackets), the fds with the
 * first; the receiver reads the length from the first packet
 * (requestLengthOf) and joins packets until it has that many octets.
 *
 * Arguments are octets, not text: argv on Unix is bytes, and deciding what a
 * non-UTF-8 argument means is the daemon's job, with a proper usage error.
 */
import { ByteBuilder } from './byte-builder.ts';
import {
  FRAME_HEADER_OCTETS,
  KIND_REQUEST,
  MAX_ENV_ENTRIES,
  MAX_ENV_NAME_OCTETS,
  MAX_ENV_VALUE_OCTETS,
  MAX_FRAME_OCTETS,
  MAX_PACKET_OCTETS,
  MODE_NATIVE,
  MODE_QMAIL_QUEUE,
  MODE_SENDMAIL,
  REQUEST_FIXED_OCTETS,
  REQUEST_FLAGS_KNOWN,
  REQUEST_LENGTH_OFFSET,
  REQUEST_MODE_OFFSET,
} from './constants.ts';
import type { RequestMode } from './constants.ts';
import { FrameError } from './frame-error.ts';
import { readHeader, writeHeader } from './header.ts';

export interface EnvEntry {
  /** `[A-Za-z_][A-Za-z0-9_]*`, at most MAX_ENV_NAME_OCTETS. */
  readonly name: string;
  /** Octets without NUL, at most MAX_ENV_VALUE_OCTETS. */
  readonly value: Uint8Array;
}

export interface FrameRequest {
  readonly mode: RequestMode;
  /** REQUEST_FLAG_* bits. */
  readonly flags: number;
  /** Each argument without NUL. */
  readonly argv: readonly Uint8Array[];
  readonly env: readonly EnvEntry[];
}

/** What encodeRequest takes: strings are encoded as UTF-8. */
export interface RequestInput {
  readonly mode: RequestMode;
  readonly flags?: number;
  readonly argv: readonly (string | Uint8Array)[];
  readonly env?: readonly { readonly name: string; readonly value: string | Uint8Array }[];
}

const MODES: ReadonlySet<number> = new Set([MODE_NATIVE, MODE_SENDMAIL, MODE_QMAIL_QUEUE]);
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const encoder = new TextEncoder();

export function isRequestMode(value: unknown): value is RequestMode {
  return typeof value === 'number' && MODES.has(value);
}

export function encodeRequest(input: RequestInput): Uint8Array {
  const { mode } = input;
  const flags = input.flags ?? 0;
  if (!isRequestMode(mode)) throw new FrameError('ERR_FRAME_MODE', `unknown request mode ${String(mode)}`);
  if (!Number.isInteger(flags) || (flags & ~REQUEST_FLAGS_KNOWN) !== 0 || flags < 0) {
    throw new FrameError('ERR_FRAME_RESERVED', `unknown request flags ${String(flags)}`);
  }
  const argv = input.argv.map(toOctets);
  const env = (input.env ?? []).map(({ name, value }) => ({ name, value: toOctets(value) }));
  if (env.length > MAX_ENV_ENTRIES) {
    throw new FrameError('ERR_FRAME_LIMIT', `${env.length} environment entries, the limit is ${MAX_ENV_ENTRIES}`);
  }
  let length = REQUEST_FIXED_OCTETS;
  for (const [index, arg] of argv.entries()) {
    checkNoNul(arg, `argument ${index}`);
    length += 4 + arg.byteLength;
  }
  const names = new Set<string>();
  for (const { name, value } of env) {
    checkEnvName(name, names);
    checkEnvValue(value, name);
    length += 1 + name.length + 2 + value.byteLength;
  }
  if (length > MAX_FRAME_OCTETS) {
    throw new FrameError('ERR_FRAME_TOO_LARGE', `request of ${length} octets, the limit is ${MAX_FRAME_OCTETS}`);
  }
  const builder = new ByteBuilder(length);
  writeHeader(builder, KIND_REQUEST);
  builder.u32(length).u8(mode).u8(flags).u16(env.length).u32(argv.length);
  for (const arg of argv) builder.u32(arg.byteLength).put(arg);
  for (const { name, value } of env) builder.u8(name.length).put(encoder.encode(name)).u16(value.byteLength).put(value);
  return builder.finish();
}

export function decodeRequest(bytes: Uint8Array): FrameRequest {
  const cursor = readHeader(bytes, KIND_REQUEST);
  const length = cursor.u32('the request length');
  if (length > bytes.byteLength) {
    throw new FrameError('ERR_FRAME_TRUNCATED', `request of ${bytes.byteLength} octets, its length field says ${length}`, REQUEST_LENGTH_OFFSET);
  }
  if (length < bytes.byteLength) {
    throw new FrameError('ERR_FRAME_TRAILING', `request of ${bytes.byteLength} octets, its length field says ${length}`, REQUEST_LENGTH_OFFSET);
  }
  const mode = cursor.u8('the mode');
  if (!isRequestMode(mode)) throw new FrameError('ERR_FRAME_MODE', `unknown request mode ${mode}`, cursor.offset - 1);
  const flags = cursor.u8('the flags');
  if ((flags & ~REQUEST_FLAGS_KNOWN) !== 0) {
    throw new FrameError('ERR_FRAME_RESERVED', `unknown request flag bits 0x${flags.toString(16)}`, cursor.offset - 1);
  }
  const envc = cursor.u16('the environment count');
  if (envc > MAX_ENV_ENTRIES) {
    throw new FrameError('ERR_FRAME_LIMIT', `${envc} environment entries, the limit is ${MAX_ENV_ENTRIES}`, cursor.offset - 2);
  }
  const argc = cursor.u32('the argument count');
  // Each argument takes at least its 4-octet length: a larger count cannot be true.
  if (argc > cursor.remaining / 4) {
    throw new FrameError('ERR_FRAME_TRUNCATED', `${argc} arguments announced in ${cursor.remaining} octets`, cursor.offset - 4);
  }
  const argv: Uint8Array[] = [];
  for (let index = 0; index < argc; index++) {
    const argLength = cursor.u32(`the length of argument ${index}`);
    const at = cursor.offset;
    const arg = cursor.take(argLength, `argument ${index}`);
    checkNoNul(arg, `argument ${index}`, at);
    argv.push(arg);
  }
  const env: EnvEntry[] = [];
  const names = new Set<string>();
  for (let index = 0; index < envc; index++) {
    const nameLength = cursor.u8(`the name length of environment entry ${index}`);
    const nameAt = cursor.offset;
    // Latin-1 keeps one character per octet, so a non-ASCII octet fails the name check below.
    const name = String.fromCharCode(...cursor.take(nameLength, `the name of environment entry ${index}`));
    checkEnvName(name, names, nameAt);
    const valueLength = cursor.u16(`the value length of ${name}`);
    const valueAt = cursor.offset;
    const value = cursor.take(valueLength, `the value of ${name}`);
    checkEnvValue(value, name, valueAt);
    env.push({ name, value });
  }
  cursor.end();
  return { mode, flags, argv, env };
}

/** The frame cut into the SOCK_SEQPACKET messages that carry it, in order; views, not copies. */
export function requestPackets(frame: Uint8Array): Uint8Array[] {
  const packets: Uint8Array[] = [];
  for (let at = 0; at < frame.byteLength; at += MAX_PACKET_OCTETS) {
    packets.push(frame.subarray(at, Math.min(at + MAX_PACKET_OCTETS, frame.byteLength)));
  }
  return packets;
}

/**
 * The whole request's length as its first packet announces it, or null when
 * the packet is too short or not a request of this version: then the packet
 * is all there is, and decodeRequest says what is wrong with it. The value is
 * not checked against MAX_FRAME_OCTETS here; that is the receiver's call.
 */
export function requestLengthOf(firstPacket: Uint8Array): number | null {
  if (firstPacket.byteLength < REQUEST_LENGTH_OFFSET + 4 || !isRequestHeader(firstPacket)) return null;
  return new DataView(firstPacket.buffer, firstPacket.byteOffset, firstPacket.byteLength).getUint32(REQUEST_LENGTH_OFFSET, true);
}

/** The front door a request names, from its first packet alone; null when it cannot be told. */
export function requestModeOf(firstPacket: Uint8Array): RequestMode | null {
  if (firstPacket.byteLength <= REQUEST_MODE_OFFSET || !isRequestHeader(firstPacket)) return null;
  const mode = firstPacket[REQUEST_MODE_OFFSET];
  return isRequestMode(mode) ? mode : null;
}

function isRequestHeader(bytes: Uint8Array): boolean {
  try {
    readHeader(bytes.subarray(0, FRAME_HEADER_OCTETS), KIND_REQUEST);
    return true;
  } catch {
    return false;
  }
}

function toOctets(value: string | Uint8Array): Uint8Array {
  if (typeof value === 'string') return encoder.encode(value);
  if (value instanceof Uint8Array) return value;
  throw new FrameError('ERR_FRAME_FIELD', 'request strings must be strings or Uint8Arrays');
}

function checkNoNul(octets: Uint8Array, what: string, offset?: number): void {
  const nul = octets.indexOf(0);
  if (nul !== -1) {
    throw new FrameError('ERR_FRAME_FIELD', `${what} contains a NUL octet`, offset === undefined ? undefined : offset + nul);
  }
}

function checkEnvName(name: string, seen: Set<string>, offset?: number): void {
  if (typeof name !== 'string' || name.length > MAX_ENV_NAME_OCTETS || !ENV_NAME.test(name)) {
    throw new FrameError('ERR_FRAME_FIELD', `bad environment name ${JSON.stringify(String(name).slice(0, MAX_ENV_NAME_OCTETS))}`, offset);
  }
  if (seen.has(name)) throw new FrameError('ERR_FRAME_FIELD', `environment name ${name} given twice`, offset);
  seen.add(name);
}

function checkEnvValue(value: Uint8Array, name: string, offset?: number): void {
  if (value.byteLength > MAX_ENV_VALUE_OCTETS) {
    throw new FrameError('ERR_FRAME_LIMIT', `value of ${name} is ${value.byteLength} octets, the limit is ${MAX_ENV_VALUE_OCTETS}`, offset);
  }
  checkNoNul(value, `the value of ${name}`, offset);
}
