/**
 * What a reload (SIGHUP, `mailsubmitctl reload`) may change in a running
 * daemon, and what only a restart can: each key's `applies` in
 * config-keys.ts says where its new value takes effect, and why a restart
 * is needed where it is. Everything but the restart keys applies to the
 * next submission; submissions in progress finish with the configuration
 * they were admitted under.
 */
import { CONFIG_KEYS, fieldOf, isDownstreamPath, withField, type Effect } from './config-keys.ts';
import type { DaemonConfig } from './daemon-config.ts';

export type { Effect } from './config-keys.ts';

/** Every configuration key a restart is needed for, for documentation and replies. */
export const RESTART_KEYS: readonly string[] = CONFIG_KEYS.filter((k) => k.applies === 'restart').map((k) => k.key);

export interface ConfigChange {
  readonly key: string;
  readonly effect: Effect;
}

/** The keys whose values differ between two configurations, in file order. */
export function changedKeys(before: DaemonConfig, after: DaemonConfig): ConfigChange[] {
  return CONFIG_KEYS.filter((spec) => JSON.stringify(fieldOf(before, spec.into)) !== JSON.stringify(fieldOf(after, spec.into))).map(
    ({ key, applies }) => ({ key, effect: applies }),
  );
}

/**
 * The configuration a reload puts in force: the new file's values, except
 * for the keys only a restart can change, which keep the running values.
 */
export function reloadableMerge(running: DaemonConfig, next: DaemonConfig): DaemonConfig {
  let merged: DaemonConfig = { ...next, source: running.source };
  for (const spec of CONFIG_KEYS) {
    if (spec.applies === 'restart' && !isDownstreamPath(spec.into)) merged = withField(merged, spec.into, fieldOf(running, spec.into));
  }
  return merged;
}
