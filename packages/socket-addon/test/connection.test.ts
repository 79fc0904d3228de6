/**
 * Accepted connections against a real peer: frames in, replies out, fds
 * passed beside the frame, every way a frame can be cut, end-of-file, and
 * the kernel's word on who is calling.
 */
import { readFileSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FrameFlags, SeqpacketConnection, SeqpacketListener } from '../src/index.ts';
import { SocketError, closeFd, fdKind, listenSeqpacket } from '../src/index.ts';
import { makeTempDir, openFdCount, runPeer } from './support.ts';

interface Received {
  data: Buffer;
  fds: number[];
  flags: FrameFlags;
  connection: SeqpacketConnection;
}

let temp: ReturnType<typeof makeTempDir>;
let path: string;
let listener: SeqpacketListener;

beforeEach(() => {
  temp = makeTempDir();
  path = join(temp.dir, 'test.sock');
});

afterEach(() => {
  listener?.close();
  temp.cleanup();
});

/** Listens; each frame is handed to `onFrame`, whose return value (if any) is sent back. */
function serve(onFrame: (frame: Received) => Uint8Array | undefined, options: { maxFds?: number; mode?: number } = {}) {
  listener = listenSeqpacket({ path, mode: options.mode ?? 0o600, maxFds: options.maxFds ?? 2 });
  listener.on('connection', (connection) => {
    connection.on('frame', (data, fds, flags) => {
      const reply = onFrame({ data, fds, flags, connection });
      if (reply) connection.send(reply);
      connection.close();
    });
  });
}

