/**
 * limitMallocArenas: the cap on glibc's malloc arenas the daemon sets at
 * start. Its effect on memory is measured by test/load/hostile-callers.test.ts;
 * here, that it takes a count and refuses anything else before reaching C.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { limitMallocArenas } from '../src/index.ts';

describe('limitMallocArenas', () => {
  it('refuses a count that is not a whole number from 1 to 64', () => {
    for (const count of [0, -1, 1.5, 65, Number.NaN]) expect(() => limitMallocArenas(count), String(count)).toThrow(TypeError);
  });

  it('sets the cap in a process that then starts threads and allocates', () => {
    // In a child, so this test process keeps glibc's defaults.
    const script = `
      import { limitMallocArenas } from ${JSON.stringify(new URL('../src/index.ts', import.meta.url).pathname)};
      import { readFile } from 'node:fs/promises';
      limitMallocArenas(1);
      await Promise.all(Array.from({ length: 16 }, () => readFile('/proc/self/status')));
      console.log('ok');
    `;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(out.trim()).toBe('ok');
  });
});
