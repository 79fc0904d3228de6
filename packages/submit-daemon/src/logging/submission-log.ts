/**
 * The one log line per submission: who, what envelope (addresses, counts,
 * every client/SASL/TLS attribute including those with no SMTP carrier),
 * how big, what the MTA said and its queue id, the outcome and how long it
 * took. Never message content.
 */
import { statusOf, type Envelope } from '@mailsubmit/shared';
import type { JobResult } from '../submission-job.ts';
import type { Logger } from './logger.ts';

export class SubmissionLog {
  constructor(private readonly log: Logger) {}

  /** `exitCode` is the status the reply carried (it depends on the front door). */
  record(context: Record<string, unknown>, result: JobResult, exitCode: number, durationMs: number, replyError: Error | null): void {
    try {
      this.write(context, result, exitCode, durationMs, replyError);
    } catch (err) {
      // The caller has its answer already; a log line that cannot be written must not take the daemon down.
      try {
        this.log.error({ ...context, status: result.outcome, exit: exitCode, err: err instanceof Error ? err.message : String(err) }, 'submission log line failed');
      } catch {
        // Nothing left to tell.
      }
    }
  }

  private write(context: Record<string, unknown>, result: JobResult, exitCode: number, durationMs: number, replyError: Error | null): void {
    const { exitCode: sysexit } = statusOf(result.outcome);
    const line = {
      ...context,
      status: result.outcome,
      exit: exitCode,
      ...(result.envelope ? envelopeFields(result.envelope) : {}),
      ...(result.stats ? { size: result.stats.octets, eight_bit: result.stats.eightBit } : {}),
      ...(result.queueId !== undefined ? { queue_id: result.queueId } : {}),
      ...(result.localQueueId !== undefined ? { local_queue_id: result.localQueueId, commitment: 'local-queue' } : result.outcome === 'ok' ? { commitment: 'mta' } : {}),
      ...(result.mtaText !== undefined ? { mta_reply: result.mtaText } : {}),
      ...(result.via !== undefined ? { downstream: result.via } : {}),
      ...(result.downstreamTls !== undefined ? { downstream_tls: result.downstreamTls } : {}),
      ...(result.omitted && result.omitted.length > 0 ? { omitted: result.omitted } : {}),
      ...(replyError ? { reply_error: replyError.message } : {}),
      duration_ms: Math.round(durationMs * 100) / 100,
      ...(result.outcome === 'ok' ? {} : { reason: result.text }),
    };
    if (result.outcome === 'ok') this.log.info(line, 'submission');
    else if (sysexit === 75 || sysexit === 78) this.log.warn(line, 'submission');
    else this.log.info(line, 'submission');
  }
}

function envelopeFields(envelope: Envelope): Record<string, unknown> {
  const { client, sasl, tls } = envelope;
  return {
    sender: envelope.sender.text,
    nrcpt: envelope.recipients.length,
    ...(envelope.size !== undefined ? { declared_size: envelope.size } : {}),
    ...(Object.keys(client).length > 0 ? { client: { ...client, ...(client.clientAddress ? { clientAddress: client.clientAddress.address } : {}) } } : {}),
    ...(Object.keys(sasl).length > 0 ? { sasl: { ...sasl, ...(sasl.sender ? { sender: sasl.sender.text } : {}) } } : {}),
    ...(Object.keys(tls).length > 0 ? { tls } : {}),
  };
}
