/**
 * Several downstreams as one (downstream-set.ts, downstream-selection.ts,
 * downstream-member.ts): the order of trial by selector, health, priority
 * and weight; moving on after a temporary failure and only where the MTA
 * cannot have the message; health marked by failures of the way and
 * restored by a background probe.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { makeReply, SubmissionError } from '@mailsubmit/shared';
import pino from 'pino';
import type { DownstreamConfig } from '../../src/config/daemon-config.ts';
import type { DeliveryRequest, Downstream } from '../../src/5-transport/downstream.ts';
import { DownstreamMember } from '../../src/5-transport/downstream-member.ts';
import { orderOfTrial, selects } from '../../src/5-transport/downstream-selection.ts';
import { DownstreamSet, failedAt } from '../../src/5-transport/downstream-set.ts';
import { DownstreamTallies } from '../../src/metrics/downstream-metrics.ts';
import { SmtpError } from '../../src/5-transport/smtp/index.ts';
import { FakeDownstream } from '../support/fake-downstream.ts';
import { rejection } from '../support/rejection.ts';
import { testConfig } from '../support/test-config.ts';
import { address, chunks, envelope, MESSAGE } from './smtp/test-envelopes.ts';

const quiet = pino({ level: 'silent' });
let tallies = new DownstreamTallies();
const BASE = testConfig().downstreams[0] as DownstreamConfig;

function downstreamConfig(name: string, extra: Partial<DownstreamConfig> = {}): DownstreamConfig {
  return { ...BASE, name, ...extra };
}

function setOf(...members: [DownstreamConfig, Downstream][]): DownstreamSet {
  return new DownstreamSet(
    members.map(([config, downstream]) => new DownstreamMember(config, downstream, quiet)),
    quiet,
    tallies,
    () => 0.5,
  );
}

function request(extra: Partial<DeliveryRequest> = {}): DeliveryRequest {
  return { envelope: envelope(), body: chunks(MESSAGE), eightBit: false, ...extra };
}

/** A downstream that reads the whole body, then fails as an SMTP client does at the end of the data. */
class FailingAtTheDot implements Downstream {
  readonly description = 'failing at the dot';
  bodies: string[] = [];
  constructor(private readonly error: SmtpError) {}
  async deliver(request: DeliveryRequest): Promise<never> {
    const parts: Buffer[] = [];
    for await (const chunk of request.body) parts.push(Buffer.from(chunk));
    this.bodies.push(Buffer.concat(parts).toString());
    throw this.error;
  }
  verify(): Promise<never> {
    return Promise.reject(this.error);
  }
  async close(): Promise<void> {}
}

afterEach(() => {
  vi.useRealTimers();
  tallies = new DownstreamTallies();
});

describe('which downstreams take a submission', () => {
  const route = { door: 'sendmail', caller: 'alice' };

  it('takes every submission without a selector, and only the selected ones with one', () => {
    expect(selects(downstreamConfig('all'), route, address('a@example.org'))).toBe(true);
    expect(selects(downstreamConfig('all'), undefined, address(''))).toBe(true);
    expect(selects(downstreamConfig('doors', { doors: ['native'] }), route, address('a@example.org'))).toBe(false);
    expect(selects(downstreamConfig('doors', { doors: ['native', 'sendmail'] }), route, address('a@example.org'))).toBe(true);
    expect(selects(downstreamConfig('callers', { callers: ['bob'] }), route, address('a@example.org'))).toBe(false);
    expect(selects(downstreamConfig('callers', { callers: ['alice'] }), route, address('a@example.org'))).toBe(true);
    expect(selects(downstreamConfig('callers', { callers: ['alice'] }), { door: 'native', caller: null }, address('a@example.org'))).toBe(false);
    const domains = downstreamConfig('domains', { senderDomains: ['example.org'] });
    expect(selects(domains, route, address('a@EXAMPLE.org'))).toBe(true);
    expect(selects(domains, route, address('a@example.com'))).toBe(false);
    expect(selects(domains, route, address(''))).toBe(false);
  });

  it('orders healthy ones by priority, then the unhealthy as a last resort', () => {
    const candidates = [
      { config: downstreamConfig('second', { priority: 20 }), healthy: true },
      { config: downstreamConfig('down', { priority: 1 }), healthy: false },
      { config: downstreamConfig('first', { priority: 10 }), healthy: true },
      { config: downstreamConfig('other-door', { priority: 0, doors: ['native'] }), healthy: true },
    ];
    expect(orderOfTrial(candidates, route, address('a@example.org'), Math.random).map((c) => c.config.name)).toEqual(['first', 'second', 'down']);
  });

  it('shares equal priorities in proportion to weight', () => {
    const candidates = [
      { config: downstreamConfig('light', { weight: 1 }), healthy: true },
      { config: downstreamConfig('heavy', { weight: 3 }), healthy: true },
    ];
    // A fixed sequence of draws: the first downstream tried is counted over 4000 orders.
    let seed = 1;
    const random = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
    const first = { light: 0, heavy: 0 };
    for (let i = 0; i < 4000; i++) first[orderOfTrial(candidates, route, address('a@example.org'), random)[0]?.config.name as 'light' | 'heavy']++;
    expect(first.heavy / 4000).toBeGreaterThan(0.7);
    expect(first.heavy / 4000).toBeLessThan(0.8);
  });
});

