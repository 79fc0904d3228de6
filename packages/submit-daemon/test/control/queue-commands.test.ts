/**
 * The queue commands of the control protocol: what a request may carry
 * (parseRequest, with strict queue ids), and how a ControlServer carries
 * them to a QueueControl (a fake one in memory) and back: replies, refusals
 * with their reason, a daemon without a queue, and the log line of each
 * change.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CONTROL_COMMANDS, encodeRequest, parseRequest, type ControlReply } from '../../src/control/control-protocol.ts';
import { ControlServer } from '../../src/control/control-server.ts';
import { QueueControlError, type QueueControl } from '../../src/control/queue-control.ts';
import { createLogger } from '../../src/logging/logger.ts';
import { FakeQueueControl } from '../support/fake-queue-control.ts';
import { ask, askRaw } from './ask-control.ts';

const HELD = '0TPLJ2Q6A4F-1A1C3';
const DEFERRED = '0TPLIWVCL8B-1A1BI';
const ACTIVE = '0TPLJ9ZR0K2-1A1C8';
const ABSENT = '0TPLJ9ZR0K2-ZZZZ';

/** The fake queue with some of its methods replaced. */
function overriding(queue: QueueControl, methods: Partial<QueueControl>): QueueControl {
  return Object.assign(Object.create(queue) as QueueControl, methods);
}

describe('parseRequest: the queue commands', () => {
  it.each([
    ['{"command":"queue-list"}', { command: 'queue-list' }],
    ['{"protocol":1,"command":"queue-show","id":"0TPLIWVCL8B-1A1BI"}', { command: 'queue-show', id: DEFERRED }],
    ['{"command":"queue-flush"}', { command: 'queue-flush' }],
    ['{"command":"queue-flush","id":"0TPLIWVCL8B-1A1BI"}', { command: 'queue-flush', id: DEFERRED }],
    ['{"command":"queue-requeue"}', { command: 'queue-requeue' }],
    ['{"command":"queue-delete","id":"0TPLIWVCL8B-1A1BI"}', { command: 'queue-delete', id: DEFERRED }],
  ])('reads %s', (line, request) => {
    expect(parseRequest(line)).toEqual(request);
  });

  it.each([
    ['an id in lower case', '{"command":"queue-hold","id":"0tpliwvcl8b-1a1bi"}', /^"0tpliwvcl8b-1a1bi" is not a queue id$/],
    ['a path for an id', '{"command":"queue-delete","id":"../../etc/passwd"}', /^"\.\.\/\.\.\/etc\/passwd" is not a queue id$/],
    ['an id with a newline', '{"command":"queue-show","id":"0TPLIWVCL8B-1A1BI\\n"}', /is not a queue id$/],
    ['an id without its inode part', '{"command":"queue-release","id":"0TPLIWVCL8B"}', /is not a queue id$/],
    ['a number for an id', '{"command":"queue-hold","id":12}', /^12 is not a queue id$/],
    ['a missing id', '{"command":"queue-show"}', /^queue-show needs an "id"$/],
    ['an id for list', '{"command":"queue-list","id":"0TPLIWVCL8B-1A1BI"}', /^queue-list takes no "id"$/],
    ['an id for status', '{"command":"status","id":"0TPLIWVCL8B-1A1BI"}', /^status takes no "id"$/],
    ['an unknown queue command', '{"command":"queue-purge"}', /^unknown command "queue-purge" \(known: status, reload, queue-list, queue-show, queue-flush, queue-hold, queue-release, queue-delete, queue-requeue\)$/],
  ])('refuses %s', (_what, line, message) => {
    expect(() => parseRequest(line)).toThrow(message);
  });

  it('writes requests the daemon reads back, within the request size', () => {
    for (const command of CONTROL_COMMANDS) {
      const line = command === 'status' || command === 'reload' || command === 'queue-list' ? encodeRequest(command) : encodeRequest(command, DEFERRED);
      expect(line.length).toBeLessThan(200);
      expect(parseRequest(line)).toEqual(command.startsWith('queue-') && command !== 'queue-list' ? { command, id: DEFERRED } : { command });
    }
  });
});

