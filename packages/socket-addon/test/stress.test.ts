/**
 * Many round trips under forced garbage collection: the conditions in which
 * the prototype freed a poll handle twice and lost its listener. The fd count
 * of the process must come back to where it started.
 */
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SeqpacketListener } from '../src/index.ts';
import { closeFd, fdKind, listenSeqpacket } from '../src/index.ts';
import { forceGc, makeTempDir, openFdCount, runPeer, settle } from './support.ts';

let temp: ReturnType<typeof makeTempDir>;
let path: string;
let listener: SeqpacketListener | undefined;

beforeEach(() => {
  temp = makeTempDir();
  path = join(temp.dir, 'stress.sock');
});

afterEach(() => {
  listener?.close();
  listener = undefined;
  temp.cleanup();
});

describe('under load and forced GC', () => {
  it('answers 1000 sequential round trips with fd passing, without fd growth', async () => {
    await settle();
    const before = openFdCount();
    let frames = 0;
    listener = listenSeqpacket({ path, mode: 0o600 });
    listener.on('connection', (connection) => {
      connection.on('frame', (data, fds) => {
        frames++;
        if (fdKind(fds[0] as number).kind !== 'fifo') throw new Error('expected the pipe');
        fds.forEach(closeFd);
        connection.send(Buffer.from(`ok:${data.toString()}`));
        connection.close();
        if (frames % 50 === 0) forceGc();
      });
    });
    const result = await runPeer({ path, count: 1000, payload: 'frame {i}', fds: ['pipe:body'], expect: 'ok:frame {i}' });
    expect(result.bad).toBe(0);
    expect(frames).toBe(1000);
    listener.close();
    listener = undefined;
    await settle();
    expect(openFdCount()).toBe(before);
  });

  it('answers 8 peers at once, 100 round trips each', async () => {
    await settle();
    const before = openFdCount();
    let frames = 0;
    listener = listenSeqpacket({ path, mode: 0o600 });
    listener.on('connection', (connection) => {
      connection.on('frame', (data, fds) => {
        fds.forEach(closeFd);
        frames++;
        // Answer on a later turn, so connections overlap inside the daemon.
        setImmediate(() => {
          connection.send(Buffer.from(`ok:${data.toString()}`));
          connection.close();
          if (frames % 25 === 0) forceGc();
        });
      });
    });
    const peers = Array.from({ length: 8 }, (_, n) =>
      runPeer({ path, count: 100, payload: `p${n}-{i}`, fds: ['null'], expect: `ok:p${n}-{i}` }),
    );
    const results = await Promise.all(peers);
    expect(results.map((r) => r.bad)).toEqual(Array(8).fill(0));
    listener.close();
    listener = undefined;
    await settle();
    expect(openFdCount()).toBe(before);
  });

  it('closes, through the finalizer, connections nobody closed once they ended', async () => {
    await settle();
    const before = openFdCount();
    let ended = 0;
    listener = listenSeqpacket({ path, mode: 0o600 });
    let allEnded!: () => void;
    const done = new Promise<void>((resolve) => (allEnded = resolve));
    listener.on('connection', (connection) => {
      connection.on('end', () => {
        if (++ended === 50) allEnded();
      });
    });
    await runPeer({ path, count: 50, silent: true });
    await done;
    listener.close();
    listener = undefined;
    await settle();
    expect(openFdCount()).toBe(before);
  });
});
