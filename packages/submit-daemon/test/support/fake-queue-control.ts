/**
 * A QueueControl over messages held in memory, for tests of the control
 * socket and of `mailsubmitctl queue`: it keeps the interface's promises
 * (an unknown id or a message under delivery is a QueueControlError; flush
 * and requeue leave held messages alone) and records every call, so a test
 * can tell what reached the queue.
 */
import type { QueueControl, QueuedMessageDetail, QueueListing, QueueSummary } from '../../src/control/queue-control.ts';
import { QueueControlError, UnknownQueuedMessage } from '../../src/control/queue-control.ts';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export interface FakeQueuedMessage {
  listing: Mutable<QueueListing>;
  envelope: readonly string[];
  message: string;
}

/** The messages of the examples: one deferred with an error, one held, one under delivery (a bounce). */
export function sampleMessages(now = Date.parse('2026-12-06T10:00:00Z')): FakeQueuedMessage[] {
  const at = (secondsAgo: number) => new Date(now - secondsAgo * 1000).toISOString();
  const listing = (fields: Partial<QueueListing> & Pick<QueueListing, 'id' | 'arrival_time' | 'size' | 'sender' | 'recipients'>): Mutable<QueueListing> => ({
    state: 'deferred',
    age_s: Math.round((now - Date.parse(fields.arrival_time)) / 1000),
    caller_uid: 34,
    caller_user: 'backup',
    front_door: 'sendmail',
    attempts: 0,
    next_attempt: null,
    last_error: null,
    ...fields,
  });
  return [
    {
      listing: listing({
        id: '0TPLIWVCL8B-1A1BI',
        arrival_time: at(3 * 3600 + 125),
        size: 2154,
        sender: 'backup@example.org',
        recipients: ['ops@example.org', 'archive@example.org'],
        attempts: 4,
        next_attempt: at(-600),
        last_error: '451 4.3.0 Error: queue file write error',
      }),
      envelope: ['sender: <backup@example.org>', 'recipient: <ops@example.org>', 'recipient: <archive@example.org>'],
      message: 'Subject: nightly backup\n\nAll 12 volumes copied.\n',
    },
    {
      listing: listing({
        id: '0TPLJ2Q6A4F-1A1C3',
        state: 'held',
        arrival_time: at(40 * 60),
        size: 18_433,
        sender: 'www-data@example.org',
        recipients: ['customer@example.net'],
        caller_uid: 33,
        caller_user: 'www-data',
        attempts: 1,
        last_error: 'connect to 127.0.0.1:25: Connection refused',
      }),
      envelope: ['sender: <www-data@example.org>', 'recipient: <customer@example.net>'],
      message: `Subject: your order\n\n${'Thank you.\n'.repeat(1500)}`,
    },
    {
      listing: listing({
        id: '0TPLJ9ZR0K2-1A1C8',
        state: 'active',
        arrival_time: at(90),
        size: 1_102,
        sender: '',
        recipients: ['backup@example.org'],
        caller_uid: 0,
        caller_user: null,
        front_door: 'notice',
      }),
      envelope: ['sender: <>', 'recipient: <backup@example.org>'],
      message: 'Subject: Undelivered Mail Returned to Sender\n\n...\n',
    },
  ];
}

export class FakeQueueControl implements QueueControl {
  readonly calls: string[] = [];

  constructor(readonly messages: FakeQueuedMessage[] = sampleMessages()) {}

  list(): { readonly messages: readonly QueueListing[]; readonly summary: QueueSummary } {
    const listings = this.messages.map((m) => ({ ...m.listing }));
    return {
      messages: listings,
      summary: {
        messages: listings.length,
        octets: listings.reduce((sum, m) => sum + m.size, 0),
        held: listings.filter((m) => m.state === 'held').length,
        oldest_arrival: listings[0]?.arrival_time ?? null,
      },
    };
  }

  async show(id: string, limit = 1_048_576): Promise<QueuedMessageDetail> {
    this.calls.push(`show ${id}`);
    const found = this.find(id);
    return {
      listing: { ...found.listing },
      envelope: found.envelope,
      message: found.message.slice(0, limit),
      truncated: found.message.length > limit,
    };
  }

  async flush(id?: string): Promise<readonly string[]> {
    this.calls.push(id === undefined ? 'flush' : `flush ${id}`);
    return this.makeDue(id, () => undefined);
  }

  async hold(id: string): Promise<void> {
    this.calls.push(`hold ${id}`);
    this.find(id).listing.state = 'held';
  }

  async release(id: string): Promise<void> {
    this.calls.push(`release ${id}`);
    const found = this.find(id);
    if (found.listing.state !== 'held') throw new QueueControlError(`message ${id} is not held`);
    found.listing.state = 'due';
  }

  async delete(id: string): Promise<void> {
    this.calls.push(`delete ${id}`);
    const found = this.find(id);
    if (found.listing.state === 'active') throw new QueueControlError(`message ${id} is being delivered now; hold it, then delete it`);
    this.messages.splice(this.messages.indexOf(found), 1);
  }

  async requeue(id?: string): Promise<readonly string[]> {
    this.calls.push(id === undefined ? 'requeue' : `requeue ${id}`);
    return this.makeDue(id, (listing) => {
      listing.attempts = 0;
      listing.last_error = null;
    });
  }

  private makeDue(id: string | undefined, also: (listing: Mutable<QueueListing>) => void): string[] {
    const chosen = id === undefined ? this.messages.filter((m) => m.listing.state !== 'held') : [this.find(id)];
    for (const { listing } of chosen) {
      if (listing.state !== 'active') {
        listing.state = 'due';
        listing.next_attempt = null;
      }
      also(listing);
    }
    return chosen.map((m) => m.listing.id);
  }

  private find(id: string): FakeQueuedMessage {
    const found = this.messages.find((m) => m.listing.id === id);
    if (found === undefined) throw new UnknownQueuedMessage(id);
    return found;
  }
}
