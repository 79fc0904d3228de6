/**
 * When a queued message is tried again, and when it is given up on, as
 * Postfix's queue manager decides for its deferred queue: the wait after
 * the first failed attempt is minimal_backoff_time, each further failure
 * doubles it, never beyond maximal_backoff_time; a message older than
 * maximal_queue_lifetime is returned to its sender at its next failure, and
 * its last attempt is never put off past that moment. A delay warning, if
 * configured, goes out once, at the first failure after delay_warning_time.
 */
import type { DaemonConfig } from '../../config/daemon-config.ts';

type Schedule = Pick<DaemonConfig['queue'], 'minimalBackoff' | 'maximalBackoff' | 'maximalLifetime' | 'delayWarning'>;

/** The wait before the next attempt after `attempts` failed ones (1 or more), in milliseconds. */
export function backoffAfter(attempts: number, schedule: Schedule): number {
  const doublings = Math.min(Math.max(attempts - 1, 0), 40);
  return Math.min(schedule.minimalBackoff * 2 ** doublings, schedule.maximalBackoff);
}

/** When to try a message again that has failed `attempts` times, the last one `now`. */
export function nextAttemptAt(attempts: number, arrival: Date, now: Date, schedule: Schedule): Date {
  const next = now.getTime() + backoffAfter(attempts, schedule);
  const lifetimeEnds = arrival.getTime() + schedule.maximalLifetime;
  // The last attempt comes when the lifetime ends, not up to a whole backoff after it.
  return new Date(Math.max(Math.min(next, lifetimeEnds), now.getTime() + 1000));
}

/** The message has been queued longer than its lifetime: a temporary failure now returns it. */
export function lifetimeOver(arrival: Date, now: Date, schedule: Schedule): boolean {
  return now.getTime() - arrival.getTime() >= schedule.maximalLifetime;
}

/** A delay warning is due (once): warnings are on and the message has waited that long. */
export function delayWarningDue(arrival: Date, now: Date, alreadyWarned: boolean, schedule: Schedule): boolean {
  return !alreadyWarned && schedule.delayWarning > 0 && now.getTime() - arrival.getTime() >= schedule.delayWarning;
}
