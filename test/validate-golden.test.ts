/**
 * The golden corpus: every test/fixtures/validate/<group>/<name>.in is a
 * whole submission; <name>.expect holds the exit code a submission of it must
 * get (line 1) and a fragment its verdict must contain (line 2). Each input
 * is also run split into small chunks, because a verdict must never depend
 * on how a pipe delivers the bytes.
 *
 * The message-strict group is checked as `limits.strict_message_syntax = true`
 * checks (the RFC 5322 refusals); every other group with the defaults, which
 * take a message as Postfix takes it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { validateSubmission, withLimits } from '@mailsubmit/shared';

const ROOT = join(import.meta.dirname, 'fixtures', 'validate');

interface GoldenCase {
  readonly group: string;
  readonly name: string;
  readonly input: Buffer;
  readonly exitCode: number;
  readonly fragment: string;
}

function loadCases(): GoldenCase[] {
  const cases: GoldenCase[] = [];
  for (const group of readdirSync(ROOT).sort()) {
    for (const file of readdirSync(join(ROOT, group)).sort()) {
      if (!file.endsWith('.in')) continue;
      const name = file.slice(0, -3);
      const [code, fragment] = readFileSync(join(ROOT, group, `${name}.expect`), 'utf8').split('\n');
      cases.push({ group, name, input: readFileSync(join(ROOT, group, file)), exitCode: Number(code), fragment: fragment ?? '' });
    }
  }
  return cases;
}

function chunked(input: Buffer, size: number): Readable {
  const pieces: Buffer[] = [];
  for (let i = 0; i < input.length; i += size) pieces.push(input.subarray(i, i + size));
  return Readable.from(pieces);
}

const cases = loadCases();
const STRICT = { limits: withLimits({ strictMessageSyntax: true }) };
const optionsFor = (group: string) => (group === 'message-strict' ? STRICT : {});

describe('golden corpus', () => {
  it('is large enough to mean something', () => {
    expect(cases.length).toBeGreaterThanOrEqual(150);
  });

  it('has an expectation with a code and a fragment for every input', () => {
    for (const c of cases) {
      expect(Number.isInteger(c.exitCode), `${c.group}/${c.name}.expect line 1`).toBe(true);
      expect(c.fragment.length, `${c.group}/${c.name}.expect line 2`).toBeGreaterThan(0);
    }
  });

  describe.each([...new Set(cases.map((c) => c.group))])('%s', (group) => {
    it.each(cases.filter((c) => c.group === group).map((c) => [c.name, c] as const))('%s', async (_name, c) => {
      const whole = await validateSubmission(Readable.from([c.input]), optionsFor(c.group));
      expect(whole.text).toContain(c.fragment);
      expect(whole.exitCode).toBe(c.exitCode);

      const split = await validateSubmission(chunked(c.input, 3), optionsFor(c.group));
      expect(split.text).toBe(whole.text);
      expect(split.exitCode).toBe(whole.exitCode);
    });
  });
});
