/**
 * Which downstreams a submission may go to, and in what order it tries
 * them: those whose selector takes it (front door, caller, sender domain;
 * an empty list takes all), healthy ones first by priority (lower first),
 * equal priorities shuffled by weight as SRV records are (RFC 2782), then
 * the unhealthy ones in the same order as a last resort: a submission that
 * finds every way down tries them rather than fail untried.
 */
import type { Address } from '@mailsubmit/shared';
import type { DownstreamConfig } from '../config/daemon-config.ts';
import type { Route } from './downstream.ts';

export interface Candidate {
  readonly config: DownstreamConfig;
  readonly healthy: boolean;
}

/** Whether this downstream's selector takes a submission by this route and sender. */
export function selects(config: DownstreamConfig, route: Route | undefined, sender: Address): boolean {
  if (config.doors.length > 0 && (route === undefined || !config.doors.includes(route.door))) return false;
  if (config.callers.length > 0 && (route?.caller == null || !config.callers.includes(route.caller))) return false;
  if (config.senderDomains.length > 0) {
    const at = sender.text.lastIndexOf('@');
    if (at < 0 || !config.senderDomains.includes(sender.text.slice(at + 1).toLowerCase())) return false;
  }
  return true;
}

/** The candidates that take this submission, in the order to try them; `random` in [0, 1). */
export function orderOfTrial<C extends Candidate>(candidates: readonly C[], route: Route | undefined, sender: Address, random: () => number): C[] {
  const taking = candidates.filter((c) => selects(c.config, route, sender));
  return [...byPriorityAndWeight(taking.filter((c) => c.healthy), random), ...byPriorityAndWeight(taking.filter((c) => !c.healthy), random)];
}

function byPriorityAndWeight<C extends Candidate>(candidates: readonly C[], random: () => number): C[] {
  // Efraimidis-Spirakis: sorting by random^(1/weight) draws without replacement in proportion to weight.
  const keyed = candidates.map((c) => ({ c, key: Math.pow(random(), 1 / c.config.weight) }));
  keyed.sort((a, b) => a.c.config.priority - b.c.config.priority || b.key - a.key);
  return keyed.map(({ c }) => c);
}