describe('moving on to the next downstream', () => {
  it('delivers through the second when the first cannot be reached, and marks the first unhealthy', async () => {
    const first = new FakeDownstream();
    first.unreachable = true;
    const second = new FakeDownstream();
    const set = setOf([downstreamConfig('first', { priority: 1 }), first], [downstreamConfig('second', { priority: 2 }), second]);
    const delivery = await set.deliver(request());
    expect(delivery.via).toBe('second');
    expect(second.committed.map((d) => d.message?.toString())).toEqual([MESSAGE]);
    expect(set.members[0]?.healthy).toBe(false);
    expect(set.members[0]?.lastFailure?.outcome).toBe('mta-unreachable');
    expect(tallies.deliveries).toEqual(new Map([['second', 1]]));
    expect(tallies.failures).toEqual(new Map([['first', new Map([['mta-unreachable', 1]])]]));
    // The next submission goes to the healthy one first.
    first.unreachable = false;
    expect((await set.deliver(request())).via).toBe('second');
    expect(first.deliveries).toHaveLength(1);
    await set.close();
  });

  it('answers a permanent refusal at once, without trying another', async () => {
    const first = new FakeDownstream({ at: 'rcpt', fault: { reply: '550 5.1.1 no such user' } });
    const second = new FakeDownstream();
    const set = setOf([downstreamConfig('first', { priority: 1 }), first], [downstreamConfig('second', { priority: 2 }), second]);
    const err = await rejection(set.deliver(request()));
    expect(err.outcome).toBe('recipient-refused');
    expect(failedAt(err)).toBe('first');
    expect(second.deliveries).toHaveLength(0);
    expect(set.members[0]?.healthy).toBe(true);
  });

  it('moves on after a 4xx before the data, which leaves the downstream healthy', async () => {
    const first = new FakeDownstream({ at: 'mail', fault: { reply: '451 4.3.0 try again' } });
    const second = new FakeDownstream();
    const set = setOf([downstreamConfig('first', { priority: 1 }), first], [downstreamConfig('second', { priority: 2 }), second]);
    expect((await set.deliver(request())).via).toBe('second');
    expect(set.members[0]?.healthy).toBe(true);
  });

  it('sends the same bytes again after a 4xx to the end of the data, when the message was read whole', async () => {
    const refusal = new SmtpError('ERR_SMTP_REPLY', 'mta-tempfail', '452 4.3.1 insufficient storage', { stage: 'data-end', reply: makeReply(452, ['4.3.1 insufficient storage']) });
    const first = new FailingAtTheDot(refusal);
    const second = new FakeDownstream();
    const set = setOf([downstreamConfig('first', { priority: 1 }), first], [downstreamConfig('second', { priority: 2 }), second]);
    const delivery = await set.deliver(request({ replay: () => chunks(MESSAGE) }));
    expect(delivery.via).toBe('second');
    expect(first.bodies).toEqual([MESSAGE]);
    expect(second.committed[0]?.message?.toString()).toBe(MESSAGE);
  });

  it('stays with the failure when the body was read and cannot be read again', async () => {
    const refusal = new SmtpError('ERR_SMTP_REPLY', 'mta-tempfail', '452 4.3.1 insufficient storage', { stage: 'data-end', reply: makeReply(452, ['4.3.1 insufficient storage']) });
    const second = new FakeDownstream();
    const set = setOf([downstreamConfig('first', { priority: 1 }), new FailingAtTheDot(refusal)], [downstreamConfig('second', { priority: 2 }), second]);
    const err = await rejection(set.deliver(request()));
    expect(err).toBe(refusal);
    expect(failedAt(err)).toBe('first');
    expect(second.deliveries).toHaveLength(0);
  });

  it('never moves on once the final dot went out without a reply: the MTA may have the message', async () => {
    const silence = new SmtpError('ERR_SMTP_TIMEOUT', 'mta-timeout', 'no reply to the end of the data', { stage: 'data-end' });
    const second = new FakeDownstream();
    const set = setOf([downstreamConfig('first', { priority: 1 }), new FailingAtTheDot(silence)], [downstreamConfig('second', { priority: 2 }), second]);
    expect(await rejection(set.deliver(request({ replay: () => chunks(MESSAGE) })))).toBe(silence);
    expect(second.deliveries).toHaveLength(0);
  });

  it('never moves on after an LMTP server\'s per-recipient replies began', async () => {
    const partial = new SmtpError('ERR_LMTP_RECIPIENT_REFUSED', 'mta-tempfail', 'one recipient put off', { stage: 'lmtp-data-end' });
    const second = new FakeDownstream();
    const set = setOf([downstreamConfig('first', { priority: 1 }), new FailingAtTheDot(partial)], [downstreamConfig('second', { priority: 2 }), second]);
    expect(await rejection(set.deliver(request({ replay: () => chunks(MESSAGE) })))).toBe(partial);
    expect(second.deliveries).toHaveLength(0);
  });

  it('stops when the caller is gone', async () => {
    const first = new FakeDownstream();
    first.unreachable = true;
    const second = new FakeDownstream();
    const set = setOf([downstreamConfig('first', { priority: 1 }), first], [downstreamConfig('second', { priority: 2 }), second]);
    const gone = new AbortController();
    gone.abort(new SubmissionError('caller-gone', 'gone'));
    expect((await rejection(set.deliver(request({ signal: gone.signal })))).outcome).toBe('mta-unreachable');
    expect(second.deliveries).toHaveLength(0);
  });

  it('takes a route\'s selector into account', async () => {
    const forNative = new FakeDownstream();
    const forAll = new FakeDownstream();
    const set = setOf([downstreamConfig('native-only', { priority: 1, doors: ['native'] }), forNative], [downstreamConfig('all', { priority: 2 }), forAll]);
    expect((await set.forRoute({ door: 'sendmail', caller: 'alice' }).deliver(request())).via).toBe('all');
    expect((await set.forRoute({ door: 'native', caller: 'alice' }).deliver(request())).via).toBe('native-only');
    expect(forNative.committed).toHaveLength(1);
    expect(forAll.committed).toHaveLength(1);
  });
});

