/**
 * Each downstream on the metrics endpoint, by its name:
 *
 *   mailsubmit_downstream_healthy{downstream}              1 healthy, 0 unhealthy (probed until it answers)
 *   mailsubmit_downstream_deliveries_total{downstream}     messages it committed
 *   mailsubmit_downstream_failures_total{downstream,outcome}  attempts that failed there, by outcome
 *
 * The counts live in DownstreamTallies, which the daemon keeps across
 * reloads (a reload rebuilds the downstreams, and a counter must not go
 * back); health is read from the downstreams in force at each scrape.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export class DownstreamTallies {
  readonly deliveries = new Map<string, number>();
  /** By downstream name, then outcome. */
  readonly failures = new Map<string, Map<string, number>>();

  delivered(name: string): void {
    this.deliveries.set(name, (this.deliveries.get(name) ?? 0) + 1);
  }

  failed(name: string, outcome: string): void {
    const byOutcome = this.failures.get(name) ?? new Map<string, number>();
    byOutcome.set(outcome, (byOutcome.get(outcome) ?? 0) + 1);
    this.failures.set(name, byOutcome);
  }
}

export function registerDownstreamMetrics(registry: Registry, tallies: DownstreamTallies, health: () => readonly { readonly name: string; readonly healthy: boolean }[]): void {
  const registers = [registry];
  new Gauge({
    name: 'mailsubmit_downstream_healthy',
    help: 'Whether each downstream is healthy (1) or unhealthy and probed until it answers (0).',
    labelNames: ['downstream'],
    registers,
    collect() {
      this.reset();
      for (const { name, healthy } of health()) this.set({ downstream: name }, healthy ? 1 : 0);
    },
  });
  new Counter({
    name: 'mailsubmit_downstream_deliveries_total',
    help: 'Messages each downstream committed.',
    labelNames: ['downstream'],
    registers,
    collect() {
      this.reset();
      for (const { name } of health()) this.inc({ downstream: name }, 0);
      for (const [name, count] of tallies.deliveries) this.inc({ downstream: name }, count);
    },
  });
  new Counter({
    name: 'mailsubmit_downstream_failures_total',
    help: 'Attempts that failed at each downstream, by outcome (a submission that moved on counts at each it tried).',
    labelNames: ['downstream', 'outcome'],
    registers,
    collect() {
      this.reset();
      for (const [name, byOutcome] of tallies.failures) for (const [outcome, count] of byOutcome) this.inc({ downstream: name, outcome }, count);
    },
  });
}
