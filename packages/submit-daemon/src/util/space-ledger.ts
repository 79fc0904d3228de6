/**
 * A ledger of disk space the daemon spends on callers' behalf: octets per
 * caller uid, in total, and a free-space reserve on the file system
 * (statfs). The spool (3-intake/spool-space.ts) and the local queue
 * (5-transport/local-queue/queue-limits.ts) each keep one, with their own
 * words for a refusal. Every refusal is `spool-full` (75; qmail-queue 53).
 *
 * Octets are claimed before they are written, so the ledger never counts
 * less than the disk holds; statfs runs once per `step` of growth, not per
 * chunk, and the quotas are checked after that await, so claims racing in
 * the same turn all see each other.
 */
import { statfs } from 'node:fs/promises';
import { SubmissionError } from '@mailsubmit/shared';

export interface SpaceLimits {
  readonly quotaPerUid: number;
  readonly quotaTotal: number;
  /** 0 turns the statfs check off (ENOSPC still refuses). */
  readonly minFree: number;
}

/** How a refusal names the place and the limit that refused. */
export interface SpaceWords {
  perUid(uid: number, held: number, quota: number): string;
  total(held: number, quota: number): string;
  reserve(directory: string, free: number, reserve: number): string;
}

export type FreeSpace = (directory: string) => Promise<number>;

/** Octets an unprivileged writer may still take on the file system of `directory`. */
export const statfsFreeSpace: FreeSpace = async (directory) => {
  const stats = await statfs(directory);
  return Number(stats.bavail) * Number(stats.bsize);
};

export class SpaceLedger {
  private total = 0;
  private readonly byUid = new Map<number, number>();

  constructor(
    private readonly words: SpaceWords,
    /** Growth between two statfs checks: each check asks for this much room above the reserve. */
    readonly step: number,
    private readonly freeSpace: FreeSpace = statfsFreeSpace,
  ) {}

  /** Octets held now, for one uid or for everybody. */
  held(uid?: number): number {
    return uid === undefined ? this.total : (this.byUid.get(uid) ?? 0);
  }

  /** A claim for one file: grows as the file does, given back or kept once. */
  claim(uid: number, directory: string, limits: SpaceLimits): SpaceClaim {
    return new SpaceClaim(this, uid, directory, limits);
  }

  /** Octets already on disk (found at start, or kept by a claim): counted, never refused. */
  adopt(uid: number, octets: number): void {
    this.add(uid, octets);
  }

  /** Octets no longer on disk, given back. */
  give(uid: number, octets: number): void {
    this.add(uid, -octets);
  }

  /** @internal Takes `octets` for `uid` or throws spool-full. */
  take(uid: number, octets: number, limits: SpaceLimits): void {
    const mine = this.held(uid);
    if (mine + octets > limits.quotaPerUid) throw new SubmissionError('spool-full', this.words.perUid(uid, mine, limits.quotaPerUid));
    if (this.total + octets > limits.quotaTotal) throw new SubmissionError('spool-full', this.words.total(this.total, limits.quotaTotal));
    this.add(uid, octets);
  }

  /** @internal Throws spool-full when writing `octets` more would cut into the reserve. */
  async checkFree(directory: string, octets: number, limits: SpaceLimits): Promise<void> {
    if (limits.minFree === 0) return;
    let free: number;
    try {
      free = await this.freeSpace(directory);
    } catch (err) {
      throw new SubmissionError('internal', `cannot read the free space of ${directory}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    if (free - octets < limits.minFree) throw new SubmissionError('spool-full', this.words.reserve(directory, free, limits.minFree));
  }

  private add(uid: number, octets: number): void {
    const left = this.held(uid) + octets;
    if (left > 0) this.byUid.set(uid, left);
    else this.byUid.delete(uid);
    this.total += octets;
  }
}

export class SpaceClaim {
  private octets = 0;
  /** Octets the last statfs check covered. */
  private checkedTo = 0;
  private open = true;

  constructor(
    private readonly ledger: SpaceLedger,
    readonly uid: number,
    private readonly directory: string,
    private readonly limits: SpaceLimits,
  ) {}

  /** Octets claimed so far. */
  get claimed(): number {
    return this.octets;
  }

  /** Claims `octets` more before they are written; throws spool-full. */
  async grow(octets: number): Promise<void> {
    if (!this.open) throw new SubmissionError('internal', 'the space claim was already given back');
    if (this.octets + octets > this.checkedTo) {
      const step = Math.max(this.ledger.step, octets);
      await this.ledger.checkFree(this.directory, step, this.limits);
      this.checkedTo = this.octets + step;
    }
    this.ledger.take(this.uid, octets, this.limits);
    this.octets += octets;
  }

  /** The write failed or its file is gone: every claimed octet given back. Idempotent. */
  release(): void {
    if (!this.open) return;
    this.open = false;
    this.ledger.give(this.uid, this.octets);
    this.octets = 0;
  }

  /** The file was committed: the ledger keeps its octets until `give`. */
  keep(): void {
    this.open = false;
  }
}