describe('health', () => {
  it('is restored by a background probe, every probe_interval until one gets through', async () => {
    vi.useFakeTimers();
    const downstream = new FakeDownstream();
    const member = new DownstreamMember(downstreamConfig('probed', { probeInterval: 10_000 }), downstream, quiet);
    downstream.unreachable = true;
    member.failed(new SubmissionError('mta-unreachable', 'connection refused'));
    expect(member.healthy).toBe(false);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(downstream.probes).toBe(1);
    expect(member.healthy).toBe(false);
    downstream.unreachable = false;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(downstream.probes).toBe(2);
    expect(member.healthy).toBe(true);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(downstream.probes).toBe(2);
    await member.close();
  });

  it('takes a 421 for a failure of the way, and a 4xx about one message not', () => {
    const member = new DownstreamMember(downstreamConfig('m'), new FakeDownstream(), quiet);
    member.failed(new SmtpError('ERR_SMTP_REPLY', 'mta-tempfail', '450 4.2.0 mailbox busy', { stage: 'rcpt', reply: makeReply(450, ['4.2.0 mailbox busy']) }));
    expect(member.healthy).toBe(true);
    member.failed(new SmtpError('ERR_SMTP_REPLY', 'mta-tempfail', '421 4.3.2 shutting down', { stage: 'mail', reply: makeReply(421, ['4.3.2 shutting down']) }));
    expect(member.healthy).toBe(false);
    void member.close();
  });

  it('probes through any downstream for the local queue, and has no probe where none can', async () => {
    const down = new FakeDownstream();
    down.unreachable = true;
    const up = new FakeDownstream();
    const set = setOf([downstreamConfig('down', { priority: 1 }), down], [downstreamConfig('up', { priority: 2 }), up]);
    await set.probe?.();
    expect(up.probes).toBe(1);
    up.unreachable = true;
    expect((await rejection(set.probe?.() ?? Promise.resolve())).outcome).toBe('mta-unreachable');
    const noProbe: Downstream = { description: 'sendmail', deliver: () => Promise.reject(new Error('unused')), verify: () => Promise.reject(new Error('unused')), close: async () => {} };
    expect(setOf([downstreamConfig('sendmail'), noProbe]).probe).toBeUndefined();
    await set.close();
  });
});
