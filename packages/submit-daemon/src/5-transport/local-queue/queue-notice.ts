/**
 * The delivery status notice about a queued message, made ready to be
 * queued itself: its envelope (the null sender, to the message's sender),
 * and its bytes in the DATA form the queue keeps, produced by the message
 * encoder like any message's, with its checks. Null when no notice is due
 * (the null sender, NOTIFY leaving nobody). delivery-status-notice.ts
 * writes the report; this file feeds it what the queue knows.
 */
import { pipeline } from 'node:stream';
import { describeReply, describeStatus, parseEnvelopeBlock, statusOf, SubmissionParser, type Envelope, type Limits, type Recipient, type SubmissionError } from '@mailsubmit/shared';
import { isSmtpError } from '../smtp/index.ts';
import { deliveryStatusNotice, type NoticeReason, type RecipientResult } from './delivery-status-notice.ts';
import type { QueueEntry } from './queue-file-format.ts';
import type { QueuedMessage } from './queued-message.ts';
import { originalOf } from './queued-original.ts';

export interface NoticeRequest {
  readonly queueId: string;
  readonly envelope: Envelope;
  readonly arrivalTime: Date;
  readonly reason: NoticeReason;
  /** What the last attempt came to. */
  readonly error: SubmissionError;
  /** Opens the queued message (once for its header section, once more when the whole goes back). */
  readonly read: () => Promise<QueuedMessage>;
  readonly limits: Limits;
  readonly maximalLifetimeMs: number;
  readonly reportingHost: string;
  /** The uid the notice is queued under: the daemon's. */
  readonly uid: number;
  readonly now: Date;
}

export interface NoticeToQueue {
  readonly entry: QueueEntry;
  /** The notice in DATA form; read it once, whole. */
  readonly message: AsyncIterable<Uint8Array>;
  /** Its one recipient: the message's sender. */
  readonly to: string;
  /** Lets the original go unread if the notice is not queued after all. */
  close(): void;
}

export async function noticeToQueue(request: NoticeRequest): Promise<NoticeToQueue | null> {
  const { envelope, reason, error, now, limits } = request;
  const { original, wholeMessage } = await originalOf(await request.read(), request.read, limits.maxHeaderOctets);
  const failed = reason !== 'delay-warning';
  // A warning returns the header section, as Postfix's does; a failure the whole unless RET=HDRS.
  const returned = failed && envelope.returnOption !== 'HDRS' ? await wholeMessage() : undefined;
  const notice = deliveryStatusNotice({
    envelope,
    results: recipientResults(envelope.recipients, error, failed, now),
    reason,
    reportingHost: request.reportingHost,
    queueId: request.queueId,
    arrivalDate: request.arrivalTime,
    maximalLifetimeSeconds: Math.round(request.maximalLifetimeMs / 1000),
    original: { ...original, ...(returned !== undefined ? { message: returned } : {}) },
    now,
  });
  if (notice === null) {
    returned?.destroy();
    return null;
  }
  const noticeEnvelope = parseEnvelopeBlock(`sender: <>\nrecipient: <${notice.recipient.text}>\n\n`);
  const parser = new SubmissionParser({ limits: { ...limits, maxMessageOctets: Number.MAX_SAFE_INTEGER }, envelope: noticeEnvelope });
  pipeline(notice.content, parser, () => undefined);
  return {
    entry: { envelope: noticeEnvelope, caller: { uid: request.uid, user: null, frontDoor: 'notice', arrivalTime: now }, eightBit: notice.eightBit, localSubmission: false },
    message: parser,
    to: notice.recipient.text,
    close: () => {
      parser.destroy();
      returned?.destroy();
    },
  };
}

/** Per recipient: the MTA's reply to its RCPT where there was one, otherwise the failure of the whole. */
function recipientResults(recipients: readonly Recipient[], error: SubmissionError, failed: boolean, now: Date): RecipientResult[] {
  const replies = isSmtpError(error) ? error.recipientReplies : undefined;
  return recipients.map((recipient, index) => {
    const reply = replies?.[index];
    const own = reply !== undefined && reply.code >= 400 ? reply : isSmtpError(error) ? error.reply : undefined;
    return {
      recipient,
      action: failed ? 'failed' : 'delayed',
      // An expired message keeps its last temporary status, as Postfix's notices do.
      status: own?.enhanced ?? statusOf(error.outcome).enhanced,
      diagnostic: own !== undefined ? { text: describeReply(own) } : { type: 'x-mailsubmit', text: describeStatus(error.outcome, error.message) },
      lastAttempt: now,
    };
  });
}
