/**
 * The local queue's figures on the metrics endpoint, read from the queue
 * runner at each scrape (QueueRunner.figures()), so the endpoint shows the
 * queue as it is, not as an event stream last left it.
 *
 *   mailsubmit_local_queue_messages                   messages waiting, held ones included
 *   mailsubmit_local_queue_bytes                      their message octets
 *   mailsubmit_local_queue_oldest_age_seconds         age of the oldest one; 0 when empty
 *   mailsubmit_local_queue_deliveries_total           messages the MTA took from the queue
 *   mailsubmit_local_queue_retries_total              failed attempts that left a message queued
 *   mailsubmit_local_queue_bounces_total              notices queued for refused or expired messages
 *   mailsubmit_local_queue_delay_warnings_total       delay warnings queued
 *   mailsubmit_local_queue_dropped_total              messages removed without a notice (null sender, NOTIFY=NEVER)
 *
 * The counters count from the daemon's start, as the runner does; a
 * restart resets them, which rate() and increase() expect of a counter.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { QueueFigures } from '../5-transport/local-queue/queue-figures.ts';

type CountedFigure = 'delivered' | 'retries' | 'bounces' | 'delayWarnings' | 'dropped';

const COUNTERS: readonly { readonly name: string; readonly help: string; readonly figure: CountedFigure }[] = [
  { name: 'mailsubmit_local_queue_deliveries_total', help: 'Messages from the local queue the MTA accepted.', figure: 'delivered' },
  { name: 'mailsubmit_local_queue_retries_total', help: 'Failed attempts from the local queue after which the message stayed queued.', figure: 'retries' },
  { name: 'mailsubmit_local_queue_bounces_total', help: 'Delivery status notices queued for messages refused or expired in the local queue.', figure: 'bounces' },
  { name: 'mailsubmit_local_queue_delay_warnings_total', help: 'Delay warnings queued for messages still in the local queue.', figure: 'delayWarnings' },
  { name: 'mailsubmit_local_queue_dropped_total', help: 'Messages removed from the local queue without a notice (null sender, NOTIFY=NEVER).', figure: 'dropped' },
];

/** `figures` is read at each scrape; null while the queue is not open (every series reads 0). */
export function registerLocalQueueMetrics(registry: Registry, figures: () => QueueFigures | null, now: () => Date = () => new Date()): void {
  const registers = [registry];
  const gauge = (name: string, help: string, value: (f: QueueFigures) => number): void => {
    new Gauge({
      name,
      help,
      registers,
      collect() {
        const f = figures();
        this.set(f === null ? 0 : value(f));
      },
    });
  };
  gauge('mailsubmit_local_queue_messages', 'Messages in the local queue, held ones included.', (f) => f.messages);
  gauge('mailsubmit_local_queue_bytes', 'Message octets in the local queue.', (f) => f.octets);
  gauge('mailsubmit_local_queue_oldest_age_seconds', 'Age of the oldest message in the local queue, in seconds; 0 when it is empty.', (f) =>
    f.oldestArrival === null ? 0 : Math.max(0, (now().getTime() - f.oldestArrival.getTime()) / 1000),
  );
  for (const { name, help, figure } of COUNTERS) {
    new Counter({
      name,
      help,
      registers,
      collect() {
        // The runner keeps the running total; the counter shows it as it is now.
        this.reset();
        this.inc(figures()?.[figure] ?? 0);
      },
    });
  }
}
