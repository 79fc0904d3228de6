/**
 * sendmail(1) as the way to the MTA (downstream.transport = "sendmail").
 * Postfix's sendmail queues through postdrop; it tells no queue id, and it
 * cannot carry ORCPT (logged as omitted). See transport/sendmail-transport.ts.
 */
import { SubmissionError } from '@mailsubmit/shared';
import type { DaemonConfig } from '../config/daemon-config.ts';
import { sendViaSendmail } from '../transport/sendmail-transport.ts';
import type { Delivery, DeliveryRequest, Downstream } from './downstream.ts';

export class SendmailDownstream implements Downstream {
  readonly description: string;

  constructor(private readonly config: DaemonConfig) {
    this.description = `sendmail ${config.downstream.sendmailPath}`;
  }

  async deliver(request: DeliveryRequest): Promise<Delivery> {
    const { sendmailPath, sendmailConfigDirectory } = this.config.downstream;
    const result = await sendViaSendmail(request.envelope, request.body, {
      sendmailPath,
      timeoutMs: this.config.timeouts.sendmail,
      eightBit: request.eightBit,
      ...(request.signal !== undefined ? { signal: request.signal } : {}),
      ...(sendmailConfigDirectory !== null ? { configDirectory: sendmailConfigDirectory } : {}),
    });
    if (result.outcome !== 'ok') throw new SubmissionError(result.outcome, result.text);
    return { text: result.text, omitted: result.dropped };
  }

  async close(): Promise<void> {}
}
