/**
 * Intake of a caller's stdin fd: what is read, what is refused, and that the
 * caller's own fd (which shares the open file description) gets its flags
 * back: O_NONBLOCK left behind would break the caller's shell.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, fstatSync, mkdtempSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { dupFd, getFileStatusFlags, setFileStatusFlags } from '@mailsubmit/socket-addon';
import { SubmissionError } from '@mailsubmit/shared';
import { openPassedInput, setCleanupErrorHandler } from '../../src/3-intake/passed-fd-input.ts';
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

  it('stops a regular file at the byte cap too, and release closes it', async () => {
    const path = join(dir, 'long-file');
    writeFileSync(path, 'x'.repeat(100));
    const fd = openSync(path, 'r');
    const input = await openPassedInput(fd, { ...LIMITS, maxOctets: 10 }, new Semaphore(1));
    await expect(text(input.stream)).rejects.toMatchObject({ outcome: 'over-limit' });
    input.release();
    await new Promise((resolve) => setImmediate(resolve));
    expect(() => fstatSync(fd)).toThrow(/EBADF/);
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

  // O_NOATIME: as root the daemon could set it back, as its own user it gets EPERM (test/security/daemon-survives-cleanup.test.ts).
  it('puts back only O_NONBLOCK, leaving the flags the caller changed meanwhile as the caller left them', async () => {
    const { reader, writer } = fifo('flags');
    const callersCopy = dupFd(reader);
    const input = await openPassedInput(reader, LIMITS, new Semaphore(1));
    const during = getFileStatusFlags(callersCopy);
    expect(during & constants.O_NONBLOCK).not.toBe(0);
    // The caller shares the open file description and sets a flag of its own while the daemon reads.
    setFileStatusFlags(callersCopy, during | constants.O_NOATIME);
    writeSync(writer, 'x');
    closeSync(writer);
    await text(input.stream);
    input.release();
    const after = getFileStatusFlags(callersCopy);
    expect(after & constants.O_NONBLOCK).toBe(0);
    expect(after & constants.O_NOATIME).toBe(constants.O_NOATIME);
    closeSync(callersCopy);
  });

  it('never throws from release, and reports what failed', async () => {
    const { reader, writer } = fifo('closed-under');
    const input = await openPassedInput(reader, LIMITS, new Semaphore(1));
    const failures: string[] = [];
    setCleanupErrorHandler((err) => failures.push(err.message));
    try {
      // Something closed the caller's fd under the intake: restoring and closing now fail with EBADF.
      closeSync(reader);
      expect(() => input.release()).not.toThrow();
      expect(failures.join('\n')).toMatch(/EBADF/);
    } finally {
      setCleanupErrorHandler(() => undefined);
      closeSync(writer);
    }
  });

  it('closes the fd and gives up its place when the wait for a file-read slot ends', async () => {
    const path = join(dir, 'waiting');
    writeFileSync(path, 'abc');
    const slots = new Semaphore(1);
    const held = await slots.acquire();
    const gone = new AbortController();
    const fd = openSync(path, 'r');
    const waiting = openPassedInput(fd, LIMITS, slots.forWaiter({ signal: gone.signal }));
    gone.abort(new SubmissionError('caller-gone', 'the helper went away'));
    await expect(waiting).rejects.toMatchObject({ outcome: 'caller-gone' });
    expect(slots.waiting).toBe(0);
    expect(() => fstatSync(fd)).toThrow(/EBADF/);
    held();
    expect(slots.available).toBe(1);
  });
});