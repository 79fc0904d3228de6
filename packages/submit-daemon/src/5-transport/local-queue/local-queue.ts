/**
 * NAME
 *   local-queue - mailsubmit's durable queue of messages the MTA could not take yet
 *
 * DESCRIPTION
 *   The lowest layer of the local queue: files, and the order of the system
 *   calls that make each one safe. Scheduling, retries and bounces sit above
 *   it and see only enqueue, read, setState, remove and the recovery report.
 *
 *   It follows the rules Wietse Venema set out for software that writes
 *   queue files (postfix-users, 2004, quoted in the project's seed thread):
 *
 *   1. All queue directories are on one file system (queue-directories.ts
 *      checks the devices), because files move only by rename.
 *   2. A message file is created in incoming/, written, fsync'ed, and only
 *      then marked complete by its rename into ready/; ready/ is fsync'ed
 *      before the caller may hear 0 (queue-file-writer.ts). Postfix marks
 *      completion with a mode bit (mail_stream.c's fchmod); a rename is the
 *      other way the rules allow, chosen here because recovery then needs
 *      no stat of every file (whatever is in incoming/ is incomplete) and a
 *      reader never sees a file under its id before it is whole.
 *   3. The name is tied to the inode: the queue id is the creation time and
 *      the inode number (queue-id.ts), as Postfix's long queue ids are.
 *   4. A committed file is never modified in place. A message's changing
 *      state (attempts, next attempt, last error, hold) lives in a sidecar,
 *      state/<id>, replaced whole by write, fsync, rename, directory fsync
 *      (queue-state.ts); a content change would be a new message file, and
 *      the old one removed only after the new one is committed.
 *   5. No step needs an undo after a crash: a crash leaves a file in
 *      incoming/ (removed at start), a committed file (kept), or a sidecar
 *      without its message (removed at start) (queue-recovery.ts).
 *   6. A file of a version this code does not read is left alone and
 *      reported, never deleted: each file's first line says its version.
 *   7. Locked files are not touched: the daemon is the queue's only writer
 *      (the directories are its uid's, 0700), so the lock is in the daemon:
 *      whoever reads a message for delivery owns it until remove or setState.
 *
 *   Limits (count, octets, octets per caller uid, a free-space reserve) are
 *   checked before the octets they cover are written (queue-limits.ts);
 *   a refusal, and ENOSPC in the middle of a write, are spool-full and
 *   leave no file behind.
 *
 * FILES
 *   <root>/incoming/   files being written
 *   <root>/ready/<id>  committed messages (queue-file-format.ts)
 *   <root>/state/<id>  state sidecars
 */
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { SubmissionError } from '@mailsubmit/shared';
import type { FreeSpace } from '../../util/space-ledger.ts';
import { fsyncDirectory, prepareQueueDirectories, type QueueDirectories } from './queue-directories.ts';
import type { QueueEntry } from './queue-file-format.ts';
import { writeQueueFile, type CommittedFile } from './queue-file-writer.ts';
import { QueueLedger, type QueueLimits } from './queue-limits.ts';
import { openQueuedMessage, type QueuedMessage } from './queued-message.ts';
import { recoverQueue, type RecoveryReport } from './queue-recovery.ts';
import { removeQueueState, writeQueueState, type QueueState } from './queue-state.ts';

export interface LocalQueueOptions {
  readonly limits: QueueLimits;
  /** The uid that must own the directories: the daemon's. */
  readonly uid?: number;
  /** Free octets on the queue's file system (statfs by default). */
  readonly freeSpace?: FreeSpace;
}

/** The ledger's view of one committed message. */
interface Held {
  readonly uid: number;
  readonly octets: number;
}

export class LocalQueue {
  private readonly held = new Map<string, Held>();

  private constructor(
    readonly directories: QueueDirectories,
    private readonly ledger: QueueLedger,
  ) {}

  /**
   * Checks (and creates) the directories, runs the recovery scan, and
   * returns the queue with what the scan found. Throws UnsafePathError
   * when the directories cannot be trusted.
   */
  static async open(root: string, options: LocalQueueOptions): Promise<{ queue: LocalQueue; recovery: RecoveryReport }> {
    const directories = await prepareQueueDirectories(root, options.uid);
    const recovery = await recoverQueue(directories);
    const queue = new LocalQueue(directories, new QueueLedger(root, options.limits, options.freeSpace));
    for (const found of recovery.queued) queue.adopt(found.queueId, found.caller.uid, found.octets);
    return { queue, recovery };
  }

  /** Messages and octets held, in all or for one caller uid. */
  usage(uid?: number): { readonly count: number; readonly octets: number } {
    return this.ledger.held(uid);
  }

  /**
   * Streams the message into a new queue file and commits it. Resolves
   * only once the file and its name are on stable storage; throws
   * SubmissionError (spool-full for a limit or a full file system) and
   * then leaves no file.
   */
  async enqueue(entry: QueueEntry, message: AsyncIterable<Uint8Array>): Promise<CommittedFile> {
    const claim = this.ledger.claim(entry.caller.uid);
    const committed = await writeQueueFile(this.directories, entry, message, claim);
    this.held.set(committed.queueId, { uid: entry.caller.uid, octets: committed.octets });
    return committed;
  }

  /** The head and a stream of the message octets. */
  async read(queueId: string): Promise<QueuedMessage> {
    this.known(queueId);
    return openQueuedMessage(this.directories, queueId);
  }

  /** Replaces the message's state sidecar (never the message file). */
  async setState(queueId: string, state: QueueState): Promise<void> {
    this.known(queueId);
    await writeQueueState(this.directories, queueId, state);
  }

  /**
   * After delivery (or a bounce): the message file first, then its
   * sidecar, each unlink made stable by its directory's fsync. A crash in
   * between leaves a sidecar alone, which recovery removes; the reverse
   * order could leave a held message without its hold.
   */
  async remove(queueId: string): Promise<void> {
    const held = this.known(queueId);
    await unlink(join(this.directories.ready, queueId));
    this.held.delete(queueId);
    this.ledger.forget(held.uid, held.octets);
    await fsyncDirectory(this.directories.ready);
    await removeQueueState(this.directories, queueId);
  }

  private adopt(queueId: string, uid: number, octets: number): void {
    this.held.set(queueId, { uid, octets });
    this.ledger.adopt(uid, octets);
  }

  private known(queueId: string): Held {
    const held = this.held.get(queueId);
    if (held === undefined) throw new SubmissionError('internal', `the local queue holds no message ${queueId}`);
    return held;
  }
}
