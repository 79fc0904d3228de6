/**
 * What `mailsubmitctl queue` can ask of the local queue, through the
 * control socket. The daemon's queue runner (5-transport/local-queue/
 * queue-runner.ts) implements it; the control server only carries the
 * requests and replies (control-protocol.ts).
 *
 * Ids are local-queue ids (5-transport/local-queue/queue-id.ts). An id the
 * queue does not hold is a QueueControlError naming it, never a crash.
 * Every action that changes the queue is logged by the runner, with the id.
 */

/** Where a queued message stands. */
export type QueuedMessageState =
  /** Waiting for its next attempt (next_attempt in the future). */
  | 'deferred'
  /** Due: its attempt starts as soon as a delivery slot is free. */
  | 'due'
  /** Being delivered now. */
  | 'active'
  /** Held by an administrator: never attempted until released. */
  | 'held';

/** One message, as `mailsubmitctl queue list` shows it. Times are ISO 8601, sizes octets. */
export interface QueueListing {
  readonly id: string;
  readonly state: QueuedMessageState;
  readonly arrival_time: string;
  readonly age_s: number;
  /** The queue file's message octets (DATA form). */
  readonly size: number;
  /** The envelope sender without angle brackets; "" for the null sender. */
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly caller_uid: number;
  readonly caller_user: string | null;
  /** native, sendmail, qmail-queue; "notice" for a delivery status notice mailsubmit wrote itself. */
  readonly front_door: string;
  readonly attempts: number;
  /** Null: due now (or held). */
  readonly next_attempt: string | null;
  /** The MTA's words at the last failed attempt, on one line. */
  readonly last_error: string | null;
}

/** `mailsubmitctl queue show ID`: the listing, the envelope's attributes and the message text. */
export interface QueuedMessageDetail {
  readonly listing: QueueListing;
  /** The envelope as the native block writes it (sender:, recipient:, attributes), one line each. */
  readonly envelope: readonly string[];
  /** The message as the caller wrote it (line ends as LF), up to `limit` octets. */
  readonly message: string;
  /** True when the message is longer than what `message` holds. */
  readonly truncated: boolean;
}

/** Totals, for the mailq-style summary line (`-- 12 Kbytes in 3 Requests.`). */
export interface QueueSummary {
  readonly messages: number;
  readonly octets: number;
  readonly held: number;
  readonly oldest_arrival: string | null;
}

export interface QueueControl {
  /** Every message, oldest first, and the totals. */
  list(): { readonly messages: readonly QueueListing[]; readonly summary: QueueSummary };
  /** One message; `limit` caps the message text returned (default 1 MiB). */
  show(id: string, limit?: number): Promise<QueuedMessageDetail>;
  /** Makes one message (or, without an id, every message not held) due now. Returns the ids made due. */
  flush(id?: string): Promise<readonly string[]>;
  /** Keeps the message out of delivery until released (a delivery under way finishes first). */
  hold(id: string): Promise<void>;
  /** Ends a hold; the message is due at once. */
  release(id: string): Promise<void>;
  /** Removes the message without delivering it and without a notice to its sender. */
  delete(id: string): Promise<void>;
  /**
   * Forgets the retry history of one message (or, without an id, of every
   * message not held): attempts 0, no last error, due at once. Its lifetime
   * still counts from its arrival. Returns the ids requeued.
   */
  requeue(id?: string): Promise<readonly string[]>;
}

/** A request the queue cannot carry out (unknown id, a message under delivery): its text goes to the administrator. */
export class QueueControlError extends Error {
  readonly code: string = 'ERR_QUEUE_CONTROL';
  override readonly name: string = 'QueueControlError';
}

/** The id names no message the queue holds (never held, or delivered, returned or deleted since). */
export class UnknownQueuedMessage extends QueueControlError {
  override readonly code = 'ERR_QUEUE_UNKNOWN_ID';
  override readonly name = 'UnknownQueuedMessage';

  constructor(id: string) {
    super(`no message ${id} in the local queue`);
  }
}
