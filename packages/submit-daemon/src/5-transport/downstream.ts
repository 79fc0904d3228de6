/**
 * What the daemon needs of a way to the MTA, whichever it is (SMTP, LMTP,
 * sendmail(1)): take one validated envelope and the encoded message, and
 * resolve only once the MTA has committed it; otherwise reject with a
 * SubmissionError whose outcome says what the caller should do.
 */
import type { Envelope, Recipient, SmtpReply } from '@mailsubmit/shared';

/** What a downstream's selector looks at (doors, callers, sender_domains). */
export interface Route {
  /** The front door's name: native, sendmail, qmail-queue. */
  readonly door: string;
  /** The caller's user name, as on the authorization list (null: a uid without one). */
  readonly caller: string | null;
}

export interface DeliveryRequest {
  readonly envelope: Envelope;
  /** The message as SMTP DATA bytes: CRLF lines, dot-stuffed, without the final dot. */
  readonly body: AsyncIterable<Uint8Array>;
  /** True when the message has (or may have) 8-bit octets. */
  readonly eightBit: boolean;
  readonly sizeEstimate?: number;
  /**
   * Aborted when the submission is (the helper went away): the transaction
   * is then abandoned without the final dot. The body alone cannot say so
   * once it has been read whole.
   */
  readonly signal?: AbortSignal;
  /**
   * The message was submitted on this host (the sendmail door): an SMTP
   * downstream sends XFORWARD SOURCE=LOCAL, so Postfix completes and
   * rewrites its header as for its own sendmail. Otherwise SOURCE=REMOTE:
   * the header section passes unchanged.
   */
  readonly localSubmission?: boolean;
  /**
   * The same bytes as `body` once more, where the message was read whole:
   * lets a submission move on to another downstream after the first one
   * read the body and then put it off. Absent: a one-shot stream.
   */
  readonly replay?: () => AsyncIterable<Uint8Array>;
  /** For the downstreams' selectors; absent: only downstreams without a selector take it. */
  readonly route?: Route;
}

export interface Delivery {
  /** The MTA's queue id, where it tells one. */
  readonly queueId?: string;
  /** The MTA's words, for the caller and the log (`250 2.0.0 Ok: queued as 4ABC123`). */
  readonly text: string;
  /** What the MTA could not be given (DSN without DSN support, ORCPT through sendmail). */
  readonly omitted: readonly string[];
  /** The downstream's name, where several are configured (downstream-set.ts). */
  readonly via?: string;
  /** The session's TLS, where STARTTLS protected it: for the log line. */
  readonly tls?: { readonly protocol: string; readonly cipher: string; readonly verified: boolean };
}

/**
 * What the MTA made of each address of an envelope (mailsubmit-sendmail
 * -bv), without a message: either the MTA's reply to each RCPT, for the
 * daemon to report, or, for the sendmail transport, the MTA's own
 * verification under way, whose report the MTA mails itself.
 */
export type Verification =
  | { readonly reportedBy: 'daemon'; readonly verdicts: readonly { readonly recipient: Recipient; readonly reply: SmtpReply }[]; readonly omitted: readonly string[] }
  | { readonly reportedBy: 'mta'; readonly omitted: readonly string[] };

export interface Downstream {
  /** For logs and `mailsubmitctl status`: `smtp 127.0.0.1:10026`. */
  readonly description: string;
  deliver(request: DeliveryRequest): Promise<Delivery>;
  /**
   * Verifies the envelope's recipients, delivering nothing; rejects with a
   * SubmissionError as deliver() does (MTA unreachable, sender refused).
   */
  verify(envelope: Envelope, route?: Route): Promise<Verification>;
  /**
   * Whether the MTA answers now (SMTP, LMTP: connect, greeting, EHLO),
   * without a transaction; rejects as deliver() does. The local queue asks
   * while messages wait for the MTA. Absent where asking costs as much as
   * a delivery (sendmail(1)): the queue then keeps to its backoff.
   */
  probe?(): Promise<void>;
  /** Closes idle connections; deliveries under way finish first. */
  close(): Promise<void>;
}
