/** holdMessage: what arrives while the envelope is read is kept, in order, and errors are not lost. */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { holdMessage as holdWith } from '../../src/3-intake/held-message.ts';
import { SpoolSpace } from '../../src/3-intake/spool-space.ts';

const spoolDirectory = mkdtempSync(join(tmpdir(), 'held-message-'));
afterAll(() => rmSync(spoolDirectory, { recursive: true, force: true }));

const holdMessage = (stream: PassThrough, memoryOctets?: number) =>
  holdWith(stream, { spoolDirectory, ...(memoryOctets !== undefined ? { memoryOctets } : {}) });

/** The spool files this process has open (unlinked ones show as "(deleted)"). */
function openSpoolFiles(): string[] {
  const links: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      links.push(readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      // closed while listing
    }
  }
  return links.filter((link) => link.startsWith(spoolDirectory));
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

async function collect(stream: AsyncIterable<unknown>): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += (chunk as Buffer).toString('latin1');
  return text;
}

describe('holdMessage', () => {
  it('keeps reading past the stream buffer while held, then replays in order with the rest', async () => {
    const source = new PassThrough({ highWaterMark: 16 });
    const held = holdMessage(source);
    // Far more than the highWaterMark: without a reader these writes would report backpressure.
    const writes = Array.from({ length: 100 }, (_, i) => source.write(`chunk ${i};`));
    expect(writes.every((ok) => ok)).toBe(true);
    const message = held.take();
    source.end('the end');
    const expected = `${Array.from({ length: 100 }, (_, i) => `chunk ${i};`).join('')}the end`;
    expect(await collect(message)).toBe(expected);
  });

  it('replays a stream that ended while held', async () => {
    const source = new PassThrough();
    const held = holdMessage(source);
    source.end('all of it');
    await new Promise((resolve) => setImmediate(resolve));
    expect(await collect(held.take())).toBe('all of it');
  });

  it('passes on an error that happened while held', async () => {
    const source = new PassThrough();
    const held = holdMessage(source);
    source.write('part');
    source.destroy(new Error('input timed out'));
    await new Promise((resolve) => setImmediate(resolve));
    await expect(collect(held.take())).rejects.toThrow('input timed out');
  });

  it('passes on an error after take()', async () => {
    const source = new PassThrough();
    const message = holdMessage(source).take();
    const reading = collect(message);
    source.write('part');
    setImmediate(() => source.destroy(new Error('reading failed')));
    await expect(reading).rejects.toThrow('reading failed');
  });

  it('spills past the memory bound to an unlinked file and replays every octet in order', async () => {
    const source = new PassThrough({ highWaterMark: 1024 });
    const held = holdMessage(source, 4096);
    const expected = createHash('sha256');
    for (let i = 0; i < 2000; i++) {
      const line = `line ${i} ${'x'.repeat(i % 97)}\n`;
      expected.update(line);
      source.write(line);
    }
    await settle();
    const spilled = openSpoolFiles();
    expect(spilled).toHaveLength(1);
    expect(spilled[0]).toMatch(/\(deleted\)$/);
    expect(readdirSync(spoolDirectory)).toEqual([]);
    const message = held.take();
    source.end('the end\n');
    expected.update('the end\n');
    const seen = createHash('sha256');
    for await (const chunk of message) seen.update(chunk as Buffer);
    expect(seen.digest('hex')).toBe(expected.digest('hex'));
    held.release();
    await settle();
    expect(openSpoolFiles()).toEqual([]);
  });

  it('closes the spool file when released without take()', async () => {
    const source = new PassThrough();
    const held = holdMessage(source, 16);
    source.write('x'.repeat(1000));
    await settle();
    expect(openSpoolFiles()).toHaveLength(1);
    held.release();
    await settle();
    expect(openSpoolFiles()).toEqual([]);
  });

  it('fails with a temporary error when the spool directory is unusable', async () => {
    const source = new PassThrough();
    const held = holdWith(source, { spoolDirectory: join(spoolDirectory, 'missing'), memoryOctets: 8 });
    source.write('more than eight octets');
    await settle();
    await expect(collect(held.take())).rejects.toMatchObject({ outcome: 'internal' });
  });

  it('says over-limit at once, while the caller is still writing, when the message passes maxOctets', async () => {
    const source = new PassThrough();
    const failures: unknown[] = [];
    const held = holdWith(source, { spoolDirectory, memoryOctets: 16, maxOctets: 100, onFailure: (error) => failures.push(error) });
    source.write('x'.repeat(60));
    await settle();
    expect(failures).toEqual([]);
    source.write('x'.repeat(60));
    await settle();
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ outcome: 'over-limit', message: expect.stringContaining('limits.max_message_size (100 octets)') });
    await expect(collect(held.take())).rejects.toMatchObject({ outcome: 'over-limit' });
    held.release();
    await settle();
    expect(openSpoolFiles()).toEqual([]);
  });

  it('counts spooled octets against the claim, fails at once when it is refused, and gives them back', async () => {
    const space = new SpoolSpace(async () => Number.MAX_SAFE_INTEGER);
    const limits = { quotaPerUid: 500, quotaTotal: 10_000, minFree: 0 };
    const failures: unknown[] = [];
    const source = new PassThrough();
    const held = holdWith(source, { spoolDirectory, memoryOctets: 16, claim: space.claim(7, spoolDirectory, limits), onFailure: (error) => failures.push(error) });
    source.write('x'.repeat(400));
    await settle();
    expect(space.held(7)).toBe(400);
    source.write('x'.repeat(200));
    await settle();
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ outcome: 'spool-full', message: expect.stringContaining('limits.spool_quota_per_uid is 500') });
    held.release();
    await settle();
    expect(space.held()).toBe(0);
    expect(openSpoolFiles()).toEqual([]);
  });

  it('tells an input error at once, before take()', async () => {
    const source = new PassThrough();
    const failures: unknown[] = [];
    const held = holdWith(source, { spoolDirectory, onFailure: (error) => failures.push(error) });
    source.destroy(new Error('nothing was written for 120 s'));
    await settle();
    expect(failures).toEqual([expect.objectContaining({ message: 'nothing was written for 120 s' })]);
    held.release();
  });
});
