/**
 * The eight octets every frame starts with: magic, version, kind, reserved.
 * Checked in the order that gives the most useful error: the size first (an
 * empty read is end-of-file, an oversized one was cut by the kernel), then the
 * magic (not our protocol at all), then the version (our protocol, another
 * release), and only then the kind.
 */
import { ByteBuilder } from './byte-builder.ts';
import { ByteCursor } from './byte-cursor.ts';
import { FRAME_MAGIC, FRAME_VERSION, KIND_REPLY, KIND_REQUEST, MAX_FRAME_OCTETS } from './constants.ts';
import type { FrameKind } from './constants.ts';
import { FrameError } from './frame-error.ts';

const MAGIC = Uint8Array.from(FRAME_MAGIC, (c) => c.charCodeAt(0));

const KIND_NAMES: Readonly<Record<FrameKind, string>> = {
  [KIND_REQUEST]: 'request',
  [KIND_REPLY]: 'reply',
};

export function writeHeader(builder: ByteBuilder, kind: FrameKind): void {
  builder.put(MAGIC).u16(FRAME_VERSION).u8(kind).u8(0);
}

/** Reads and checks the header; the cursor is left at the first field of the body. */
export function readHeader(bytes: Uint8Array, expected: FrameKind): ByteCursor {
  if (!(bytes instanceof Uint8Array)) {
    throw new FrameError('ERR_FRAME_FIELD', 'a frame must be a Uint8Array');
  }
  if (bytes.byteLength === 0) {
    throw new FrameError('ERR_FRAME_EMPTY', 'empty frame (a zero-length read is end-of-file)');
  }
  if (bytes.byteLength > MAX_FRAME_OCTETS) {
    throw new FrameError('ERR_FRAME_TOO_LARGE', `frame of ${bytes.byteLength} octets, the limit is ${MAX_FRAME_OCTETS}`);
  }
  const cursor = new ByteCursor(bytes);
  const prefix = Math.min(MAGIC.length, bytes.byteLength);
  for (let i = 0; i < prefix; i++) {
    if (bytes[i] !== MAGIC[i]) {
      throw new FrameError('ERR_FRAME_MAGIC', `not a mailsubmit frame (magic is not "${FRAME_MAGIC}")`, i);
    }
  }
  cursor.take(MAGIC.length, 'the magic');
  const version = cursor.u16('the version');
  if (version !== FRAME_VERSION) {
    throw new FrameError('ERR_FRAME_VERSION', `frame version ${version}, this side speaks version ${FRAME_VERSION}`, 4);
  }
  const kind = cursor.u8('the kind');
  if (kind !== expected) {
    const name = KIND_NAMES[kind as FrameKind] ?? `unknown kind ${kind}`;
    throw new FrameError('ERR_FRAME_KIND', `expected a ${KIND_NAMES[expected]} frame, got ${name}`, 6);
  }
  const reserved = cursor.u8('the reserved octet');
  if (reserved !== 0) {
    throw new FrameError('ERR_FRAME_RESERVED', `reserved header octet is ${reserved}, not 0`, 7);
  }
  return cursor;
}
