/**
 * The identity cache keeps user-database facts for a moment and no longer:
 * one lookup per uid while fresh, a changed group membership seen once the
 * entry expires, everything forgotten when the authorization list reloads,
 * and a bounded number of uids.
 */
import type { CallerIdentity } from '@mailsubmit/shared';
import { describe, expect, it } from 'vitest';
import { IdentityCache } from '../../src/2-authorize/identity-cache.ts';

/** A user database that counts lookups and can be changed between them. */
function fakeDatabase() {
  const groups = new Map<number, string[]>([[1000, ['staff']]]);
  const calls: number[] = [];
  const lookup = (uid: number): CallerIdentity => {
    calls.push(uid);
    return { uid, userName: `user${uid}`, groupNames: [...(groups.get(uid) ?? [])] };
  };
  return { groups, calls, lookup };
}

describe('IdentityCache', () => {
  it('looks a uid up once while the entry is fresh', () => {
    const db = fakeDatabase();
    let now = 0;
    const cache = new IdentityCache({ ttlMs: 1000, lookup: db.lookup, now: () => now });
    expect(cache.identityOf(1000).groupNames).toEqual(['staff']);
    now = 999;
    expect(cache.identityOf(1000).userName).toBe('user1000');
    expect(db.calls).toEqual([1000]);
  });

  it('sees a group-membership change once the entry has expired', () => {
    const db = fakeDatabase();
    let now = 0;
    const cache = new IdentityCache({ ttlMs: 1000, lookup: db.lookup, now: () => now });
    expect(cache.identityOf(1000).groupNames).toEqual(['staff']);
    db.groups.set(1000, []);
    now = 1000;
    expect(cache.identityOf(1000).groupNames).toEqual([]);
    expect(db.calls).toEqual([1000, 1000]);
  });

  it('forgets everything on clear (the authorization list was reloaded)', () => {
    const db = fakeDatabase();
    const cache = new IdentityCache({ lookup: db.lookup, now: () => 0 });
    cache.identityOf(1000);
    db.groups.set(1000, ['wheel']);
    cache.clear();
    expect(cache.identityOf(1000).groupNames).toEqual(['wheel']);
    expect(db.calls).toEqual([1000, 1000]);
  });

  it('keeps at most maxEntries uids, dropping the oldest', () => {
    const db = fakeDatabase();
    const cache = new IdentityCache({ maxEntries: 2, lookup: db.lookup, now: () => 0 });
    cache.identityOf(1);
    cache.identityOf(2);
    cache.identityOf(3);
    expect(cache.size).toBe(2);
    cache.identityOf(3);
    cache.identityOf(2);
    expect(db.calls).toEqual([1, 2, 3]);
    cache.identityOf(1);
    expect(db.calls).toEqual([1, 2, 3, 1]);
  });
});
