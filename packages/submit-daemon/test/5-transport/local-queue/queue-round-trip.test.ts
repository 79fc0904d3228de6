import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalQueue } from '../../../src/5-transport/local-queue/local-queue.ts';
import { isQueueId } from '../../../src/5-transport/local-queue/queue-id.ts';
import { chunksOf, entryFor, FULL_ENVELOPE_BLOCK, MINIMAL_ENVELOPE_BLOCK, NO_LIMITS, patternedBody, privateRoot, readAll, withoutLines } from './queue-fixtures.ts';

let root: string;
let cleanup: () => Promise<void>;

beforeEach(async () => {
  ({ root, cleanup } = await privateRoot());
});
afterEach(async () => cleanup());

describe('local queue: a message in and back out', () => {
  it('keeps every envelope attribute kind, the caller facts and an 8-bit body', async () => {
    const { queue } = await LocalQueue.open(root, { limits: NO_LIMITS });
    const entry = entryFor(FULL_ENVELOPE_BLOCK);
    const body = Buffer.concat([Buffer.from('Subject: Grüße\r\n\r\n', 'utf8'), Buffer.from([0x00, 0x80, 0xff, 0x0d, 0x0a]), Buffer.from('..dot-stuffed\r\n')]);
    const committed = await queue.enqueue(entry, chunksOf(body.subarray(0, 7), body.subarray(7)));
    expect(isQueueId(committed.queueId)).toBe(true);
    expect(committed.messageOctets).toBe(body.length);

    const back = await queue.read(committed.queueId);
    expect(withoutLines(back.envelope)).toEqual(withoutLines(entry.envelope));
    expect(back.envelope.asserted).toEqual(entry.envelope.asserted);
    expect(back.caller).toEqual(entry.caller);
    expect(back.eightBit).toBe(true);
    expect(back.localSubmission).toBe(true);
    expect(back.queueId).toBe(committed.queueId);
    expect(await readAll(back.message)).toEqual(body);
  });

  it('reads back a caller without a user name, false flags and an empty message', async () => {
    const { queue } = await LocalQueue.open(root, { limits: NO_LIMITS });
    const entry = { ...entryFor(MINIMAL_ENVELOPE_BLOCK, { user: null, frontDoor: 'qmail-queue', uid: 0 }), eightBit: false, localSubmission: false };
    const { queueId } = await queue.enqueue(entry, chunksOf());
    const back = await queue.read(queueId);
    expect(back.caller).toEqual(entry.caller);
    expect(back.envelope.sender.text).toBe('');
    expect([back.eightBit, back.localSubmission]).toEqual([false, false]);
    expect((await readAll(back.message)).length).toBe(0);
  });

  it('streams a large message in and out unchanged', async () => {
    const { queue } = await LocalQueue.open(root, { limits: NO_LIMITS });
    const total = 24 * 1024 * 1024 + 17;
    const hashIn = createHash('sha256');
    for await (const chunk of patternedBody(total)) hashIn.update(chunk);
    const { queueId, messageOctets, octets } = await queue.enqueue(entryFor(FULL_ENVELOPE_BLOCK), patternedBody(total));
    expect(messageOctets).toBe(total);
    expect(queue.usage()).toEqual({ count: 1, octets });
    const back = await queue.read(queueId);
    const hashOut = createHash('sha256');
    let seen = 0;
    for await (const chunk of back.message as AsyncIterable<Buffer>) {
      hashOut.update(chunk);
      seen += chunk.length;
    }
    expect(seen).toBe(total);
    expect(hashOut.digest('hex')).toBe(hashIn.digest('hex'));
  });

  it('writes the committed file under its id in ready/, with the version first, and nothing in incoming/', async () => {
    const { queue } = await LocalQueue.open(root, { limits: NO_LIMITS });
    const { queueId } = await queue.enqueue(entryFor(MINIMAL_ENVELOPE_BLOCK), chunksOf('x\r\n'));
    expect(await readdir(join(root, 'ready'))).toEqual([queueId]);
    expect(await readdir(join(root, 'incoming'))).toEqual([]);
    const text = await readFile(join(root, 'ready', queueId), 'latin1');
    expect(text.split('\n')[0]).toBe('mailsubmit-queue-file 1');
    expect(text).toContain(`queue-id: ${queueId}\n`);
    const { ino } = await stat(join(root, 'ready', queueId), { bigint: true });
    expect(queueId.split('-')[1]).toBe(ino.toString(36).toUpperCase());
  });

  it('gives two messages different ids and removes one without touching the other', async () => {
    const { queue } = await LocalQueue.open(root, { limits: NO_LIMITS });
    const first = await queue.enqueue(entryFor(MINIMAL_ENVELOPE_BLOCK), chunksOf('one\r\n'));
    const second = await queue.enqueue(entryFor(MINIMAL_ENVELOPE_BLOCK), chunksOf('two\r\n'));
    expect(first.queueId).not.toBe(second.queueId);
    await queue.setState(first.queueId, { attempts: 1, nextAttempt: null, held: true, lastError: '451 4.3.0 try later', delayWarned: false, doneRecipients: [] });
    await queue.remove(first.queueId);
    expect(await readdir(join(root, 'ready'))).toEqual([second.queueId]);
    expect(await readdir(join(root, 'state'))).toEqual([]);
    expect(queue.usage()).toEqual({ count: 1, octets: second.octets });
    expect((await readAll((await queue.read(second.queueId)).message)).toString()).toBe('two\r\n');
    await expect(queue.read(first.queueId)).rejects.toThrow(/holds no message/);
  });
});
