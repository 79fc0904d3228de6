/**
 * The listening socket: the file it makes (mode, owner, replacing a stale
 * one, refusing a live one or a non-socket), cleanup on close, and the
 * prototype's worst bug: an active listener that JavaScript no longer
 * references must keep accepting, not be garbage-collected.
 */
import { lstatSync, mkdirSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SeqpacketListener } from '../src/index.ts';
import { SocketError, closeFd, listenSeqpacket } from '../src/index.ts';
import { makeTempDir, openFdCount, runPeer, settle } from './support.ts';

let temp: ReturnType<typeof makeTempDir>;
let path: string;
const opened: SeqpacketListener[] = [];

beforeEach(() => {
  temp = makeTempDir();
  path = join(temp.dir, 'test.sock');
});

afterEach(() => {
  for (const listener of opened.splice(0)) listener.close();
  temp.cleanup();
});

function listen(options: Partial<Parameters<typeof listenSeqpacket>[0]> = {}): SeqpacketListener {
  const listener = listenSeqpacket({ path, mode: 0o600, ...options });
  opened.push(listener);
  return listener;
}

/** Answers every frame with "ok:<frame>" and closes; the way the daemon will. */
function answer(listener: SeqpacketListener): void {
  listener.on('connection', (connection) => {
    connection.on('frame', (data, fds) => {
      fds.forEach(closeFd);
      connection.send(Buffer.from(`ok:${data.toString()}`));
      connection.close();
    });
  });
}

function codeOf(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    if (error instanceof SocketError) return error.code;
    throw error;
  }
  return 'no error';
}

describe('listenSeqpacket', () => {
  it.each([0o600, 0o660, 0o666])('creates a socket file with mode %o', (mode) => {
    listen({ mode });
    const st = lstatSync(path);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(mode);
  });

  it('chowns the socket when asked', () => {
    listen({ mode: 0o660, uid: 0, gid: 12345 });
    const st = statSync(path);
    expect({ uid: st.uid, gid: st.gid }).toEqual({ uid: 0, gid: 12345 });
  });

  it('publishes the socket under its name only once owner and mode are final, leaving no other name behind', () => {
    // A client must never meet the socket with the daemon's own group (EACCES reads as a broken installation).
    listen({ mode: 0o660, uid: 0, gid: 12345 });
    const st = lstatSync(path);
    expect({ gid: st.gid, mode: st.mode & 0o777 }).toEqual({ gid: 12345, mode: 0o660 });
    expect(readdirSync(temp.dir)).toEqual(['test.sock']);
  });

  it('leaves nothing behind when it cannot take the name', () => {
    listen();
    expect(codeOf(() => listenSeqpacket({ path, mode: 0o600 }))).toBe('EADDRINUSE');
    expect(readdirSync(temp.dir)).toEqual(['test.sock']);
  });

  it('replaces a stale socket file nobody listens on', async () => {
    const stale = listen();
    // Close without unlinking, as a crashed daemon would leave it.
    renameSync(path, `${path}.keep`);
    stale.close();
    renameSync(`${path}.keep`, path);
    expect(lstatSync(path).isSocket()).toBe(true);
    answer(listen());
    const result = await runPeer({ path, payload: 'after-stale' });
    expect(result.results).toEqual([{ reply: 'ok:after-stale' }]);
  });

  it('refuses to take over a socket someone listens on', () => {
    listen();
    expect(codeOf(() => listenSeqpacket({ path, mode: 0o600 }))).toBe('EADDRINUSE');
  });

  it('refuses to remove a path that is not a socket', () => {
    writeFileSync(path, 'precious');
    expect(codeOf(() => listenSeqpacket({ path, mode: 0o600 }))).toBe('EEXIST');
    mkdirSync(`${path}.dir`);
    expect(codeOf(() => listenSeqpacket({ path: `${path}.dir`, mode: 0o600 }))).toBe('EEXIST');
    expect(lstatSync(path).isFile()).toBe(true);
  });

  it('reports a missing directory as ENOENT with the syscall', () => {
    let error: unknown;
    try {
      listenSeqpacket({ path: join(temp.dir, 'missing', 's.sock'), mode: 0o600 });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(SocketError);
    expect((error as SocketError).code).toBe('ENOENT');
    expect((error as SocketError).syscall).toBe('bind');
  });

  it('refuses a path too long for sun_path', () => {
    expect(codeOf(() => listenSeqpacket({ path: `/tmp/${'x'.repeat(110)}`, mode: 0o600 }))).toBe('ENAMETOOLONG');
  });

  it.each([
    ['a mode over 0777', { mode: 0o1777 }],
    ['a fractional mode', { mode: 1.5 }],
    ['maxFrameOctets over 65536', { maxFrameOctets: 65537 }],
    ['maxFds over 16', { maxFds: 17 }],
    ['a zero backlog', { backlog: 0 }],
  ])('refuses %s before touching the filesystem', (_name, options) => {
    expect(() => listenSeqpacket({ path, mode: 0o600, ...options })).toThrow(TypeError);
    expect(() => lstatSync(path)).toThrow();
  });

  it('removes its socket file on close, and close twice is harmless', () => {
    const listener = listen();
    listener.close();
    listener.close();
    expect(listener.closed).toBe(true);
    expect(() => lstatSync(path)).toThrow();
  });

  it('leaves a socket file alone that another listener now owns', () => {
    const first = listen();
    renameSync(path, `${path}.old`);
    const second = listen();
    first.close();
    expect(lstatSync(path).isSocket()).toBe(true);
    second.close();
    expect(() => lstatSync(path)).toThrow();
  });

  it('keeps accepting while active even when JavaScript holds no reference', async () => {
    let refs: WeakRef<SeqpacketListener> | undefined;
    let accepted = 0;
    (() => {
      const listener = listenSeqpacket({ path, mode: 0o600 });
      listener.on('connection', () => accepted++);
      answer(listener);
      refs = new WeakRef(listener);
    })();
    await settle();
    expect(refs?.deref()).toBeDefined();
    const result = await runPeer({ path, count: 3, payload: 'r{i}', expect: 'ok:r{i}' });
    expect(result.bad).toBe(0);
    expect(accepted).toBe(3);
    refs?.deref()?.close();
  });

  it('becomes collectable once closed, releasing its fd', async () => {
    const before = openFdCount();
    let refs: WeakRef<SeqpacketListener> | undefined;
    (() => {
      const listener = listenSeqpacket({ path, mode: 0o600 });
      refs = new WeakRef(listener);
      listener.close();
    })();
    await settle();
    expect(refs?.deref()).toBeUndefined();
    expect(openFdCount()).toBe(before);
  });
});
