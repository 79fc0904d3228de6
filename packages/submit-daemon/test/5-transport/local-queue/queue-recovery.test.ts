/**
 * Crashes simulated by leaving on disk what a crash at each step would
 * leave, then opening the queue again as a restarted daemon does.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalQueue } from '../../../src/5-transport/local-queue/local-queue.ts';
import { INITIAL_STATE } from '../../../src/5-transport/local-queue/queue-state.ts';
import { chunksOf, entryFor, FULL_ENVELOPE_BLOCK, MINIMAL_ENVELOPE_BLOCK, NO_LIMITS, privateRoot, readAll } from './queue-fixtures.ts';

let root: string;
let cleanup: () => Promise<void>;

beforeEach(async () => {
  ({ root, cleanup } = await privateRoot());
});
afterEach(async () => cleanup());

async function queueOne(body = 'Subject: kept\r\n\r\nkept\r\n'): Promise<string> {
  const { queue } = await LocalQueue.open(root, { limits: NO_LIMITS });
  return (await queue.enqueue(entryFor(FULL_ENVELOPE_BLOCK), chunksOf(body))).queueId;
}

describe('local queue: recovery at start', () => {
  it('removes a file a crash left in incoming/ and keeps the committed one, state and all', async () => {
    const kept = await queueOne();
    const { queue: before } = await LocalQueue.open(root, { limits: NO_LIMITS });
    const state = { attempts: 2, nextAttempt: new Date('2026-12-06T01:00:00.000Z'), held: true, lastError: '451 4.3.0 Error:\r\nqueue file write error', delayWarned: true, doneRecipients: [0, 2] };
    await before.setState(kept, state);
    // A write cut short: head and half a message, never renamed.
    const committed = await readFile(join(root, 'ready', kept));
    await writeFile(join(root, 'incoming', 'message.4242.0123456789ab'), committed.subarray(0, committed.length - 40));
    await writeFile(join(root, 'incoming', `state.${kept}.4242.0123456789ab`), 'mailsubmit-queue-state 1\natt');

    const { queue, recovery } = await LocalQueue.open(root, { limits: NO_LIMITS });
    expect([...recovery.removedIncomplete].sort()).toEqual(['message.4242.0123456789ab', `state.${kept}.4242.0123456789ab`]);
    expect(await readdir(join(root, 'incoming'))).toEqual([]);
    expect(recovery.leftAlone).toEqual([]);
    expect(recovery.queued.map((q) => q.queueId)).toEqual([kept]);
    const found = recovery.queued[0]!;
    expect(found.state).toEqual({ ...state, lastError: '451 4.3.0 Error: queue file write error' });
    expect(found.caller.frontDoor).toBe('sendmail');
    expect(found.envelope.recipients.length).toBe(3);
    expect(queue.usage()).toEqual({ count: 1, octets: committed.length });
    expect((await readAll((await queue.read(kept)).message)).toString()).toBe('Subject: kept\r\n\r\nkept\r\n');
  });

  it('removes what a daemon killed with SIGKILL in the middle of a write left', async () => {
    const kept = await queueOne();
    const script = `
      import { LocalQueue } from ${JSON.stringify(join(import.meta.dirname, '../../../src/5-transport/local-queue/local-queue.ts'))};
      import { entryFor, MINIMAL_ENVELOPE_BLOCK, NO_LIMITS } from ${JSON.stringify(join(import.meta.dirname, 'queue-fixtures.ts'))};
      const { queue } = await LocalQueue.open(process.argv[1], { limits: NO_LIMITS });
      async function* stalled() {
        yield Buffer.from('Subject: never finished\\r\\n');
        process.stdout.write('writing\\n');
        await new Promise(() => setInterval(() => undefined, 1000));
      }
      await queue.enqueue(entryFor(MINIMAL_ENVELOPE_BLOCK), stalled());
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, root], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [first] = (await once(child.stdout!, 'data')) as [Buffer];
    expect(first.toString()).toBe('writing\n');
    const incomingBefore = await readdir(join(root, 'incoming'));
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect(incomingBefore.length).toBe(1);

    const { recovery } = await LocalQueue.open(root, { limits: NO_LIMITS });
    expect(recovery.removedIncomplete).toEqual(incomingBefore);
    expect(await readdir(join(root, 'incoming'))).toEqual([]);
    expect(recovery.queued.map((q) => q.queueId)).toEqual([kept]);
    expect(await readdir(join(root, 'ready'))).toEqual([kept]);
  });

  it('keeps the last of several state changes, in one sidecar', async () => {
    const kept = await queueOne();
    const { queue } = await LocalQueue.open(root, { limits: NO_LIMITS });
    await queue.setState(kept, { attempts: 1, nextAttempt: null, held: false, lastError: 'first', delayWarned: false, doneRecipients: [] });
    await queue.setState(kept, { attempts: 2, nextAttempt: null, held: true, lastError: null, delayWarned: false, doneRecipients: [] });
    expect(await readdir(join(root, 'state'))).toEqual([kept]);
    const { recovery } = await LocalQueue.open(root, { limits: NO_LIMITS });
    expect(recovery.queued[0]?.state).toEqual({ attempts: 2, nextAttempt: null, held: true, lastError: null, delayWarned: false, doneRecipients: [] });
  });

  it('lists a message without a sidecar in the initial state', async () => {
    const kept = await queueOne();
    const { recovery } = await LocalQueue.open(root, { limits: NO_LIMITS });
    expect(recovery.queued.map((q) => [q.queueId, q.state])).toEqual([[kept, INITIAL_STATE]]);
  });

  it('keeps and reports a file of an unknown version, and one that is cut short, and deletes neither', async () => {
    const good = await queueOne();
    const future = 'LZZZZZZ0000-1';
    const futureText = 'mailsubmit-queue-file 2\nsomething: new\n\n';
    await writeFile(join(root, 'ready', future), futureText);
    const cut = await queueOne('Subject: cut\r\n\r\n' + 'x'.repeat(1000));
    const cutSize = (await readFile(join(root, 'ready', cut))).length;
    await truncate(join(root, 'ready', cut), cutSize - 100);
    await writeFile(join(root, 'ready', 'not-a-queue-id'), 'hello');

    const { queue, recovery } = await LocalQueue.open(root, { limits: NO_LIMITS });
    expect(recovery.queued.map((q) => q.queueId)).toEqual([good]);
    const reasons = new Map(recovery.leftAlone.map((l) => [l.name, l.reason]));
    expect([...reasons.keys()].sort()).toEqual([cut, future, 'not-a-queue-id'].sort());
    expect(reasons.get(future)).toMatch(/not a version this mailsubmit reads/);
    expect(reasons.get(cut)).toMatch(/trailer/);
    expect(reasons.get('not-a-queue-id')).toMatch(/not a queue id/);
    expect(await readFile(join(root, 'ready', future), 'utf8')).toBe(futureText);
    expect((await readdir(join(root, 'ready'))).sort()).toEqual([cut, future, good, 'not-a-queue-id'].sort());
    await expect(queue.read(cut)).rejects.toThrow(/holds no message/);
  });

  it('keeps a message whose sidecar has an unknown version, and reports it', async () => {
    const kept = await queueOne();
    await writeFile(join(root, 'state', kept), 'mailsubmit-queue-state 9\nwhatever: x\n');
    const { recovery } = await LocalQueue.open(root, { limits: NO_LIMITS });
    expect(recovery.queued).toEqual([]);
    expect(recovery.leftAlone).toEqual([{ name: kept, reason: expect.stringMatching(/not a version/) }]);
    expect(await readdir(join(root, 'state'))).toEqual([kept]);
  });

  it('removes a sidecar whose message a crash in the middle of a removal already unlinked', async () => {
    const kept = await queueOne();
    await writeFile(join(root, 'state', 'LZ3K9QF0A1B-4F2K'), 'mailsubmit-queue-state 1\nattempts: 1\nheld: no\n');
    const { recovery } = await LocalQueue.open(root, { limits: NO_LIMITS });
    expect(recovery.removedOrphanStates).toEqual(['LZ3K9QF0A1B-4F2K']);
    expect(await readdir(join(root, 'state'))).toEqual([]);
    expect(recovery.queued.map((q) => q.queueId)).toEqual([kept]);
  });

  it('refuses a file whose name and queue-id line disagree (copied, not renamed)', async () => {
    const kept = await queueOne(MINIMAL_ENVELOPE_BLOCK);
    const bytes = await readFile(join(root, 'ready', kept));
    await writeFile(join(root, 'ready', 'LZ3K9QF0A1B-4F2K'), bytes);
    const { recovery } = await LocalQueue.open(root, { limits: NO_LIMITS });
    expect(recovery.queued.map((q) => q.queueId)).toEqual([kept]);
    expect(recovery.leftAlone).toEqual([{ name: 'LZ3K9QF0A1B-4F2K', reason: expect.stringMatching(/queue-id line says/) }]);
  });
});
