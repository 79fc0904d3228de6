/**
 * The downstreams the configuration names, as one DownstreamSet. Throws
 * (an AuthSecretError) when a downstream's AUTH secret cannot be read
 * safely: the daemon then does not start, and a reload keeps the running
 * downstreams.
 */
import { readAuthSecret } from '../config/auth-secret.ts';
import type { DaemonConfig, DownstreamConfig } from '../config/daemon-config.ts';
import type { Logger } from '../logging/logger.ts';
import type { DownstreamTallies } from '../metrics/downstream-metrics.ts';
import type { Downstream } from './downstream.ts';
import { DownstreamMember } from './downstream-member.ts';
import { DownstreamSet } from './downstream-set.ts';
import { SendmailDownstream } from './sendmail-program/sendmail-downstream.ts';
import { SmtpDownstream } from './smtp/smtp-downstream.ts';

export function createDownstream(config: DaemonConfig, log: Logger, tallies?: DownstreamTallies): DownstreamSet {
  return new DownstreamSet(
    config.downstreams.map((downstream) => new DownstreamMember(downstream, createOne(downstream, config), log)),
    log,
    tallies,
  );
}

function createOne(downstream: DownstreamConfig, config: DaemonConfig): Downstream {
  if (downstream.transport === 'sendmail') return new SendmailDownstream(downstream, config.timeouts);
  const secret = downstream.authSecretFile === null ? null : readAuthSecret(downstream.authSecretFile);
  return new SmtpDownstream(downstream, config.timeouts, secret);
}
