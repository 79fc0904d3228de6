/** holdMessage: what arrives while the envelope is read is kept, in order, and errors are not lost. */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { holdMessage } from '../../src/intake/held-message.ts';

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
});
