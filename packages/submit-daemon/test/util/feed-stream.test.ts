/**
 * feedStream carries what stream.pipeline carried for the submission's
 * parser: the bytes, the source's failure, a source that closes before its
 * end (never a complete message), and the source's end when the parser stops.
 */
import { PassThrough, Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { feedStream } from '../../src/util/feed-stream.ts';

const closed = (stream: Readable): Promise<unknown> => (stream.closed ? Promise.resolve() : new Promise((resolve) => stream.once('close', resolve)));

describe('feedStream', () => {
  it('passes the bytes through to the end', async () => {
    const into = new PassThrough();
    feedStream(Readable.from([Buffer.from('abc'), Buffer.from('def')]), into);
    expect(await text(into)).toBe('abcdef');
  });

  it("ends the transform with the source's error", async () => {
    const source = new PassThrough();
    const into = new PassThrough();
    feedStream(source, into);
    source.write('partial');
    source.destroy(new Error('read failed'));
    await expect(text(into)).rejects.toThrow('read failed');
  });

  it('takes a source closed before its end as an error, not as the end of the message', async () => {
    const source = new PassThrough();
    const into = new PassThrough();
    feedStream(source, into);
    source.write('partial');
    source.destroy();
    await expect(text(into)).rejects.toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' });
  });

  it('destroys the source when the transform stops', async () => {
    const source = new PassThrough();
    const into = new PassThrough();
    feedStream(source, into);
    into.on('error', () => undefined);
    into.destroy(new Error('refused'));
    await closed(source);
    expect(source.destroyed).toBe(true);
  });
});
