/**
 * How much the local queue may hold: messages, octets in all, octets per
 * caller uid, and a free-space reserve on its file system. Every refusal is
 * `spool-full` (75; qmail-queue 53) naming the limit, as for the spool
 * (3-intake/spool-space.ts), and comes before the octets it would cover are
 * written, so a refused message leaves no file behind.
 *
 * The ledger counts whole files (head, message, trailer) and is rebuilt
 * from the recovery scan at start; a file being written counts from its
 * first octet, so concurrent writers cannot overshoot together.
 */
import { SubmissionError } from '@mailsubmit/shared';
import { statfsFreeSpace, type FreeSpace } from '../../3-intake/spool-space.ts';

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

export class QueueLedger {
  private count = 0;
  private octets = 0;
  private readonly byUid = new Map<number, number>();

  constructor(
    private readonly directory: string,
    private readonly limits: QueueLimits,
    private readonly freeSpace: FreeSpace = statfsFreeSpace,
  ) {}

  /** Messages and octets held now, for one uid or in all. */
  held(uid?: number): { readonly count: number; readonly octets: number } {
    return { count: this.count, octets: uid === undefined ? this.octets : (this.byUid.get(uid) ?? 0) };
  }

  /** A file found by the recovery scan: counted, never refused. */
  adopt(uid: number, octets: number): void {
    this.count++;
    this.add(uid, octets);
  }

  /** A committed file removed: its count and octets given back. */
  forget(uid: number, octets: number): void {
    this.count--;
    this.add(uid, -octets);
  }

  /** Room for one more message, or spool-full. The claim grows as the file does. */
  claim(uid: number): QueueClaim {
    if (this.count + 1 > this.limits.maxCount) {
      throw new SubmissionError('spool-full', `the local queue holds ${this.count} messages, its maximum: try again later`);
    }
    this.count++;
    return new QueueClaim(this, uid);
  }

  /** @internal */
  take(uid: number, octets: number): void {
    const mine = this.byUid.get(uid) ?? 0;
    if (mine + octets > this.limits.maxOctetsPerUid) {
      throw new SubmissionError(
        'spool-full',
        `uid ${uid} has ${mine} octets in the local queue and may have ${this.limits.maxOctetsPerUid}: try again later`,
      );
    }
    if (this.octets + octets > this.limits.maxOctets) {
      throw new SubmissionError('spool-full', `the local queue holds ${this.octets} octets and may hold ${this.limits.maxOctets}: try again later`);
    }
    this.add(uid, octets);
  }

  /** @internal Throws spool-full when `octets` more would cut into the free-space reserve. */
  async checkFree(octets: number): Promise<void> {
    if (this.limits.minFree === 0) return;
    const free = await this.freeSpace(this.directory);
    if (free - octets < this.limits.minFree) {
      throw new SubmissionError(
        'spool-full',
        `the file system of ${this.directory} has ${free} octets free and the local queue keeps ${this.limits.minFree} of them: try again later`,
      );
    }
  }

  /** @internal A claim given back whole: its message and octets. */
  release(uid: number, octets: number): void {
    this.forget(uid, octets);
  }

  private add(uid: number, octets: number): void {
    const left = (this.byUid.get(uid) ?? 0) + octets;
    if (left > 0) this.byUid.set(uid, left);
    else this.byUid.delete(uid);
    this.octets += octets;
  }
}

/** One message being written: claims octets before they are written. */
export class QueueClaim {
  private octets = 0;
  private checkedTo = 0;
  private open = true;

  constructor(
    private readonly ledger: QueueLedger,
    readonly uid: number,
  ) {}

  get claimed(): number {
    return this.octets;
  }

  async grow(octets: number): Promise<void> {
    if (this.octets + octets > this.checkedTo) {
      const step = Math.max(FREE_SPACE_STEP, octets);
      await this.ledger.checkFree(step);
      this.checkedTo = this.octets + step;
    }
    this.ledger.take(this.uid, octets);
    this.octets += octets;
  }

  /** The write failed: everything given back. Idempotent. */
  release(): void {
    if (!this.open) return;
    this.open = false;
    this.ledger.release(this.uid, this.octets);
  }

  /** The file was committed: the ledger keeps the count and octets. */
  keep(): void {
    this.open = false;
  }
}
