/**
 * Who is queued: the front door's key for every caller, the list's queue
 * capability for anyone; and only the MTA's temporary failures.
 */
import { describe, expect, it } from 'vitest';
import { OUTCOMES, statusOf, type Capability, type Grant } from '@mailsubmit/shared';
import { QUEUED_OUTCOMES, queueingAllowed } from '../../../src/5-transport/local-queue/queue-policy.ts';
import { testConfig } from '../../support/test-config.ts';

function grant(...capabilities: Capability[]): Grant {
  return { matched: [], capabilities: new Set(capabilities), senders: [{ kind: 'any' }] };
}

describe('who is queued', () => {
  it('by default: the sendmail door, and on the other doors only callers with the queue capability', () => {
    const config = testConfig();
    expect(['sendmail', 'native', 'qmail-queue'].map((door) => queueingAllowed(door, grant(), config))).toEqual([true, false, false]);
    expect(['sendmail', 'native', 'qmail-queue'].map((door) => queueingAllowed(door, grant('queue'), config))).toEqual([true, true, true]);
  });

  it('follows each door\'s key', () => {
    const config = testConfig({ queue: { sendmailDoor: false, nativeDoor: true, qmailQueueDoor: true } });
    expect(['sendmail', 'native', 'qmail-queue'].map((door) => queueingAllowed(door, grant('client'), config))).toEqual([false, true, true]);
    expect(queueingAllowed('sendmail', grant('queue'), config)).toBe(true);
  });

  it('queues only temporary failures of the MTA, never the caller\'s doing or a permanent refusal', () => {
    expect([...QUEUED_OUTCOMES].sort()).toEqual(['mta-protocol', 'mta-tempfail', 'mta-timeout', 'mta-unreachable']);
    for (const outcome of QUEUED_OUTCOMES) expect(statusOf(outcome).exitCode, outcome).toBe(75);
    expect(OUTCOMES.filter((o) => o.startsWith('mta-')).every((o) => QUEUED_OUTCOMES.has(o))).toBe(true);
  });
});
