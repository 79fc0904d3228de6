import { execFileSync } from 'node:child_process';
import { chmod, chown, mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { prepareQueueDirectories } from '../../../src/5-transport/local-queue/queue-directories.ts';
import { privateRoot } from './queue-fixtures.ts';

let root: string;
let cleanup: () => Promise<void>;
let mounted: string | null = null;

beforeEach(async () => {
  ({ root, cleanup } = await privateRoot());
});
afterEach(async () => {
  if (mounted !== null) execFileSync('umount', [mounted]);
  mounted = null;
  await cleanup();
});

describe('local queue: its directories', () => {
  it('creates the root and incoming/, ready/, state/ with mode 0700', async () => {
    const directories = await prepareQueueDirectories(root);
    for (const path of [root, directories.incoming, directories.ready, directories.state]) {
      const stats = await stat(path);
      expect(stats.mode & 0o7777).toBe(0o700);
      expect(stats.uid).toBe(process.geteuid!());
    }
  });

  it('refuses a root that group or others may enter', async () => {
    await mkdir(root, { mode: 0o700 });
    await chmod(root, 0o750);
    await expect(prepareQueueDirectories(root)).rejects.toThrow(/is open to group or others \(mode 750\); run: chmod 0700/);
  });

  it('refuses a subdirectory owned by another uid', async () => {
    await prepareQueueDirectories(root);
    await chown(join(root, 'ready'), 65534, 65534);
    await expect(prepareQueueDirectories(root)).rejects.toThrow(/ready: is owned by uid 65534, not by uid/);
  });

  it('refuses a subdirectory on another file system', async () => {
    await prepareQueueDirectories(root);
    mounted = join(root, 'state');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', mounted]);
    await expect(prepareQueueDirectories(root)).rejects.toThrow(/state: is on another file system than/);
  });
});
