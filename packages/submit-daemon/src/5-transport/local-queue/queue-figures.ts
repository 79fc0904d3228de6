/**
 * The local queue in figures: what it holds now (one pass over the
 * entries) and what its attempts have come to since the daemon started.
 * The metrics endpoint (metrics/local-queue-metrics.ts) and
 * `mailsubmitctl status` ask often, so no listing is built for them.
 */
import type { QueueSummary } from '../../control/queue-control.ts';
import type { RunnerEntries } from './runner-entries.ts';

/** What the attempts came to since the start; delivery-attempt.ts counts them. */
export interface QueueCounts {
  delivered: number;
  retries: number;
  bounces: number;
  delayWarnings: number;
  /** Removed without a notice to anyone (a notice that could not be delivered, a null sender). */
  dropped: number;
}

/** Figures for the metrics endpoint. */
export interface QueueFigures extends Readonly<QueueCounts> {
  readonly messages: number;
  readonly octets: number;
  readonly held: number;
  readonly oldestArrival: Date | null;
}

export function noCounts(): QueueCounts {
  return { delivered: 0, retries: 0, bounces: 0, delayWarnings: 0, dropped: 0 };
}

export function queueFigures(entries: RunnerEntries, counts: Readonly<QueueCounts>): QueueFigures {
  let oldest: Date | null = null;
  let octets = 0;
  let held = 0;
  for (const entry of entries.values()) {
    octets += entry.size;
    if (entry.state.held) held++;
    if (oldest === null || entry.caller.arrivalTime < oldest) oldest = entry.caller.arrivalTime;
  }
  return { messages: entries.size, octets, held, oldestArrival: oldest, ...counts };
}

/** The totals, for the mailq-style summary line and `mailsubmitctl status`. */
export function queueSummary(figures: QueueFigures): QueueSummary {
  const { messages, octets, held, oldestArrival } = figures;
  return { messages, octets, held, oldest_arrival: oldestArrival?.toISOString() ?? null };
}
