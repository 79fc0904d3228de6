/**
 * The fd calls: what kind of file a received fd is and which way it opens,
 * saving and restoring its status flags (the O_NONBLOCK that net.Socket
 * leaves on the caller's open file description), and closing it.
 */
import { execFileSync } from 'node:child_process';
import { constants, closeSync, existsSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FdInfo } from '../src/index.ts';
import { SocketError, closeFd, fdKind, getFileStatusFlags, listenSeqpacket, setFileStatusFlags } from '../src/index.ts';
import { makeTempDir, runPeer } from './support.ts';

let temp: ReturnType<typeof makeTempDir>;
const toClose: number[] = [];

beforeEach(() => {
  temp = makeTempDir();
});

afterEach(() => {
  for (const fd of toClose.splice(0)) {
    try {
      closeSync(fd);
    } catch {
      // closed by the test itself
    }
  }
  temp.cleanup();
});

function open(path: string, flags: number): number {
  const fd = openSync(path, flags);
  toClose.push(fd);
  return fd;
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

// Not in Node's fs.constants; the x86-64 and arm64 value.
const O_PATH = 0o10000000;

describe('fdKind', () => {
  it.each([
    ['read-only', constants.O_RDONLY],
    ['write-only', constants.O_WRONLY],
    ['read-write', constants.O_RDWR],
  ] as const)('reports a regular file opened %s', (access, flags) => {
    const file = join(temp.dir, 'f');
    writeFileSync(file, 'x');
    expect(fdKind(open(file, flags))).toEqual({ kind: 'file', access });
  });

  it('reports a FIFO, a directory and /dev/null', () => {
    const fifo = join(temp.dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    expect(fdKind(open(fifo, constants.O_RDWR))).toEqual({ kind: 'fifo', access: 'read-write' });
    expect(fdKind(open(temp.dir, constants.O_RDONLY))).toEqual({ kind: 'dir', access: 'read-only' });
    expect(fdKind(open('/dev/null', constants.O_WRONLY))).toEqual({ kind: 'chardev', access: 'write-only' });
  });

  it('tells a terminal from other character devices', () => {
    expect(existsSync('/dev/ptmx')).toBe(true);
    expect(fdKind(open('/dev/ptmx', constants.O_RDWR | constants.O_NOCTTY)).kind).toBe('tty');
  });

  it('reports an O_PATH descriptor as opened for nothing', () => {
    expect(fdKind(open(temp.dir, O_PATH)).access).toBe('none');
  });

  it('reports a passed socket', async () => {
    const path = join(temp.dir, 's.sock');
    const listener = listenSeqpacket({ path, mode: 0o600 });
    let info: FdInfo | undefined;
    listener.on('connection', (connection) => {
      connection.on('frame', (_data, fds) => {
        info = fdKind(fds[0] as number);
        fds.forEach(closeFd);
        connection.send(Buffer.from('ok'));
        connection.close();
      });
    });
    await runPeer({ path, payload: 'x', fds: ['sock'] });
    listener.close();
    expect(info).toEqual({ kind: 'socket', access: 'read-write', socketType: 'stream', listening: false });
  });

  // Only a connected stream reads like a pipe: the daemon refuses the others by these facts.
  it.each([
    ['dgram', { socketType: 'dgram', listening: false }],
    ['seqpacket', { socketType: 'seqpacket', listening: false }],
    ['listening', { socketType: 'stream', listening: true }],
  ])('reports a passed %s socket with its type', async (spec, expected) => {
    const path = join(temp.dir, 's.sock');
    const listener = listenSeqpacket({ path, mode: 0o600 });
    let info: FdInfo | undefined;
    listener.on('connection', (connection) => {
      connection.on('frame', (_data, fds) => {
        info = fdKind(fds[0] as number);
        fds.forEach(closeFd);
        connection.send(Buffer.from('ok'));
        connection.close();
      });
    });
    await runPeer({ path, payload: 'x', fds: [spec] });
    listener.close();
    expect(info).toEqual({ kind: 'socket', access: 'read-write', ...expected });
  });

  it('refuses a closed fd with EBADF and a negative or fractional one with TypeError', () => {
    const fd = open('/dev/null', constants.O_RDONLY);
    closeFd(fd);
    expect(codeOf(() => fdKind(fd))).toBe('EBADF');
    expect(() => fdKind(-1)).toThrow(TypeError);
    expect(() => fdKind(1.5)).toThrow(TypeError);
  });
});

describe('file status flags', () => {
  it('sets O_NONBLOCK and restores the saved flags', () => {
    const fifo = join(temp.dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const fd = open(fifo, constants.O_RDWR);
    const saved = getFileStatusFlags(fd);
    expect(saved & constants.O_NONBLOCK).toBe(0);
    expect(saved & 3).toBe(constants.O_RDWR);
    setFileStatusFlags(fd, saved | constants.O_NONBLOCK);
    expect(getFileStatusFlags(fd) & constants.O_NONBLOCK).toBe(constants.O_NONBLOCK);
    setFileStatusFlags(fd, saved);
    expect(getFileStatusFlags(fd)).toBe(saved);
  });

  it.each([
    ['leaks O_NONBLOCK into the caller when not restored', false, [true]],
    ['leaves the caller as it was when restored before replying', true, [false]],
  ] as const)('%s', async (_name, restore, expected) => {
    // The passed fd shares its open file description with the caller's copy.
    const path = join(temp.dir, 's.sock');
    const listener = listenSeqpacket({ path, mode: 0o600 });
    listener.on('connection', (connection) => {
      connection.on('frame', (_data, fds) => {
        const fd = fds[0] as number;
        const saved = getFileStatusFlags(fd);
        setFileStatusFlags(fd, saved | constants.O_NONBLOCK);
        if (restore) setFileStatusFlags(fd, saved);
        closeFd(fd);
        connection.send(Buffer.from('ok'));
        connection.close();
      });
    });
    const result = await runPeer({ path, payload: 'x', fds: ['pipe:data'], nonblock: true });
    listener.close();
    expect(result.results[0]?.nonblock).toEqual(expected);
  });

  it('reports EBADF for a closed fd', () => {
    const fd = open('/dev/null', constants.O_RDONLY);
    closeFd(fd);
    expect(codeOf(() => getFileStatusFlags(fd))).toBe('EBADF');
    expect(codeOf(() => setFileStatusFlags(fd, 0))).toBe('EBADF');
    expect(codeOf(() => closeFd(fd))).toBe('EBADF');
  });
});
