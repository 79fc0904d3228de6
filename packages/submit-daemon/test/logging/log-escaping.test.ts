/**
 * Caller text in the daemon's log reads as what it says: every string that
 * reaches a line, at any depth and through any logging call, has its
 * controls, format characters and lone surrogates escaped, in the JSON and
 * in the pretty form. pino's JSON alone escapes C0 controls only.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { unescapeText } from '@mailsubmit/shared';
import { createLogger, escapeForLog } from '../../src/logging/logger.ts';

const LOGGER = join(import.meta.dirname, '..', '..', 'src', 'logging', 'logger.ts');
// Raw in the line: anything a terminal or a bidi-aware viewer acts on.
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;
const HOSTILE = 'alice\u202egro.elpmaxe@evil.example\u001b[2J\u009b\u2066\u200b\ufeff\u2028';

function capture(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
      callback();
    },
  });
  return { lines, stream };
}

async function settle(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
}

describe('escaping at the logger', () => {
  it('escapes every string field, nested values, arrays, keys and the message', async () => {
    const { lines, stream } = capture();
    const log = createLogger({ level: 'info', destination: stream });
    log.warn(
      { sender: HOSTILE, client: { helo_name: 'helo\u202e', client_name: 'x\u001b]0;title\u0007' }, argv: ['-f', 'a\u2067b'], [`k\u202e`]: 1, n: 3, ok: true },
      `message \u202e${'with'} ESC \u001b`,
    );
    await settle();
    expect(lines).toHaveLength(1);
    const line = lines[0] as string;
    expect(line).not.toMatch(UNSAFE);
    const parsed = JSON.parse(line) as Record<string, unknown>;
    expect(JSON.stringify(parsed)).not.toMatch(UNSAFE);
    expect(parsed.sender).toBe('alice\\u202egro.elpmaxe@evil.example\\x1b[2J\\u009b\\u2066\\u200b\\ufeff\\u2028');
    expect(unescapeText(parsed.sender as string)).toBe(HOSTILE);
    expect(parsed.client).toEqual({ helo_name: 'helo\\u202e', client_name: 'x\\x1b]0;title\\x07' });
    expect(parsed.argv).toEqual(['-f', 'a\\u2067b']);
    expect(parsed['k\\u202e']).toBe(1);
    expect(parsed.n).toBe(3);
    expect(parsed.ok).toBe(true);
    expect(parsed.msg).toBe('message \\u202ewith ESC \\x1b');
  });

  it('escapes child bindings, errors and octets', async () => {
    const { lines, stream } = capture();
    const log = createLogger({ level: 'info', destination: stream }).child({ user: 'b\u202eob' });
    const err = Object.assign(new Error('refused \u202e'), { code: 'E\u200b' });
    log.error({ err, raw: Buffer.from([0x61, 0xff, 0x1b]) }, 'failed');
    await settle();
    const line = lines[0] as string;
    expect(line).not.toMatch(UNSAFE);
    const parsed = JSON.parse(line) as { user: string; err: { message: string; code: string; stack: string }; raw: string };
    expect(parsed.user).toBe('b\\u202eob');
    expect(parsed.err.message).toBe('refused \\u202e');
    expect(parsed.err.code).toBe('E\\u200b');
    expect(parsed.err.stack).not.toContain('\n');
    expect(parsed.raw).toBe('a\\xff\\x1b');
  });

  it('tells different values apart (a written backslash is doubled)', () => {
    expect(escapeForLog('\\u202e')).not.toBe(escapeForLog('\u202e'));
  });

  it('shows the same escapes in the pretty form', () => {
    const script = `const { createLogger } = await import(${JSON.stringify(LOGGER)}); const log = createLogger({ level: 'info', pretty: true }); log.info({ sender: ${JSON.stringify(HOSTILE)} }, 'submission \\u202e');`;
    const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/ INFO submission \\u202e sender=alice\\u202egro\.elpmaxe@evil\.example\\x1b\[2J\\u009b\\u2066\\u200b\\ufeff\\u2028\n$/);
    expect(result.stdout.slice(0, -1)).not.toMatch(UNSAFE);
  });
});

describe('child loggers', () => {
  it('keep the bindings of every ancestor, escaped', async () => {
    const { lines, stream } = capture();
    const log = createLogger({ level: 'info', destination: stream }).child({ sid: 'a\u202e' }).child({ uid: 7, user: '\u001bx' });
    log.info('hello');
    await settle();
    expect(JSON.parse(lines[0] as string)).toMatchObject({ sid: 'a\\u202e', uid: 7, user: '\\x1bx', msg: 'hello' });
  });
});
