/**
 * The file-read slots: no wait without an end. A waiter leaves the line at
 * its deadline or when its caller goes, at once, and the next one moves up.
 */
import { describe, expect, it, vi } from 'vitest';
import { SubmissionError } from '@mailsubmit/shared';
import { Semaphore, SlotTimeoutError } from '../../src/util/semaphore.ts';

describe('Semaphore', () => {
  it('hands out slots up to its capacity, then queues in order', async () => {
    const slots = new Semaphore(1);
    const first = await slots.acquire();
    const order: string[] = [];
    const second = slots.acquire().then((release) => (order.push('second'), release));
    const third = slots.acquire().then((release) => (order.push('third'), release));
    expect(slots.waiting).toBe(2);
    first();
    (await second)();
    (await third)();
    expect(order).toEqual(['second', 'third']);
    expect(slots.available).toBe(1);
  });

  it('rejects a wait at its deadline with the configured error and takes it out of the line', async () => {
    vi.useFakeTimers();
    try {
      const slots = new Semaphore(1);
      const held = await slots.acquire();
      const busy = () => new SubmissionError('overload', 'busy: no file-read slot came free');
      const waiting = slots.acquire({ timeoutMs: 5_000, timeoutError: busy });
      const outcome = waiting.catch((err: unknown) => err);
      await vi.advanceTimersByTimeAsync(5_000);
      expect(await outcome).toMatchObject({ outcome: 'overload', message: expect.stringMatching(/busy/) });
      expect(slots.waiting).toBe(0);
      // The timed-out waiter never gets the slot: it goes back to the pool.
      held();
      expect(slots.available).toBe(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it('defaults to a SlotTimeoutError', async () => {
    vi.useFakeTimers();
    try {
      const slots = new Semaphore(1);
      await slots.acquire();
      const outcome = slots.acquire({ timeoutMs: 10 }).catch((err: unknown) => err);
      await vi.advanceTimersByTimeAsync(10);
      expect(await outcome).toBeInstanceOf(SlotTimeoutError);
    } finally {
      vi.useRealTimers();
    }
  });

  it('lets a departed waiter leave the line at once, so the one behind it gets the next slot', async () => {
    const slots = new Semaphore(1);
    const held = await slots.acquire();
    const gone = new AbortController();
    const departed = slots.acquire({ signal: gone.signal }).catch((err: unknown) => err);
    const next = slots.acquire();
    expect(slots.waiting).toBe(2);
    const reason = new SubmissionError('caller-gone', 'the helper went away');
    gone.abort(reason);
    expect(await departed).toBe(reason);
    expect(slots.waiting).toBe(1);
    held();
    const release = await next;
    expect(slots.available).toBe(0);
    release();
    expect(slots.available).toBe(1);
  });

  it('refuses at once a waiter whose caller is already gone, even with a slot free', async () => {
    const slots = new Semaphore(1);
    const gone = new AbortController();
    gone.abort(new SubmissionError('caller-gone', 'gone'));
    await expect(slots.acquire({ signal: gone.signal })).rejects.toMatchObject({ outcome: 'caller-gone' });
    expect(slots.available).toBe(1);
  });

  it('binds a deadline and a signal to every wait through a view, sharing the slots', async () => {
    vi.useFakeTimers();
    try {
      const slots = new Semaphore(1);
      const gone = new AbortController();
      const view = slots.forWaiter({ signal: gone.signal, timeoutMs: 1_000, timeoutError: () => new SubmissionError('overload', 'busy') });
      const held = await view.acquire();
      expect(slots.available).toBe(0);
      const timedOut = view.acquire().catch((err: unknown) => err);
      await vi.advanceTimersByTimeAsync(1_000);
      expect(await timedOut).toMatchObject({ outcome: 'overload' });
      const abandoned = view.acquire().catch((err: unknown) => err);
      gone.abort(new SubmissionError('caller-gone', 'gone'));
      expect(await abandoned).toMatchObject({ outcome: 'caller-gone' });
      expect(slots.waiting).toBe(0);
      held();
      held();
      expect(slots.available).toBe(1);
    } finally {
      vi.useRealTimers();
    }
  });
});
