/**
 * Writes one message into the queue and commits it, in the order the
 * queue-file rules ask for (and that a test checks with strace):
 *
 *   1. create incoming/<temporary name> (O_EXCL, 0600) and fstat it: the
 *      inode gives the queue id;
 *   2. write the head, the message as it streams in, and the trailer, each
 *      chunk claimed from the ledger before it is written;
 *   3. fsync the file, close it;
 *   4. rename it to ready/<queue id>: the completion mark;
 *   5. fsync ready/: the commitment. Only now may the caller hear 0.
 *
 * Any failure before step 5 returns leaves nothing: the file is unlinked
 * and its claim given back; a crash instead leaves it in incoming/, which
 * recovery empties. A full file system (ENOSPC, EDQUOT, EFBIG) is
 * spool-full like a refused limit.
 */
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { SubmissionError, isSubmissionError } from '@mailsubmit/shared';
import { fsyncDirectory, type QueueDirectories } from './queue-directories.ts';
import { makeQueueId } from './queue-id.ts';
import { writeQueueFileHead, writeTrailer, type QueueEntry } from './queue-file-format.ts';
import type { QueueClaim } from './queue-limits.ts';

export interface CommittedFile {
  readonly queueId: string;
  /** The whole file's size. */
  readonly octets: number;
  readonly messageOctets: number;
}

const FULL = new Set(['ENOSPC', 'EDQUOT', 'EFBIG']);

/** A name in incoming/ no other writer (of this or an earlier process) can hold. */
export function temporaryName(kind: string): string {
  return `${kind}.${process.pid}.${randomBytes(6).toString('hex')}`;
}

export async function writeQueueFile(
  directories: QueueDirectories,
  entry: QueueEntry,
  message: AsyncIterable<Uint8Array>,
  claim: QueueClaim,
): Promise<CommittedFile> {
  const temporary = join(directories.incoming, temporaryName('message'));
  let handle: FileHandle | null = null;
  let committedPath: string | null = null;
  try {
    handle = await open(temporary, 'wx', 0o600);
    const { ino } = await handle.stat({ bigint: true });
    const queueId = makeQueueId(ino);
    await writeClaimed(handle, claim, writeQueueFileHead(queueId, entry));
    let messageOctets = 0;
    for await (const chunk of message) {
      await writeClaimed(handle, claim, chunk);
      messageOctets += chunk.byteLength;
    }
    await writeClaimed(handle, claim, writeTrailer(messageOctets));
    await handle.sync();
    // Some file systems report a lost write only at close (Postfix's mail_stream.c says so too).
    const closing = handle;
    handle = null;
    await closing.close();
    const target = join(directories.ready, queueId);
    await rename(temporary, target);
    committedPath = target;
    await fsyncDirectory(directories.ready);
    claim.keep();
    return { queueId, octets: claim.claimed, messageOctets };
  } catch (err) {
    if (handle !== null) await handle.close().catch(() => undefined);
    // After the rename the file is under its id; without the directory's fsync it is no commitment.
    await unlink(committedPath ?? temporary).catch(() => undefined);
    claim.release();
    throw asQueueError(err);
  }
}

async function writeClaimed(handle: FileHandle, claim: QueueClaim, chunk: Uint8Array): Promise<void> {
  if (chunk.byteLength === 0) return;
  await claim.grow(chunk.byteLength);
  let done = 0;
  while (done < chunk.byteLength) {
    const { bytesWritten } = await handle.write(chunk, done, chunk.byteLength - done);
    done += bytesWritten;
  }
}

function asQueueError(err: unknown): unknown {
  if (isSubmissionError(err)) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== undefined && FULL.has(code)) {
    return new SubmissionError('spool-full', `the local queue's file system is full (${code}): try again later`);
  }
  return new SubmissionError('internal', `the local queue could not store the message: ${(err as Error).message}`);
}
