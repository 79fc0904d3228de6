/**
 * The daemon's log goes to standard output in batches (logging/logger.ts).
 * Batching must never cost a line: lines appear while the process runs
 * (without more lines pushing them out), every line appears once and in
 * order, and what is still buffered at exit is written.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const LOGGER = join(import.meta.dirname, '..', '..', 'src', 'logging', 'logger.ts');

/** Runs `body` in a fresh Node with `log` (the daemon's logger at info) in scope. */
function runLogger(body: string, onLine?: (lines: string[], stdin: NodeJS.WritableStream) => void): Promise<{ lines: string[]; code: number | null }> {
  const script = `const { createLogger } = await import(${JSON.stringify(LOGGER)}); const log = createLogger({ level: 'info' }); ${body}`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  let text = '';
  child.stdout.on('data', (chunk: Buffer) => {
    text += chunk.toString('utf8');
    onLine?.(text.split('\n').filter((l) => l !== ''), child.stdin);
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ lines: text.split('\n').filter((l) => l !== ''), code }));
  });
}

const messages = (lines: string[]) => lines.map((l) => (JSON.parse(l) as { msg: string }).msg);

describe('the batched standard output', () => {
  it('writes a few lines while the process keeps running, without more lines to push them out', async () => {
    // The child exits only when told to, and it is told only once all three lines arrived.
    const { lines, code } = await runLogger(
      `log.info('one'); log.info('two'); log.info('three'); process.stdin.once('data', () => process.exit(0)); process.stdin.resume();`,
      (seen, stdin) => {
        if (seen.length === 3) stdin.write('x');
      },
    );
    expect(code).toBe(0);
    expect(messages(lines)).toEqual(['one', 'two', 'three']);
  });

  it('writes what is buffered when the process exits at once', async () => {
    const { lines, code } = await runLogger(`log.info('first'); log.warn({ k: 1 }, 'last'); process.exit(3);`);
    expect(code).toBe(3);
    expect(messages(lines)).toEqual(['first', 'last']);
  });

  it('writes many lines once each, in order', async () => {
    const { lines } = await runLogger(`for (let i = 0; i < 2000; i++) log.info({ i }, 'line ' + i);`);
    expect(lines.map((l) => (JSON.parse(l) as { i: number }).i)).toEqual(Array.from({ length: 2000 }, (_, i) => i));
  });
});
