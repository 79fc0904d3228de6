/**
 * Intake of a caller's stdin fd: what is read, what is refused, and that the
 * caller's own fd (which shares the open file description) gets its flags
 * back: O_NONBLOCK left behind would break the caller's shell.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { dupFd, getFileStatusFlags, setFileStatusFlags } from '@mailsubmit/socket-addon';
import { openPassedInput } from '../../src/intake/passed-fd-input.ts';
import { Semaphore } from '../../src/util/semaphore.ts';

const LIMITS = { maxOctets: 1 << 20, deadlineMs: 5_000, idleMs: 2_000 };
const dir = mkdtempSync(join(tmpdir(), 'intake-'));

function fifo(name: string): { reader: number; writer: number } {
  const path = join(dir, name);
  execFileSync('mkfifo', [path]);
  const reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  // Like a shell's stdin: blocking.
  setFileStatusFlags(reader, getFileStatusFlags(reader) & ~constants.O_NONBLOCK);
  const writer = openSync(path, constants.O_WRONLY);
  return { reader, writer };
}

describe('passed fd intake', () => {
  it('reads a pipe to the end and gives the caller its blocking flags back', async () => {
    const { reader, writer } = fifo('pipe');
    const callersCopy = dupFd(reader);
    const input = await openPassedInput(reader, LIMITS, new Semaphore(1));
    expect(input.kind).toBe('pipe');
    writeSync(writer, 'sender: a@example.org\n');
    closeSync(writer);
    expect(await text(input.stream)).toBe('sender: a@example.org\n');
    input.release();
    expect(getFileStatusFlags(callersCopy) & constants.O_NONBLOCK).toBe(0);
    closeSync(callersCopy);
  });

  it('reads a regular file from its current offset', async () => {
    const path = join(dir, 'file');
    writeFileSync(path, 'abcdef');
    const fd = openSync(path, 'r');
    const input = await openPassedInput(fd, LIMITS, new Semaphore(1));
    expect(input.kind).toBe('file');
    expect(await text(input.stream)).toBe('abcdef');
    input.release();
  });

  it.each([
    ['a character device', () => openSync('/dev/null', 'r'), /device/],
    ['a directory', () => openSync(dir, 'r'), /directory/],
    ['a write-only file', () => openSync(join(dir, 'wo'), 'w'), /not open for reading/],
  ])('refuses %s with no-input', async (_name, open, message) => {
    const fd = open();
    await expect(openPassedInput(fd, LIMITS, new Semaphore(1))).rejects.toMatchObject({ outcome: 'no-input', message: expect.stringMatching(message) });
  });

  it('gives up on a writer that goes silent', async () => {
    const { reader, writer } = fifo('silent');
    const input = await openPassedInput(reader, { ...LIMITS, idleMs: 200 }, new Semaphore(1));
    writeSync(writer, 'sender: a@example.org\n');
    await expect(text(input.stream)).rejects.toMatchObject({ outcome: 'input-timeout' });
    input.release();
    closeSync(writer);
  });

  it('stops at the byte cap', async () => {
    const { reader, writer } = fifo('cap');
    const input = await openPassedInput(reader, { ...LIMITS, maxOctets: 10 }, new Semaphore(1));
    writeSync(writer, 'x'.repeat(64));
    closeSync(writer);
    await expect(text(input.stream)).rejects.toMatchObject({ outcome: 'over-limit' });
    input.release();
  });
});
