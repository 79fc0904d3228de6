/**
 * The queue runner on a real queue directory with an MTA in the test
 * process: what it does with each kind of attempt (delivered, put off,
 * refused, given up on), the probe that finds the MTA back, the order it
 * takes senders in, what a restart resumes, and the administrator's
 * actions. The schedule is driven by its own clock (`now`), never by
 * waiting: a "later" is the clock moved on and the runner asked again.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeReply, SubmissionError, type SmtpReply } from '@mailsubmit/shared';
import { LocalQueue } from '../../../src/5-transport/local-queue/local-queue.ts';
import { QueueRunner } from '../../../src/5-transport/local-queue/queue-runner.ts';
import type { Delivery, DeliveryRequest, Downstream } from '../../../src/5-transport/downstream.ts';
import { DownstreamMember } from '../../../src/5-transport/downstream-member.ts';
import { DownstreamSet } from '../../../src/5-transport/downstream-set.ts';
import { SmtpError } from '../../../src/5-transport/smtp/index.ts';
import type { DaemonConfig, DownstreamConfig } from '../../../src/config/daemon-config.ts';
import { createLogger } from '../../../src/logging/logger.ts';
import { FakeDownstream } from '../../support/fake-downstream.ts';
import { testConfig } from '../../support/test-config.ts';
import { until } from '../../../../../test/support/until.ts';
import { chunksOf, entryFor, NO_LIMITS, privateRoot } from './queue-fixtures.ts';

const START = new Date('2026-12-06T00:00:00.000Z');
const UNREACHABLE = new SubmissionError('mta-unreachable', 'connect to the MTA: connection refused');

let root: string;
let cleanup: () => Promise<void>;
let clock: Date;
let downstream: FakeDownstream;
let logLines: Record<string, unknown>[];
const runners: QueueRunner[] = [];

beforeEach(async () => {
  ({ root, cleanup } = await privateRoot());
  clock = START;
  downstream = new FakeDownstream();
  logLines = [];
});

afterEach(async () => {
  for (const runner of runners.splice(0)) await runner.stop(0);
  await cleanup();
});

async function startRunner(queue: Partial<DaemonConfig['queue']> = {}, through: Downstream = downstream): Promise<QueueRunner> {
  const config = testConfig({ queue: { minimalBackoff: 300_000, maximalBackoff: 4_000_000, maximalLifetime: 432_000_000, probeInterval: 3_600_000, ...queue } });
  const opened = await LocalQueue.open(root, { limits: NO_LIMITS });
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') logLines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const runner = new QueueRunner(opened.queue, {
    config: () => config,
    downstream: () => (through === downstream ? downstream : through),
    log: createLogger({ level: 'debug', destination: sink }),
    now: () => clock,
    hostName: 'mx.example.org',
  });
  runner.start(opened.recovery);
  runners.push(runner);
  return runner;
}

const MESSAGE = 'From: alice@example.org\r\nSubject: queued\r\nMessage-ID: <q1@example.org>\r\n\r\nhello\r\n..dot line\r\n';

function queueOne(runner: QueueRunner, block = 'sender: <alice@example.org>\nrecipient: <bob@example.net>\n\n', uid = 1000): Promise<string> {
  return runner.enqueue(entryFor(block, { uid, arrivalTime: clock }), chunksOf(MESSAGE), UNREACHABLE);
}

function logged(msg: string): Record<string, unknown>[] {
  return logLines.filter((line) => line.msg === msg);
}

/** Log lines reach the test after what they report: wait for `count` of them. */
async function untilLogged(msg: string, count = 1): Promise<void> {
  await until(() => logged(msg).length >= count, `${count} log line(s) "${msg}"`);
}

async function readyFiles(): Promise<string[]> {
  return readdir(join(root, 'ready'));
}

/** The messages the fake MTA committed, as the MAIL FROM address of each, in order. */
function committedSenders(): string[] {
  return downstream.committed.map((delivery) => delivery.request.envelope.sender.text);
}

/** An MTA that refuses one recipient permanently at RCPT, as Postfix refuses an unknown user. */
class RefusingRecipient extends FakeDownstream {
  constructor(private readonly refused: string) {
    super();
  }

  override deliver(request: DeliveryRequest): Promise<Delivery> {
    if (!this.unreachable && request.envelope.recipients.some((r) => r.address.text === this.refused)) {
      return Promise.reject(new SubmissionError('recipient-refused', `550 5.1.1 <${this.refused}>: no such user`));
    }
    return super.deliver(request);
  }
}

/**
 * An LMTP server that, after the data, delivers to some recipients,
 * refuses some for good and puts off the rest, by address; once `cured`,
 * it delivers to everyone it is sent.
 */
class LmtpPerRecipient extends FakeDownstream {
  cured = false;
  readonly sent: string[][] = [];

