/**
 * What the recording sink got, per message of a test: how many copies, and
 * through how many Postfix queue ids (the id Postfix's Received field
 * names). Two copies under one Postfix id are Postfix delivering its own
 * queue file again (`postfix stop` ended its delivery agent after the sink
 * said 250 and before the queue file was marked done); two Postfix ids
 * mean the message was handed to Postfix twice, which is mailsubmit's doing.
 */
import type { RecordedMessage } from './recording-sink.ts';

export interface Arrivals {
  readonly copies: number;
  /** The Postfix queue ids the copies came by. */
  readonly postfixIds: ReadonlySet<string>;
}

/** The id Postfix gave the message it relayed (its Received field's "with ESMTP id"), or null. */
export function postfixQueueId(message: RecordedMessage): string | null {
  return /^Received: [^]*?\bwith E?SMTP id ([0-9A-Za-z]+)/.exec(message.data.toString('latin1'))?.[1] ?? null;
}

/** Every message `idOf` names (undefined: not one of the test's), with its arrivals. */
export function arrivalsById(messages: readonly RecordedMessage[], idOf: (message: RecordedMessage) => string | undefined): Map<string, Arrivals> {
  const byId = new Map<string, { copies: number; postfixIds: Set<string> }>();
  for (const message of messages) {
    const id = idOf(message);
    if (id === undefined) continue;
    const entry = byId.get(id) ?? { copies: 0, postfixIds: new Set<string>() };
    entry.copies++;
    entry.postfixIds.add(postfixQueueId(message) ?? `unknown ${entry.copies}`);
    byId.set(id, entry);
  }
  return byId;
}
