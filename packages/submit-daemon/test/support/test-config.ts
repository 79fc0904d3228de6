/**
 * A daemon configuration for unit tests: the defaults of an empty
 * mailsubmit.conf, with what a test changes laid over them (timeouts in
 * milliseconds, so that a deadline can be a fraction of a second).
 */
import type { DaemonConfig } from '../../src/config/daemon-config.ts';
import { parseConfig } from '../../src/config/load-config.ts';

export interface ConfigChanges {
  readonly text?: string;
  readonly spoolDirectory?: string;
  readonly limits?: Partial<DaemonConfig['limits']>;
  readonly timeouts?: Partial<DaemonConfig['timeouts']>;
  /** Laid over the first (usually the only) downstream. */
  readonly downstream?: Partial<DaemonConfig['downstreams'][number]>;
  readonly queue?: Partial<DaemonConfig['queue']>;
}

export function testConfig(changes: ConfigChanges = {}): DaemonConfig {
  const base = parseConfig(changes.text ?? '', 'test.conf');
  return {
    ...base,
    ...(changes.spoolDirectory !== undefined ? { spoolDirectory: changes.spoolDirectory } : {}),
    limits: { ...base.limits, ...changes.limits },
    timeouts: { ...base.timeouts, ...changes.timeouts },
    downstreams: base.downstreams.map((d, i) => (i === 0 ? { ...d, ...changes.downstream } : d)),
    queue: { ...base.queue, ...changes.queue },
  };
}
