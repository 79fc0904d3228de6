/**
 * The queued message as its sender wrote it: dot-stuffing undone at the
 * start of every line, however the chunks fall.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { DotUnstuffer } from '../../../src/5-transport/local-queue/queued-original.ts';
import { readAll } from './queue-fixtures.ts';

const STUFFED = '..first\r\nmiddle . dot\r\n..\r\n...three\r\nend.\r\n';
const WRITTEN = '.first\r\nmiddle . dot\r\n.\r\n..three\r\nend.\r\n';

describe('undoing dot-stuffing', () => {
  it('drops the one dot the encoder added at the start of each line, and nothing else', async () => {
    expect((await readAll(Readable.from([Buffer.from(STUFFED)]).pipe(new DotUnstuffer()))).toString()).toBe(WRITTEN);
  });

  it('gives the same bytes whatever the chunks, a line start at a chunk edge included', async () => {
    const bytes = Buffer.from(STUFFED);
    for (let cut = 1; cut < bytes.length; cut++) {
      const chunks = [bytes.subarray(0, cut), bytes.subarray(cut)];
      expect((await readAll(Readable.from(chunks).pipe(new DotUnstuffer()))).toString(), `cut at ${cut}`).toBe(WRITTEN);
    }
  });
});
