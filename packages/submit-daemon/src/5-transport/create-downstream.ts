/** Picks the downstream the configuration names. */
import type { DaemonConfig } from '../config/daemon-config.ts';
import type { Downstream } from './downstream.ts';
import { SendmailDownstream } from './sendmail-program/sendmail-downstream.ts';
import { SmtpDownstream } from './smtp/smtp-downstream.ts';

export function createDownstream(config: DaemonConfig): Downstream {
  return config.downstream.transport === 'sendmail' ? new SendmailDownstream(config) : new SmtpDownstream(config);
}
