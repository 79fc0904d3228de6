/** SpoolSpace: the per-uid and total quotas and the free-space reserve, each refusal naming its key. */
import { describe, expect, it } from 'vitest';
import { FREE_SPACE_STEP, SpoolSpace } from '../../src/3-intake/spool-space.ts';

const LIMITS = { quotaPerUid: 1000, quotaTotal: 1500, minFree: 0 };

describe('SpoolSpace', () => {
  it('refuses a uid past its quota, naming limits.spool_quota_per_uid, and lets another uid in', async () => {
    const space = new SpoolSpace(async () => Number.MAX_SAFE_INTEGER);
    const first = space.claim(10, '/spool', LIMITS);
    await first.grow(800);
    const second = space.claim(10, '/spool', LIMITS);
    await expect(second.grow(300)).rejects.toMatchObject({ outcome: 'spool-full', message: expect.stringContaining('limits.spool_quota_per_uid is 1000') });
    await space.claim(11, '/spool', LIMITS).grow(300);
    expect(space.held(10)).toBe(800);
    expect(space.held()).toBe(1100);
  });

  it('refuses everybody past the total quota, naming limits.spool_quota_total', async () => {
    const space = new SpoolSpace(async () => Number.MAX_SAFE_INTEGER);
    await space.claim(1, '/spool', LIMITS).grow(900);
    await space.claim(2, '/spool', LIMITS).grow(500);
    await expect(space.claim(3, '/spool', LIMITS).grow(200)).rejects.toMatchObject({
      outcome: 'spool-full',
      message: expect.stringContaining('limits.spool_quota_total is 1500'),
    });
    expect(space.held(3)).toBe(0);
  });

  it('gives every octet back once, on release', async () => {
    const space = new SpoolSpace(async () => Number.MAX_SAFE_INTEGER);
    const claim = space.claim(10, '/spool', LIMITS);
    await claim.grow(600);
    await claim.grow(300);
    claim.release();
    claim.release();
    expect(space.held()).toBe(0);
    expect(space.held(10)).toBe(0);
    await expect(claim.grow(1)).rejects.toMatchObject({ outcome: 'internal' });
  });

  it('keeps the free-space reserve, asking statfs once per step of growth', async () => {
    let free = 3 * FREE_SPACE_STEP;
    let asked = 0;
    const space = new SpoolSpace(async () => {
      asked += 1;
      return free;
    });
    const limits = { quotaPerUid: 2 ** 40, quotaTotal: 2 ** 40, minFree: FREE_SPACE_STEP };
    const claim = space.claim(10, '/spool', limits);
    for (let i = 0; i < 16; i++) await claim.grow(FREE_SPACE_STEP / 16);
    expect(asked).toBe(1);
    free = FREE_SPACE_STEP + 10;
    await expect(claim.grow(1)).rejects.toMatchObject({ outcome: 'spool-full', message: expect.stringContaining(`limits.spool_min_free keeps ${FREE_SPACE_STEP}`) });
    // Refused octets are not counted.
    expect(space.held(10)).toBe(FREE_SPACE_STEP);
  });

  it('does not ask statfs when the reserve is 0', async () => {
    const space = new SpoolSpace(async () => {
      throw new Error('statfs must not be called');
    });
    await space.claim(10, '/spool', LIMITS).grow(10);
    expect(space.held()).toBe(10);
  });
});
