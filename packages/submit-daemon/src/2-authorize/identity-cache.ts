/**
 * Who a uid is, remembered for a moment. The user and group lookups
 * (getpwuid_r, getgrouplist and a getgrgid_r per group, through NSS) were
 * about 6 % of the daemon's time per submission in the profile of
 * docs/performance.md; a busy caller (a content filter submitting many
 * messages a second) is the same uid every time.
 *
 * Only the facts from the user database are cached, never the decision:
 * authorization is decided afresh on every connection against the list in
 * force, so a line removed from the list takes effect at once. What the
 * cache can delay is a change in the user database itself (a user removed
 * from a group named by an @group line, a renamed or deleted account): such
 * a change is seen within `ttlMs`. Every entry is also dropped when the
 * authorization list is reloaded (`clear`), so an administrator who changes
 * group membership and then the list sees both at once.
 */
import type { CallerIdentity } from '@mailsubmit/shared';
import { identityOf } from './user-database.ts';

/** Short enough that a group-membership change counts within a second; long enough for a busy uid. */
export const IDENTITY_TTL_MS = 1_000;
/** Distinct uids remembered; beyond it the oldest entry goes (the cache must stay small whoever connects). */
export const IDENTITY_CACHE_ENTRIES = 256;

interface Entry {
  readonly identity: CallerIdentity;
  readonly expiresAt: number;
}

export interface IdentityCacheOptions {
  readonly ttlMs?: number;
  readonly maxEntries?: number;
  /** The user database (tests replace it). */
  readonly lookup?: (uid: number) => CallerIdentity;
  /** Milliseconds, monotonic (tests replace it). */
  readonly now?: () => number;
}

export class IdentityCache {
  private readonly entries = new Map<number, Entry>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly lookup: (uid: number) => CallerIdentity;
  private readonly now: () => number;

  constructor(options: IdentityCacheOptions = {}) {
    this.ttlMs = options.ttlMs ?? IDENTITY_TTL_MS;
    this.maxEntries = options.maxEntries ?? IDENTITY_CACHE_ENTRIES;
    this.lookup = options.lookup ?? identityOf;
    this.now = options.now ?? performance.now.bind(performance);
  }

  get size(): number {
    return this.entries.size;
  }

  /** The identity of `uid`, from the cache while it is fresh, else from the user database. */
  identityOf(uid: number): CallerIdentity {
    const now = this.now();
    const cached = this.entries.get(uid);
    if (cached !== undefined && cached.expiresAt > now) return cached.identity;
    const identity = this.lookup(uid);
    // Deleting first moves a refreshed uid to the end, so the map stays in expiry order.
    this.entries.delete(uid);
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
    this.entries.set(uid, { identity, expiresAt: now + this.ttlMs });
    return identity;
  }

  /** Forgets everything: the next lookup of every uid goes to the user database. */
  clear(): void {
    this.entries.clear();
  }
}
