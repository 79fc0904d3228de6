/**
 * The retry schedule as Postfix's queue manager keeps it: the backoff
 * doubles from the minimum to the maximum, the last attempt comes when the
 * lifetime ends, and a delay warning is due once.
 */
import { describe, expect, it } from 'vitest';
import { backoffAfter, delayWarningDue, lifetimeOver, nextAttemptAt } from '../../../src/5-transport/local-queue/retry-schedule.ts';

const MINUTE = 60_000;
const SCHEDULE = { minimalBackoff: 5 * MINUTE, maximalBackoff: 60 * MINUTE, maximalLifetime: 24 * 60 * MINUTE, delayWarning: 4 * 60 * MINUTE };
const ARRIVAL = new Date('2026-12-06T00:00:00.000Z');

describe('the retry schedule', () => {
  it('doubles the backoff after each failure, from the minimum to the maximum', () => {
    expect([1, 2, 3, 4, 5, 6, 100].map((attempts) => backoffAfter(attempts, SCHEDULE) / MINUTE)).toEqual([5, 10, 20, 40, 60, 60, 60]);
  });

  it('puts the next attempt a backoff after the failure, but never past the end of the lifetime', () => {
    const failedAt = new Date(ARRIVAL.getTime() + 60 * MINUTE);
    expect(nextAttemptAt(2, ARRIVAL, failedAt, SCHEDULE).toISOString()).toBe('2026-12-06T01:10:00.000Z');
    const late = new Date(ARRIVAL.getTime() + (24 * 60 - 7) * MINUTE);
    expect(nextAttemptAt(9, ARRIVAL, late, SCHEDULE).toISOString()).toBe('2026-12-07T00:00:00.000Z');
  });

  it('ends the lifetime at arrival plus maximal_queue_lifetime', () => {
    expect(lifetimeOver(ARRIVAL, new Date(ARRIVAL.getTime() + 24 * 60 * MINUTE - 1), SCHEDULE)).toBe(false);
    expect(lifetimeOver(ARRIVAL, new Date(ARRIVAL.getTime() + 24 * 60 * MINUTE), SCHEDULE)).toBe(true);
  });

  it('makes a delay warning due once, after delay_warning_time, and never with 0', () => {
    const after = new Date(ARRIVAL.getTime() + 4 * 60 * MINUTE);
    expect(delayWarningDue(ARRIVAL, new Date(after.getTime() - 1), false, SCHEDULE)).toBe(false);
    expect(delayWarningDue(ARRIVAL, after, false, SCHEDULE)).toBe(true);
    expect(delayWarningDue(ARRIVAL, after, true, SCHEDULE)).toBe(false);
    expect(delayWarningDue(ARRIVAL, after, false, { ...SCHEDULE, delayWarning: 0 })).toBe(false);
  });
});
