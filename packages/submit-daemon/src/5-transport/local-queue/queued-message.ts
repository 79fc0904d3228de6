/**
 * A committed message read back: its head (caller facts, delivery facts,
 * envelope) and its octets as a stream, never read whole. The file is
 * opened once and the stream reads from that descriptor, so a removal
 * while it is read cannot swap the file under it.
 *
 * The trailer is checked before anything is handed out: a file shorter or
 * longer than its trailer says is damaged, and nothing of it is delivered.
 */
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { QueueDirectories } from './queue-directories.ts';
import { DamagedQueueFile, parseQueueFileHead, parseTrailer, TRAILER_OCTETS, type QueueFileHead } from './queue-file-format.ts';

export interface QueueFileSummary extends QueueFileHead {
  /** The whole file's size. */
  readonly octets: number;
  readonly messageOctets: number;
}

export interface QueuedMessage extends QueueFileSummary {
  /** The message octets; destroy it to let the file go unread. */
  readonly message: Readable;
}

const HEAD_CHUNK = 64 * 1024;

/** Reads and checks the head and trailer of an open queue file. */
export async function readQueueFileSummary(handle: FileHandle, queueId: string): Promise<QueueFileSummary> {
  const { size } = await handle.stat();
  let bytes = Buffer.alloc(0);
  let head: QueueFileHead | null = null;
  while (head === null) {
    const chunk = Buffer.alloc(HEAD_CHUNK);
    const { bytesRead } = await handle.read(chunk, 0, HEAD_CHUNK, bytes.length);
    if (bytesRead === 0) throw new DamagedQueueFile('it ends inside its head');
    bytes = Buffer.concat([bytes, chunk.subarray(0, bytesRead)]);
    head = parseQueueFileHead(bytes);
  }
  if (head.queueId !== queueId) throw new DamagedQueueFile(`its name is ${queueId} and its queue-id line says ${head.queueId}`);
  const trailerAt = size - TRAILER_OCTETS;
  let messageOctets: number | null = null;
  if (trailerAt >= head.messageOffset) {
    const trailer = Buffer.alloc(TRAILER_OCTETS);
    await handle.read(trailer, 0, TRAILER_OCTETS, trailerAt);
    messageOctets = parseTrailer(trailer);
  }
  if (messageOctets === null) throw new DamagedQueueFile('it has no end-of-message trailer (cut short?)');
  if (head.messageOffset + messageOctets !== trailerAt) {
    throw new DamagedQueueFile(`its trailer says ${messageOctets} message octets and the file holds ${trailerAt - head.messageOffset}`);
  }
  return { ...head, octets: size, messageOctets };
}

export async function openQueuedMessage(directories: QueueDirectories, queueId: string): Promise<QueuedMessage> {
  const handle = await open(join(directories.ready, queueId), 'r');
  let summary: QueueFileSummary;
  try {
    summary = await readQueueFileSummary(handle, queueId);
  } catch (err) {
    await handle.close();
    throw err;
  }
  const { messageOffset, messageOctets } = summary;
  // createReadStream's end is inclusive, so it cannot read nothing.
  if (messageOctets === 0) {
    await handle.close();
    return { ...summary, message: Readable.from([]) };
  }
  const message = createReadStream('', { fd: handle, start: messageOffset, end: messageOffset + messageOctets - 1, highWaterMark: HEAD_CHUNK });
  return { ...summary, message };
}