  constructor(private readonly answers: Readonly<Record<string, number>>) {
    super();
  }

  override async deliver(request: DeliveryRequest): Promise<Delivery> {
    this.sent.push(request.envelope.recipients.map((r) => r.address.text));
    const concerned = request.envelope.recipients.some((r) => this.answers[r.address.text] !== undefined);
    if (this.unreachable || this.cured || !concerned) return super.deliver(request);
    for await (const chunk of request.body) void chunk;
    const replies = request.envelope.recipients.map((r) => {
      const code = this.answers[r.address.text] ?? 250;
      return makeReply(code, [code === 250 ? '2.0.0 Saved' : code === 452 ? '4.2.2 Mailbox is full' : '5.1.1 No such user']);
    });
    const reply = replies.find((r) => r.code === 452) as SmtpReply;
    throw new SmtpError('ERR_LMTP_RECIPIENT_REFUSED', 'mta-tempfail', 'end of data answered per recipient', { stage: 'lmtp-data-end', reply, command: '.', recipientReplies: replies });
  }
}

describe('the queue runner', () => {
  it('keeps a message the MTA could not take, deferred by the minimal backoff, and delivers it with its envelope when the MTA answers', async () => {
    downstream.unreachable = true;
    const runner = await startRunner();
    const id = await queueOne(runner, 'sender: <alice@example.org>\ndsn-envelope-id: ENV1\nrecipient: <bob@example.net>\ndsn-notify-options: failure\ndsn-orig-rcpt: rfc822;bob@example.net\n\n');
    const [listed] = runner.list().messages;
    expect(listed).toMatchObject({ id, state: 'deferred', attempts: 1, next_attempt: '2026-12-06T00:05:00.000Z', sender: 'alice@example.org', recipients: ['bob@example.net'] });
    expect(listed?.last_error).toContain('connection refused');
    expect(runner.mtaUnreachable).toBe(UNREACHABLE);

    downstream.unreachable = false;
    runner.submissionEnded({ outcome: 'ok', text: '', durationMs: 1, octets: 1, at: Date.now() });
    await until(() => downstream.committed.length === 1, 'the delivery from the queue');
    await untilLogged('local queue: delivered');
    expect(await readyFiles()).toEqual([]);
    const delivered = downstream.committed[0];
    expect(delivered?.message?.toString()).toBe(MESSAGE);
    expect(delivered?.request.envelope.envelopeId).toBe('ENV1');
    expect(delivered?.request.envelope.recipients[0]).toMatchObject({ notify: ['FAILURE'], orcpt: { type: 'rfc822', value: 'bob@example.net' } });
    expect(delivered?.request.localSubmission).toBe(true);
    expect(logged('local queue: delivered')).toEqual([expect.objectContaining({ queue_id: id, mta_queue_id: 'FAKE1', attempts: 2 })]);
    expect(runner.mtaUnreachable).toBeNull();
    expect(runner.figures()).toMatchObject({ messages: 0, delivered: 1 });
  });

  it('probes the MTA while messages wait for it, and makes them due when a probe gets through', async () => {
    downstream.unreachable = true;
    const runner = await startRunner({ probeInterval: 20 });
    await queueOne(runner);
    await until(() => downstream.probes >= 2, 'two probes');
    expect(downstream.committed).toHaveLength(0);
    downstream.unreachable = false;
    await until(() => downstream.committed.length === 1, 'the delivery after a probe got through');
    expect(logLines.some((line) => String(line.msg).includes('the MTA answers again'))).toBe(true);
  });

  it('waits out the backoff, doubling it, while the MTA stays down', async () => {
    downstream.unreachable = true;
    const runner = await startRunner();
    const id = await queueOne(runner);
    for (const [minutes, nextAfter] of [[5, '00:15:00'], [15, '00:35:00']] as const) {
      clock = new Date(START.getTime() + minutes * 60_000);
      await runner.flush(id);
      await until(() => runner.list().messages[0]?.state === 'deferred', `the attempt at ${minutes} minutes to end`);
      expect(runner.list().messages[0]?.next_attempt).toBe(`2026-12-06T${nextAfter}.000Z`);
    }
    expect(runner.list().messages[0]?.attempts).toBe(3);
    expect(downstream.deliveries).toHaveLength(2);
  });

  it('returns a message the MTA refuses permanently with one notice, queued with the null sender, and then removes it', async () => {
    downstream = new RefusingRecipient('bob@example.net');
    downstream.unreachable = true;
    const runner = await startRunner();
    const id = await queueOne(runner);
    downstream.unreachable = false;
    await runner.flush(id);
    await until(() => downstream.committed.length === 1, 'the notice to go out');
    await untilLogged('local queue: removed, refused');
    await untilLogged('local queue: notice queued for the sender');
    expect(logged('local queue: removed, refused')).toEqual([expect.objectContaining({ queue_id: id })]);
    expect(logged('local queue: notice queued for the sender')).toEqual([expect.objectContaining({ queue_id: id, reason: 'refused' })]);
    const sent = downstream.committed[0];
    expect(sent?.request.envelope.sender.text).toBe('');
    const text = sent?.message?.toString() ?? '';
    expect(text).toContain('Content-Type: multipart/report; report-type=delivery-status');
    expect(text).toMatch(/Action: failed\r\n/);
    // The original goes back as written: its dot line un-stuffed, then stuffed again on the way out.
    expect(text).toContain('\r\n..dot line\r\n');
    // Delivered, then removed: the queue is empty once both are done.
    await until(() => runner.figures().messages === 0, 'the notice to leave the queue');
    expect(await readyFiles()).toEqual([]);
    expect(runner.figures()).toMatchObject({ bounces: 1, held: 0 });
  });

  it('after an LMTP server delivered to some recipients: tries only the others again, and tells the sender about the one refused for good', async () => {
    const lmtp = new LmtpPerRecipient({ 'full@example.net': 452, 'gone@example.net': 550 });
    downstream = lmtp;
    downstream.unreachable = true;
    const runner = await startRunner();
    const id = await queueOne(runner, 'sender: <alice@example.org>\nrecipient: <bob@example.net>\nrecipient: <full@example.net>\nrecipient: <gone@example.net>\n\n');
    downstream.unreachable = false;
    await runner.flush(id);
    await untilLogged('local queue: some recipients finished, the others wait');
    expect(logged('local queue: some recipients finished, the others wait')).toEqual([expect.objectContaining({ queue_id: id, delivered: 1, refused: 1, put_off: 1 })]);
    // The notice about gone@ alone, to the sender, with the null sender.
    await until(() => downstream.committed.length === 1, 'the notice to go out');
    const notice = downstream.committed[0]?.message?.toString() ?? '';
    expect(notice).toContain('Final-Recipient: rfc822; gone@example.net');
    expect(notice).not.toContain('Final-Recipient: rfc822; bob@example.net');
    expect(notice).not.toContain('Final-Recipient: rfc822; full@example.net');
    // The attempt ends with the put-off recipient's deferral.
    await until(() => logged('local queue: deferred').some((line) => line.queue_id === id && line.attempts === 2), 'the deferral after the attempt');
    await until(() => runner.figures().messages === 1, 'the notice to leave the queue');
    expect(runner.list().messages).toEqual([expect.objectContaining({ id, state: 'deferred', recipients: ['full@example.net'] })]);
    lmtp.cured = true;
    clock = new Date(START.getTime() + 600_000);
    await runner.flush(id);
    // The notice's delivery, then the message's.
    await until(() => logged('local queue: delivered').some((line) => line.queue_id === id), 'the message\'s delivery');
    expect(lmtp.sent.filter((recipients) => recipients.includes('bob@example.net'))).toHaveLength(1);
    expect(lmtp.sent.filter((recipients) => !recipients.includes('alice@example.org')).at(-1)).toEqual(['full@example.net']);
    expect(await readyFiles()).toEqual([]);
  });

  it('reads the message from its file again when the first downstream took it and put it off at the dot, for the next one', async () => {
    const first = new FakeDownstream({ at: 'dot', fault: { reply: '451 4.3.0 try another' } });
    const second = new FakeDownstream();
    const base = testConfig().downstreams[0] as DownstreamConfig;
    const quiet = createLogger({ level: 'silent' });
    const set = new DownstreamSet([new DownstreamMember({ ...base, name: 'first', priority: 1 }, first, quiet), new DownstreamMember({ ...base, name: 'second', priority: 2 }, second, quiet)], quiet);
    downstream.unreachable = true;
    const runner = await startRunner({}, set);
    const id = await queueOne(runner);
    await runner.flush(id);
    await untilLogged('local queue: delivered');
    expect(first.deliveries.map((d) => d.message?.toString())).toEqual([MESSAGE]);
    expect(second.committed.map((d) => d.message?.toString())).toEqual([MESSAGE]);
    expect(logged('local queue: delivered')).toEqual([expect.objectContaining({ queue_id: id, downstream: 'second' })]);
    expect(await readyFiles()).toEqual([]);
  });

  it('gives up on a message older than the lifetime at its next failure; with the null sender, without a notice', async () => {
    downstream.unreachable = true;
    const runner = await startRunner({ maximalLifetime: 3_600_000 });
    const first = await queueOne(runner);
    const bounce = await queueOne(runner, 'sender: <>\nrecipient: <bob@example.net>\n\n');
    // The last attempt is put off no further than the lifetime's end.
    clock = new Date(START.getTime() + 3_000_000);
    await runner.flush();
    await until(() => runner.list().messages.every((m) => m.state === 'deferred' && m.attempts === 2), 'the second attempts');
    expect(runner.list().messages.map((m) => m.next_attempt)).toEqual(['2026-12-06T01:00:00.000Z', '2026-12-06T01:00:00.000Z']);
    clock = new Date(START.getTime() + 3_600_000);
    await runner.flush();
    await until(() => logged('local queue: removed, expired').length === 2, 'both to expire');
    const left = runner.list().messages;
    expect(left).toEqual([expect.objectContaining({ sender: '', recipients: ['alice@example.org'], front_door: 'notice' })]);
    expect(logged('local queue: notice queued for the sender')).toEqual([expect.objectContaining({ queue_id: first, reason: 'expired' })]);
    expect(logged('local queue: removed, expired').map((line) => line.queue_id).sort()).toEqual([first, bounce].sort());
    expect(runner.figures()).toMatchObject({ bounces: 1, dropped: 1 });
  });

  it('sends one delay warning once a message has waited delay_warning_time, and not again', async () => {
    downstream.unreachable = true;
    const runner = await startRunner({ delayWarning: 600_000 });
    const id = await queueOne(runner);
    expect(logged('local queue: notice queued for the sender')).toEqual([]);
    for (const minutes of [11, 30]) {
      clock = new Date(START.getTime() + minutes * 60_000);
      await runner.flush(id);
      await until(() => runner.list().messages.find((m) => m.id === id)?.state === 'deferred', 'the attempt to end');
    }
    await untilLogged('local queue: notice queued for the sender');
    expect(logged('local queue: notice queued for the sender')).toEqual([expect.objectContaining({ queue_id: id, reason: 'delay-warning' })]);
    expect(runner.figures().delayWarnings).toBe(1);
  });

  it('takes due messages in turns by sender: one sender\'s many do not keep another\'s one waiting', async () => {
    downstream.unreachable = true;
    const runner = await startRunner({ maxDeliveries: 1 });
    for (let i = 0; i < 4; i++) await queueOne(runner, 'sender: <many@example.org>\nrecipient: <bob@example.net>\n\n', 1001);
    await queueOne(runner, 'sender: <one@example.org>\nrecipient: <bob@example.net>\n\n', 1002);
    downstream.unreachable = false;
    runner.submissionEnded({ outcome: 'ok', text: '', durationMs: 1, octets: 1, at: Date.now() });
    await until(() => downstream.committed.length === 5, 'all five');
    expect(committedSenders().indexOf('one@example.org')).toBeLessThanOrEqual(1);
  });

  it('resumes the queue after a restart, state and all, and keeps held messages held', async () => {
    downstream.unreachable = true;
    const before = await startRunner();
    const kept = await queueOne(before);
    const held = await queueOne(before);
    await before.hold(held);
    await before.stop(0);
    runners.splice(0);

    downstream.unreachable = false;
    // After a restart the MTA is probed at once rather than each message's backoff waited out.
    const after = await startRunner({ probeInterval: 20 });
    expect(after.list().messages.map((m) => [m.id, m.state === 'held'])).toEqual([[kept, false], [held, true]]);
    // Delivered, then removed: the list is down to the held one only once both are done.
    await until(() => after.list().messages.length === 1, 'the resumed delivery to end');
    expect(after.list().messages.map((m) => m.id)).toEqual([held]);
    expect(committedSenders()).toEqual(['alice@example.org']);
    await after.release(held);
    await until(() => downstream.committed.length === 2, 'the released one');
  });

  it('lets an administrator requeue, delete and show, and refuses what does not fit', async () => {
    downstream.unreachable = true;
    const runner = await startRunner();
    const id = await queueOne(runner);
    const other = await queueOne(runner);
    const shown = await runner.show(id);
    expect(shown.message).toBe(MESSAGE.replace(/\r\n/g, '\n').replace('\n..dot', '\n.dot'));
    expect(shown.envelope).toEqual(['sender: <alice@example.org>', 'recipient: <bob@example.net>']);
    expect(shown.truncated).toBe(false);
    expect((await runner.show(id, 10)).truncated).toBe(true);

    expect(await runner.requeue(id)).toEqual([id]);
    expect(runner.list().messages.find((m) => m.id === id)).toMatchObject({ attempts: 0, last_error: null });
    await runner.delete(other);
    expect(await readyFiles()).not.toContain(other);
    await untilLogged('local queue: deleted by the administrator, without a notice');
    expect(logged('local queue: deleted by the administrator, without a notice')).toEqual([expect.objectContaining({ queue_id: other })]);
    await expect(runner.delete(other)).rejects.toThrow(`no message ${other} in the local queue`);
    await expect(runner.release(id)).rejects.toThrow('is not held');
    await runner.hold(id);
    await expect(runner.flush(id)).rejects.toThrow('is held: release it first');
  });
});
