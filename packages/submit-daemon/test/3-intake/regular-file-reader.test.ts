/**
 * The regular-file reader: the bytes from the file's current offset, the
 * limits' hook on every chunk, and an fd closed only once no read is in
 * flight (its number must not be reused under a pool thread still reading).
 */
import { closeSync, fstatSync, mkdtempSync, openSync, readSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { RegularFileReader, type FileReaderHooks } from '../../src/3-intake/regular-file-reader.ts';

const dir = mkdtempSync(join(tmpdir(), 'file-reader-'));
const passAll: FileReaderHooks = { check: () => null, readFailed: (err) => err, closeFailed: () => undefined };

function closed(reader: RegularFileReader): Promise<unknown> {
  return reader.closed ? Promise.resolve() : new Promise((resolve) => reader.once('close', resolve));
}

function fileWith(name: string, content: Buffer): number {
  const path = join(dir, name);
  writeFileSync(path, content);
  return openSync(path, 'r');
}

describe('RegularFileReader', () => {
  it('reads from the current offset to the end, across chunks, and closes the fd', async () => {
    const content = Buffer.alloc(200_000);
    for (let i = 0; i < content.length; i++) content[i] = i % 251;
    const fd = fileWith('long', content);
    readSync(fd, Buffer.alloc(10));
    const reader = new RegularFileReader(fd, passAll);
    expect((await buffer(reader)).equals(content.subarray(10))).toBe(true);
    await closed(reader);
    expect(() => fstatSync(fd)).toThrow(/EBADF/);
  });

  it('ends with the error the check returns, passing no more bytes on', async () => {
    const fd = fileWith('checked', Buffer.alloc(100_000, 0x61));
    let seen = 0;
    const reader = new RegularFileReader(fd, { ...passAll, check: (octets) => ((seen += octets) > 70_000 ? new Error('too long') : null) });
    const chunks: Buffer[] = [];
    reader.on('data', (chunk: Buffer) => chunks.push(chunk));
    await expect(new Promise((_resolve, reject) => reader.once('error', reject))).rejects.toThrow('too long');
    expect(Buffer.concat(chunks).length).toBe(64 * 1024);
  });

  it('closes the fd only after a read in flight has come back', async () => {
    const fd = fileWith('in-flight', Buffer.alloc(1000, 0x62));
    const reader = new RegularFileReader(fd, passAll);
    reader.read(0); // starts a read in the thread pool
    reader.destroy();
    expect(() => fstatSync(fd)).not.toThrow();
    await closed(reader);
    expect(() => fstatSync(fd)).toThrow(/EBADF/);
  });

  it('reports a failed close and still ends', async () => {
    const fd = fileWith('closed-under', Buffer.from('abc'));
    const failures: string[] = [];
    const reader = new RegularFileReader(fd, { ...passAll, closeFailed: (err) => failures.push(err.message) });
    closeSync(fd);
    reader.destroy();
    await closed(reader);
    expect(failures.join('\n')).toMatch(/EBADF/);
  });
});
