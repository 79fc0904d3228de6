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
  readonly downstream?: Partial<DaemonConfig['downstream']>;
  readonly queue?: Partial<DaemonConfig['queue']>;
}

export function testConfig(changes: ConfigChanges = {}): DaemonConfig {
  const base = parseConfig(changes.text ?? '', 'test.conf');
  return {
    ...base,
    ...(changes.spoolDirectory !== undefined ? { spoolDirectory: changes.spoolDirectory } : {}),
    limits: { ...base.limits, ...changes.limits },
    timeouts: { ...base.timeouts, ...changes.timeouts },
    downstream: { ...base.downstream, ...changes.downstream },
    queue: { ...base.queue, ...changes.queue },
  };
}
