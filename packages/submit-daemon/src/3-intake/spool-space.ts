/**
 * Who may take how much of the spool directory. A qmail-queue message is
 * held there while its envelope is read (3-intake/held-message.ts), so the
 * space is the daemon's, spent on a caller's behalf before that caller's
 * envelope is known: it is bounded per uid, in total, and by a free-space
 * reserve on the file system (statfs), each a configuration key. Every
 * refusal is `spool-full` (75; qmail-queue 53, "write error or disk full")
 * and names the key that refused it, so the administrator knows what to
 * raise and the caller knows to try again later.
 *
 * Octets are claimed before they are written and given back when the held
 * file is closed, so the ledger never counts less than the disk holds.
 * statfs runs once per FREE_SPACE_STEP of growth, not per chunk.
 */
import { statfs } from 'node:fs/promises';
import { SubmissionError } from '@mailsubmit/shared';

export interface SpoolLimits {
  /** limits.spool_quota_per_uid */
  readonly quotaPerUid: number;
  /** limits.spool_quota_total */
  readonly quotaTotal: number;
  /** limits.spool_min_free: 0 turns the statfs check off (ENOSPC still ends the hold). */
  readonly minFree: number;
}

/** Growth between two statfs checks: the check asks for this much room above the reserve. */
export const FREE_SPACE_STEP = 1024 * 1024;

export type FreeSpace = (directory: string) => Promise<number>;

/** Octets an unprivileged writer may still take on the file system of `directory`. */
export const statfsFreeSpace: FreeSpace = async (directory) => {
  const stats = await statfs(directory);
  return Number(stats.bavail) * Number(stats.bsize);
};

/** The daemon's ledger of held octets, per uid and in total. */
export class SpoolSpace {
  private total = 0;
  private readonly byUid = new Map<number, number>();

  constructor(private readonly freeSpace: FreeSpace = statfsFreeSpace) {}

  /** Octets held now, for one uid or for everybody. */
  held(uid?: number): number {
    return uid === undefined ? this.total : (this.byUid.get(uid) ?? 0);
  }

  /** A claim for one held file: grows as the file does, freed once. */
  claim(uid: number, directory: string, limits: SpoolLimits): SpoolClaim {
    return new SpoolClaim(this, uid, directory, limits);
  }

  /** @internal Takes `octets` for `uid` or throws spool-full naming the quota. */
  take(uid: number, octets: number, limits: SpoolLimits): void {
    const mine = this.byUid.get(uid) ?? 0;
    if (mine + octets > limits.quotaPerUid) {
      throw new SubmissionError(
        'spool-full',
        `uid ${uid} already has ${mine} octets held in the spool and limits.spool_quota_per_uid is ${limits.quotaPerUid}: try again later`,
      );
    }
    if (this.total + octets > limits.quotaTotal) {
      throw new SubmissionError('spool-full', `the spool holds ${this.total} octets and limits.spool_quota_total is ${limits.quotaTotal}: try again later`);
    }
    this.byUid.set(uid, mine + octets);
    this.total += octets;
  }

  /** @internal */
  give(uid: number, octets: number): void {
    const left = (this.byUid.get(uid) ?? 0) - octets;
    if (left > 0) this.byUid.set(uid, left);
    else this.byUid.delete(uid);
    this.total -= octets;
  }

  /** @internal Throws spool-full when writing `octets` more would cut into the reserve. */
  async checkFree(directory: string, octets: number, limits: SpoolLimits): Promise<void> {
    if (limits.minFree === 0) return;
    let free: number;
    try {
      free = await this.freeSpace(directory);
    } catch (err) {
      throw new SubmissionError('internal', `cannot read the free space of ${directory}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    if (free - octets < limits.minFree) {
      throw new SubmissionError(
        'spool-full',
        `the file system of ${directory} has ${free} octets free and limits.spool_min_free keeps ${limits.minFree} of them: try again later`,
      );
    }
  }
}

export class SpoolClaim {
  private octets = 0;
  /** Octets the last statfs check covered. */
  private checkedTo = 0;
  private released = false;

  constructor(
    private readonly space: SpoolSpace,
    private readonly uid: number,
    private readonly directory: string,
    private readonly limits: SpoolLimits,
  ) {}

  /** Claims `octets` more before they are written; throws spool-full. */
  async grow(octets: number): Promise<void> {
    if (this.released) throw new SubmissionError('internal', 'the spool claim was already given back');
    if (this.octets + octets > this.checkedTo) {
      const step = Math.max(FREE_SPACE_STEP, octets);
      await this.space.checkFree(this.directory, step, this.limits);
      this.checkedTo = this.octets + step;
    }
    // The quotas are checked after the await, so claims racing in the same turn all see each other.
    this.space.take(this.uid, octets, this.limits);
    this.octets += octets;
  }

  /** Gives every claimed octet back. Idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.space.give(this.uid, this.octets);
    this.octets = 0;
  }
}

/** The daemon's one ledger: one process, one spool directory. */
export const daemonSpoolSpace = new SpoolSpace();
