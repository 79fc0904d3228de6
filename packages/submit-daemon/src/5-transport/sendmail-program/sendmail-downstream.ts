/**
 * sendmail(1) as the way to the MTA (downstream.transport = "sendmail").
 * Postfix's sendmail queues through postdrop; it tells no queue id, and it
 * cannot carry ORCPT (logged as omitted). See 5-transport/sendmail-program/sendmail-transport.ts.
 */
import { SubmissionError, type Envelope } from '@mailsubmit/shared';
import type { DaemonConfig, DownstreamConfig } from '../../config/daemon-config.ts';
import { sendViaSendmail, verifyViaSendmail } from './sendmail-transport.ts';
import type { Delivery, DeliveryRequest, Downstream, Verification } from '../downstream.ts';

export class SendmailDownstream implements Downstream {
  readonly description: string;

  constructor(
    private readonly downstream: DownstreamConfig,
    private readonly timeouts: DaemonConfig['timeouts'],
  ) {
    this.description = `sendmail ${downstream.sendmailPath}`;
  }

  async deliver(request: DeliveryRequest): Promise<Delivery> {
    const { sendmailPath, sendmailConfigDirectory } = this.downstream;
    const result = await sendViaSendmail(request.envelope, request.body, {
      sendmailPath,
      timeoutMs: this.timeouts.sendmail,
      eightBit: request.eightBit,
      ...(request.signal !== undefined ? { signal: request.signal } : {}),
      ...(sendmailConfigDirectory !== null ? { configDirectory: sendmailConfigDirectory } : {}),
    });
    if (result.outcome !== 'ok') throw new SubmissionError(result.outcome, result.text);
    return { text: result.text, omitted: result.dropped };
  }

  /** Postfix's own sendmail -bv: the MTA verifies and mails the report itself. */
  async verify(envelope: Envelope): Promise<Verification> {
    const { sendmailPath, sendmailConfigDirectory } = this.downstream;
    const result = await verifyViaSendmail(envelope, {
      sendmailPath,
      timeoutMs: this.timeouts.sendmail,
      ...(sendmailConfigDirectory !== null ? { configDirectory: sendmailConfigDirectory } : {}),
    });
    if (result.outcome !== 'ok') throw new SubmissionError(result.outcome, result.text);
    return { reportedBy: 'mta', omitted: result.dropped };
  }

  async close(): Promise<void> {}
}
