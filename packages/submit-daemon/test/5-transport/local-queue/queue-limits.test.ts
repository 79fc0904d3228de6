/**
 * Every limit, and a file system that fills up in the middle of a write, on
 * a 1 MiB tmpfs of the test's own: each refusal is spool-full, names its
 * configuration key, and leaves
 * no file in incoming/ or ready/ and nothing claimed in the ledger.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isSubmissionError, statusOf } from '@mailsubmit/shared';
import { LocalQueue } from '../../../src/5-transport/local-queue/local-queue.ts';
import type { QueueLimits } from '../../../src/5-transport/local-queue/queue-limits.ts';
import { chunksOf, entryFor, MINIMAL_ENVELOPE_BLOCK, NO_LIMITS, patternedBody } from './queue-fixtures.ts';

let mountPoint: string;
let root: string;

beforeAll(async () => {
  mountPoint = await mkdtemp(join(tmpdir(), 'local-queue-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', mountPoint]);
  root = join(mountPoint, 'queue');
});
afterEach(async () => rm(root, { recursive: true, force: true }));
afterAll(async () => {
  execFileSync('umount', [mountPoint]);
  await rmdir(mountPoint);
});

async function openWith(limits: Partial<QueueLimits>): Promise<LocalQueue> {
  return (await LocalQueue.open(root, { limits: { ...NO_LIMITS, ...limits } })).queue;
}

async function expectSpoolFull(attempt: Promise<unknown>, detail: RegExp): Promise<void> {
  const error = await attempt.then(
    () => null,
    (err: unknown) => err,
  );
  expect(isSubmissionError(error) ? [error.outcome, statusOf(error.outcome).exitCode] : error).toEqual(['spool-full', 75]);
  expect((error as Error).message).toMatch(detail);
}

async function filesLeft(): Promise<string[]> {
  return [...(await readdir(join(root, 'incoming'))), ...(await readdir(join(root, 'ready')))];
}

describe('local queue: limits, each refused before it is passed', () => {
  it('refuses a message past the maximum count', async () => {
    const queue = await openWith({ maxCount: 1 });
    const { queueId } = await queue.enqueue(entryFor(MINIMAL_ENVELOPE_BLOCK), chunksOf('one\r\n'));
    await expectSpoolFull(queue.enqueue(entryFor(MINIMAL_ENVELOPE_BLOCK), chunksOf('two\r\n')), /holds 1 messages and queue\.max_messages is 1/);
    expect(await filesLeft()).toEqual([queueId]);
    expect(queue.usage().count).toBe(1);
  });

  it('refuses a message that would take the queue past its total octets, in the middle of the message', async () => {
    const queue = await openWith({ maxOctets: 4000 });
    const first = await queue.enqueue(entryFor(MINIMAL_ENVELOPE_BLOCK), patternedBody(1000, 100));
    await expectSpoolFull(queue.enqueue(entryFor(MINIMAL_ENVELOPE_BLOCK), patternedBody(5000, 100)), /and queue\.max_size is 4000/);
    expect(await filesLeft()).toEqual([first.queueId]);
    expect(queue.usage()).toEqual({ count: 1, octets: first.octets });
  });

  it('refuses a caller past its own quota and still takes another caller', async () => {
    const queue = await openWith({ maxOctetsPerUid: 3000 });
    const alice = (uid: number) => entryFor(MINIMAL_ENVELOPE_BLOCK, { uid });
    const first = await queue.enqueue(alice(1000), patternedBody(2000));
    await expectSpoolFull(queue.enqueue(alice(1000), patternedBody(2000)), /uid 1000 has \d+ octets in the local queue and queue\.max_size_per_uid is 3000/);
    const other = await queue.enqueue(alice(1001), patternedBody(2000));
    expect((await filesLeft()).sort()).toEqual([first.queueId, other.queueId].sort());
    expect(queue.usage(1000).octets).toBe(first.octets);
  });

  it('refuses a message that would cut into the free-space reserve', async () => {
    const queue = await openWith({ minFree: 900 * 1024 });
    await expectSpoolFull(queue.enqueue(entryFor(MINIMAL_ENVELOPE_BLOCK), chunksOf('small\r\n')), /octets free and queue\.min_free keeps 921600 of them/);
    expect(await filesLeft()).toEqual([]);
    expect(queue.usage()).toEqual({ count: 0, octets: 0 });
  });

  it('turns ENOSPC in the middle of a write into spool-full, leaves nothing, and takes mail again once there is room', async () => {
    const queue = await openWith({});
    await expectSpoolFull(queue.enqueue(entryFor(MINIMAL_ENVELOPE_BLOCK), patternedBody(2 * 1024 * 1024)), /file system is full \(ENOSPC\)/);
    expect(await filesLeft()).toEqual([]);
    expect(queue.usage()).toEqual({ count: 0, octets: 0 });
    const after = await queue.enqueue(entryFor(MINIMAL_ENVELOPE_BLOCK), patternedBody(100 * 1024));
    expect(await filesLeft()).toEqual([after.queueId]);
  });

  it('leaves nothing when the message stream fails (the caller went away)', async () => {
    const queue = await openWith({});
    async function* brokenBody(): AsyncGenerator<Buffer> {
      yield Buffer.from('Subject: half\r\n');
      throw new Error('the caller went away');
    }
    await expect(queue.enqueue(entryFor(MINIMAL_ENVELOPE_BLOCK), brokenBody())).rejects.toThrow(/went away/);
    expect(await filesLeft()).toEqual([]);
    expect(queue.usage()).toEqual({ count: 0, octets: 0 });
  });
});