describe('SeqpacketConnection', () => {
  it('delivers the frame and sends a reply back', async () => {
    const frames: string[] = [];
    serve(({ data }) => {
      frames.push(data.toString());
      return Buffer.from(`ok:${data.toString()}`);
    });
    const result = await runPeer({ path, payload: 'hello' });
    expect(frames).toEqual(['hello']);
    expect(result.results).toEqual([{ reply: 'ok:hello' }]);
  });

  it('passes the peer\'s pipe as a readable fifo fd', async () => {
    let content = '';
    let info: unknown;
    let fdCount = -1;
    serve(({ fds }) => {
      fdCount = fds.length;
      const fd = fds[0] as number;
      info = fdKind(fd);
      const buffer = Buffer.alloc(100);
      content = buffer.subarray(0, readSync(fd, buffer)).toString();
      closeFd(fd);
      return Buffer.from('read');
    });
    await runPeer({ path, payload: 'frame', fds: ['pipe:message on stdin'] });
    expect(fdCount).toBe(1);
    expect(info).toEqual({ kind: 'fifo', access: 'read-only' });
    expect(content).toBe('message on stdin');
  });

  it('passes two fds in order, keeping their access modes', async () => {
    const file = join(temp.dir, 'envelope-out');
    let kinds: unknown[] = [];
    serve(({ fds }) => {
      kinds = fds.map((fd) => fdKind(fd));
      writeFileSync(fds[1] as number, 'written through the passed fd');
      fds.forEach(closeFd);
      return Buffer.from('done');
    });
    await runPeer({ path, payload: 'x', fds: ['null', `wo:${file}`] });
    expect(kinds).toEqual([
      { kind: 'chardev', access: 'read-only' },
      { kind: 'file', access: 'write-only' },
    ]);
    expect(readFileSync(file, 'utf8')).toBe('written through the passed fd');
  });

  it('flags an oversized frame as truncated and closes its fds', async () => {
    const before = openFdCount();
    let seen: Received | undefined;
    serve((frame) => {
      seen = frame;
      return Buffer.from('refused');
    });
    const result = await runPeer({ path, size: 70000, fds: ['null'] });
    expect(result.results).toEqual([{ reply: 'refused' }]);
    expect(seen?.flags).toEqual({ truncated: true, ctruncated: false, fdsLost: false });
    expect(seen?.data.byteLength).toBe(65536);
    expect(seen?.fds).toEqual([]);
    listener.close();
    expect(openFdCount()).toBe(before);
  });

  it('flags too many fds as ctruncated and leaks none', async () => {
    const before = openFdCount();
    let seen: Received | undefined;
    serve((frame) => {
      seen = frame;
      return Buffer.from('refused');
    });
    await runPeer({ path, payload: 'x', fds: ['null', 'null', 'null', 'null', 'null'] });
    expect(seen?.flags).toEqual({ truncated: false, ctruncated: true, fdsLost: false });
    expect(seen?.fds).toEqual([]);
    listener.close();
    expect(openFdCount()).toBe(before);
  });

  it('counts fds that fit only through control-buffer alignment as too many', async () => {
    // CMSG_SPACE(4) == CMSG_SPACE(8) on 64-bit: room for 2 fds when 1 was asked for.
    const before = openFdCount();
    let seen: Received | undefined;
    serve((frame) => {
      seen = frame;
      return Buffer.from('refused');
    }, { maxFds: 1 });
    await runPeer({ path, payload: 'x', fds: ['null', 'null'] });
    expect(seen?.flags.ctruncated).toBe(true);
    expect(seen?.fds).toEqual([]);
    listener.close();
    expect(openFdCount()).toBe(before);
  });

  it('closes the fds of a frame nobody listens for', async () => {
    const before = openFdCount();
    listener = listenSeqpacket({ path, mode: 0o600 });
    let ended!: () => void;
    const done = new Promise<void>((resolve) => (ended = resolve));
    listener.on('connection', (connection) => {
      connection.on('end', () => {
        connection.close();
        ended();
      });
    });
    const peer = runPeer({ path, payload: 'x', fds: ['null', 'null'], noReply: true });
    await done;
    await peer;
    listener.close();
    expect(openFdCount()).toBe(before);
  });

  it('reports end when the peer closes without sending', async () => {
    listener = listenSeqpacket({ path, mode: 0o600 });
    const events: string[] = [];
    let ended!: () => void;
    const done = new Promise<void>((resolve) => (ended = resolve));
    listener.on('connection', (connection) => {
      connection.on('frame', () => events.push('frame'));
      connection.on('end', () => {
        events.push('end');
        connection.close();
        ended();
      });
    });
    await runPeer({ path, silent: true });
    await done;
    expect(events).toEqual(['end']);
  });

  it('reports the peer\'s pid, uid and gid from the kernel', async () => {
    let credentials: unknown;
    serve(({ connection }) => {
      credentials = connection.peerCredentials();
      return Buffer.from('ok');
    }, { mode: 0o666 });
    const result = await runPeer({ path, payload: 'who', setid: [23456, 12345] });
    expect(result.results).toEqual([{ reply: 'ok' }]);
    expect({ uid: result.uid, gid: result.gid }).toEqual({ uid: 23456, gid: 12345 });
    expect(credentials).toEqual({ pid: result.pid, uid: 23456, gid: 12345 });
  });

  it('refuses to send after close, and close twice is harmless', async () => {
    let error: unknown;
    listener = listenSeqpacket({ path, mode: 0o600 });
    listener.on('connection', (connection) => {
      connection.on('frame', (_data, fds) => {
        fds.forEach(closeFd);
        connection.close();
        connection.close();
        try {
          connection.send(Buffer.from('late'));
        } catch (caught) {
          error = caught;
        }
      });
    });
    const result = await runPeer({ path, payload: 'x' });
    expect(result.results).toEqual([{ eof: true }]);
    expect(error).toBeInstanceOf(SocketError);
    expect((error as SocketError).code).toBe('EBADF');
    expect((error as SocketError).syscall).toBe('send');
  });

  it('refuses an empty frame, which the peer would read as end-of-file', async () => {
    let error: unknown;
    serve(({ connection }) => {
      try {
        connection.send(new Uint8Array(0));
      } catch (caught) {
        error = caught;
      }
      return Buffer.from('after');
    });
    await runPeer({ path, payload: 'x' });
    expect(error).toBeInstanceOf(TypeError);
  });

  it('reports EPIPE when the peer is gone', async () => {
    let error: unknown;
    listener = listenSeqpacket({ path, mode: 0o600 });
    let finished!: () => void;
    const done = new Promise<void>((resolve) => (finished = resolve));
    listener.on('connection', (connection) => {
      connection.on('end', () => {
        try {
          connection.send(Buffer.from('nobody'));
        } catch (caught) {
          error = caught;
        }
        connection.close();
        finished();
      });
    });
    await runPeer({ path, silent: true });
    await done;
    expect((error as SocketError).code).toBe('EPIPE');
  });
});
