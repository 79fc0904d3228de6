/**
 * Counts in-flight work and makes the excess wait its turn (FIFO).
 *
 * No wait is unbounded: a wait may carry a deadline and an abort signal
 * (usually set once per submission with `forWaiter`). A waiter whose
 * deadline passes or whose signal fires leaves the queue at once, so a
 * caller that has gone holds no place in line, and the next one moves up.
 * A timed-out wait rejects with `timeoutError()`: the wait was for a slot
 * of this process, so by default it is not the waiter's fault.
 */

export interface WaitOptions {
  /** Longest wait for a slot, in milliseconds; none when absent. */
  readonly timeoutMs?: number;
  /** Abandons the wait: rejects with the signal's reason. */
  readonly signal?: AbortSignal;
  /** The error a wait that timed out rejects with. */
  readonly timeoutError?: (timeoutMs: number) => Error;
}

export class SlotTimeoutError extends Error {
  readonly code = 'ESLOTTIMEOUT';
  constructor(timeoutMs: number) {
    super(`no slot came free within ${timeoutMs / 1000} s`);
  }
}

interface Waiter {
  grant(): void;
}

/** The state shared by a semaphore and its per-waiter views. */
interface Slots {
  available: number;
  readonly waiting: Waiter[];
}

export class Semaphore {
  private readonly slots: Slots;

  constructor(
    readonly capacity: number,
    private readonly defaults: WaitOptions = {},
    shared?: Semaphore,
  ) {
    this.slots = shared?.slots ?? { available: capacity, waiting: [] };
  }

  /** The same slots, every wait through the view bound by `options` (a submission's deadline and abort). */
  forWaiter(options: WaitOptions): Semaphore {
    return new Semaphore(this.capacity, { ...this.defaults, ...options }, this);
  }

  /** Free slots now (for tests and status). */
  get available(): number {
    return this.slots.available;
  }

  /** Waiters in line now. */
  get waiting(): number {
    return this.slots.waiting.length;
  }

  /** Resolves with the slot's release function (idempotent), or rejects on deadline or abort. */
  acquire(options: WaitOptions = {}): Promise<() => void> {
    const { timeoutMs, signal, timeoutError } = { ...this.defaults, ...options };
    const slots = this.slots;
    if (signal?.aborted === true) return Promise.reject(reasonOf(signal));
    if (slots.available > 0) {
      slots.available--;
      return Promise.resolve(this.releaser());
    }
    return new Promise<() => void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const leave = (error: Error) => {
        const at = slots.waiting.indexOf(waiter);
        if (at < 0) return;
        slots.waiting.splice(at, 1);
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        reject(error);
      };
      const onAbort = () => leave(reasonOf(signal as AbortSignal));
      const waiter: Waiter = {
        grant: () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve(this.releaser());
        },
      };
      slots.waiting.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (timeoutMs !== undefined) timer = setTimeout(() => leave(timeoutError?.(timeoutMs) ?? new SlotTimeoutError(timeoutMs)), timeoutMs);
    });
  }

  private releaser(): () => void {
    const slots = this.slots;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      // The slot passes straight to the next waiter, which is removed from the line first.
      const next = slots.waiting.shift();
      if (next) next.grant();
      else slots.available++;
    };
  }
}

function reasonOf(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error(String(reason ?? 'aborted'));
}
