/**
 * How much the local queue may hold: messages, octets in all, octets per
 * caller uid, and a free-space reserve on its file system. Every refusal is
 * `spool-full` (75; qmail-queue 53) naming the limit and its configuration
 * key, as for the spool
 * (3-intake/spool-space.ts), and comes before the octets it would cover are
 * written, so a refused message leaves no file behind.
 *
 * The ledger counts whole files (head, message, trailer) and is rebuilt
 * from the recovery scan at start; a file being written counts from its
 * first octet, so concurrent writers cannot overshoot together.
 */
import { SubmissionError } from '@mailsubmit/shared';
import { SpaceLedger, statfsFreeSpace, type FreeSpace, type SpaceClaim, type SpaceLimits } from '../../util/space-ledger.ts';

/** Growth between two statfs checks: most messages need one check, a large one one per step. */
export const FREE_SPACE_STEP = 256 * 1024;

export interface QueueLimits {
  /** Messages queued or being written. */
  readonly maxCount: number;
  /** Octets of all queue files together. */
  readonly maxOctets: number;
  /** Octets of one caller uid's queue files. */
  readonly maxOctetsPerUid: number;
  /** Octets the file system must keep free after a write; 0 turns the check off (ENOSPC still refuses). */
  readonly minFree: number;
}

/** The queue's count of messages, over the octet ledger it shares with the spool (util/space-ledger.ts). */
export class QueueLedger {
  private count = 0;
  private readonly space: SpaceLedger;
  private readonly spaceLimits: SpaceLimits;

  constructor(
    private readonly directory: string,
    private readonly limits: QueueLimits,
    freeSpace: FreeSpace = statfsFreeSpace,
  ) {
    this.space = new SpaceLedger(
      {
        perUid: (uid, held, quota) => `uid ${uid} has ${held} octets in the local queue and queue.max_size_per_uid is ${quota}: try again later`,
        total: (held, quota) => `the local queue holds ${held} octets and queue.max_size is ${quota}: try again later`,
        reserve: (dir, free, reserve) => `the file system of ${dir} has ${free} octets free and queue.min_free keeps ${reserve} of them: try again later`,
      },
      FREE_SPACE_STEP,
      freeSpace,
    );
    this.spaceLimits = { quotaPerUid: limits.maxOctetsPerUid, quotaTotal: limits.maxOctets, minFree: limits.minFree };
  }

  /** Messages and octets held now, for one uid or in all. */
  held(uid?: number): { readonly count: number; readonly octets: number } {
    return { count: this.count, octets: this.space.held(uid) };
  }

  /** A file found by the recovery scan: counted, never refused. */
  adopt(uid: number, octets: number): void {
    this.count++;
    this.space.adopt(uid, octets);
  }

  /** A committed file removed: its count and octets given back. */
  forget(uid: number, octets: number): void {
    this.count--;
    this.space.give(uid, octets);
  }

  /** Room for one more message, or spool-full. The claim grows as the file does. */
  claim(uid: number): QueueClaim {
    if (this.count + 1 > this.limits.maxCount) {
      throw new SubmissionError('spool-full', `the local queue holds ${this.count} messages and queue.max_messages is ${this.limits.maxCount}: try again later`);
    }
    this.count++;
    return new QueueClaim(this.space.claim(uid, this.directory, this.spaceLimits), () => this.count--);
  }
}

/** One message being written: claims octets before they are written. */
export class QueueClaim {
  private open = true;

  constructor(
    private readonly space: SpaceClaim,
    private readonly uncount: () => void,
  ) {}

  get uid(): number {
    return this.space.uid;
  }

  get claimed(): number {
    return this.space.claimed;
  }

  grow(octets: number): Promise<void> {
    return this.space.grow(octets);
  }

  /** The write failed: the message and its octets given back. Idempotent. */
  release(): void {
    if (!this.open) return;
    this.open = false;
    this.space.release();
    this.uncount();
  }

  /** The file was committed: the ledger keeps the count and octets. */
  keep(): void {
    this.open = false;
    this.space.keep();
  }
}