describe('ControlServer: the queue commands', () => {
  let dir: string;
  let queue: FakeQueueControl;
  let current: QueueControl | null;
  let server: ControlServer;
  let path: string;
  const logged: Record<string, unknown>[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'control-queue-'));
    path = join(dir, 'control.sock');
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) logged.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    const target = { status: () => { throw new Error('not asked'); }, reload: () => { throw new Error('not asked'); } };
    server = new ControlServer(path, target, createLogger({ level: 'info', destination }), () => current);
    await server.listen();
  });

  beforeEach(() => {
    queue = new FakeQueueControl();
    current = queue;
    logged.length = 0;
  });

  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const request = (command: string, id?: string): Promise<ControlReply> => ask(path, { protocol: 1, command, ...(id === undefined ? {} : { id }) });
  const changes = () => logged.filter((line) => line.msg === 'queue changed by an administrator');

  it('lists the queue with its summary', async () => {
    const reply = await request('queue-list');
    expect(reply).toMatchObject({ protocol: 1, ok: true });
    if (!('queue_list' in reply)) throw new Error(JSON.stringify(reply));
    expect(reply.queue_list.messages.map((m) => [m.id, m.state])).toEqual([[DEFERRED, 'deferred'], [HELD, 'held'], [ACTIVE, 'active']]);
    expect(reply.queue_list.summary).toEqual({ messages: 3, octets: 2154 + 18_433 + 1102, held: 1, oldest_arrival: '2026-12-06T06:57:55.000Z' });
    expect(changes()).toEqual([]);
  });

  it('shows one message', async () => {
    const reply = await request('queue-show', HELD);
    if (!('queue_message' in reply)) throw new Error(JSON.stringify(reply));
    expect(reply.queue_message.listing.id).toBe(HELD);
    expect(reply.queue_message.envelope).toEqual(['sender: <www-data@example.org>', 'recipient: <customer@example.net>']);
    expect(reply.queue_message.message).toMatch(/^Subject: your order\n\nThank you\.\n/);
    expect(reply.queue_message.truncated).toBe(false);
    expect(queue.calls).toEqual([`show ${HELD}`]);
  });

  it.each([
    ['queue-hold', DEFERRED, 'held'],
    ['queue-release', HELD, 'due'],
    ['queue-flush', DEFERRED, 'due'],
    ['queue-requeue', DEFERRED, 'due'],
  ] as const)('%s acts on the message, answers its id and logs the change', async (command, id, state) => {
    const reply = await request(command, id);
    expect(reply).toEqual({ protocol: 1, ok: true, queue_action: { command, ids: [id] } });
    expect(queue.list().messages.find((m) => m.id === id)?.state).toBe(state);
    expect(queue.calls).toEqual([`${command.slice('queue-'.length)} ${id}`]);
    expect(changes()).toEqual([expect.objectContaining({ level: 30, command, count: 1, ids: [id] })]);
  });

  it('queue-delete removes the message', async () => {
    expect(await request('queue-delete', DEFERRED)).toEqual({ protocol: 1, ok: true, queue_action: { command: 'queue-delete', ids: [DEFERRED] } });
    expect(queue.list().messages.map((m) => m.id)).toEqual([HELD, ACTIVE]);
    expect(changes()).toEqual([expect.objectContaining({ command: 'queue-delete', ids: [DEFERRED] })]);
  });

  it('flush and requeue without an id act on every message not held, and answer the ids', async () => {
    expect(await request('queue-flush')).toEqual({ protocol: 1, ok: true, queue_action: { command: 'queue-flush', ids: [DEFERRED, ACTIVE] } });
    expect(await request('queue-requeue')).toEqual({ protocol: 1, ok: true, queue_action: { command: 'queue-requeue', ids: [DEFERRED, ACTIVE] } });
    expect(queue.calls).toEqual(['flush', 'requeue']);
    expect(queue.list().messages.find((m) => m.id === DEFERRED)).toMatchObject({ attempts: 0, last_error: null, state: 'due' });
    expect(changes().map((line) => line.command)).toEqual(['queue-flush', 'queue-requeue']);
  });

  it('a flush of a long queue logs how many and the first 100 ids, and answers them all', async () => {
    const many = Array.from({ length: 250 }, (_, i) => `0TPLJ9ZR0K2-${(1000 + i).toString(36).toUpperCase()}`);
    current = overriding(queue, { flush: () => Promise.resolve(many) });
    const reply = await request('queue-flush');
    expect(reply).toEqual({ protocol: 1, ok: true, queue_action: { command: 'queue-flush', ids: many } });
    expect(changes()).toEqual([expect.objectContaining({ command: 'queue-flush', count: 250, ids: many.slice(0, 100) })]);
  });

  it.each(['queue-show', 'queue-hold', 'queue-release', 'queue-delete', 'queue-flush', 'queue-requeue'])(
    '%s of an id the queue does not hold: "unknown-id", the queue unchanged, nothing logged as a change',
    async (command) => {
      const before = JSON.stringify(queue.list());
      expect(await request(command, ABSENT)).toEqual({ protocol: 1, ok: false, error: `no message ${ABSENT} in the local queue`, reason: 'unknown-id' });
      expect(JSON.stringify(queue.list())).toBe(before);
      expect(changes()).toEqual([]);
    },
  );

  it('passes the queue\'s refusal on as the error, reason "queue-refused", and logs it', async () => {
    expect(await request('queue-delete', ACTIVE)).toEqual({
      protocol: 1,
      ok: false,
      error: `message ${ACTIVE} is being delivered now; hold it, then delete it`,
      reason: 'queue-refused',
    });
    expect(queue.list().messages.map((m) => m.id)).toContain(ACTIVE);
    expect(changes()).toEqual([]);
    expect(logged).toContainEqual(expect.objectContaining({ level: 40, msg: 'queue request refused', command: 'queue-delete' }));
  });

  it('answers a queue that throws something else as a failure, and keeps serving', async () => {
    current = overriding(queue, { hold: () => Promise.reject(new Error('EIO: i/o error, rename')) });
    expect(await request('queue-hold', DEFERRED)).toEqual({ protocol: 1, ok: false, error: 'queue-hold failed: EIO: i/o error, rename' });
    current = overriding(queue, { list: () => { throw new QueueControlError('the queue is being recovered'); } });
    expect(await request('queue-list')).toEqual({ protocol: 1, ok: false, error: 'the queue is being recovered', reason: 'queue-refused' });
    current = queue;
    expect(await request('queue-list')).toMatchObject({ ok: true });
  });

  it('says so when the daemon runs without a local queue', async () => {
    current = null;
    for (const [command, id] of [['queue-list'], ['queue-hold', DEFERRED]] as const) {
      expect(await request(command, id)).toEqual({
        protocol: 1,
        ok: false,
        error: 'the local queue is not in use in this mailsubmitd (queue.directory)',
        reason: 'no-queue',
      });
    }
  });

  it('refuses a bad id before the queue sees it', async () => {
    const reply = JSON.parse(await askRaw(path, '{"command":"queue-delete","id":"*"}\n')) as ControlReply;
    expect(reply).toEqual({ protocol: 1, ok: false, error: '"*" is not a queue id' });
    expect(queue.calls).toEqual([]);
  });

  it('answers a queue action that is still under way once it completes', async () => {
    let finish: () => void = () => undefined;
    current = overriding(queue, { flush: () => new Promise<readonly string[]>((resolve) => (finish = () => resolve([DEFERRED]))) });
    const pending = request('queue-flush');
    await new Promise((resolve) => setTimeout(resolve, 50));
    finish();
    expect(await pending).toEqual({ protocol: 1, ok: true, queue_action: { command: 'queue-flush', ids: [DEFERRED] } });
  });
});

describe('ControlServer without a queue getter', () => {
  it('answers the queue commands with "no-queue"', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'control-noqueue-'));
    const target = { status: () => { throw new Error('not asked'); }, reload: () => { throw new Error('not asked'); } };
    const server = new ControlServer(join(dir, 'c.sock'), target, createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, done) => done() }) }));
    await server.listen();
    try {
      expect(await ask(join(dir, 'c.sock'), { command: 'queue-list' })).toMatchObject({ ok: false, reason: 'no-queue' });
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
