/**
 * The envelope and injection groups of the golden corpus, checked against
 * the envelope parser alone: each input's envelope block must come to the
 * expected exit code, and its verdict must hold the expected fragment. The
 * whole-submission runner (test/validate-golden.test.ts) checks the same
 * files end to end; this one pins every case on the parser, so a failure
 * here says which rule moved.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseEnvelopeBlock } from '../../src/envelope/envelope-parser.ts';
import { isSubmissionError } from '../../src/errors.ts';
import { describeStatus, statusOf } from '../../src/status/outcomes.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..', '..', 'test', 'fixtures', 'validate');
const GROUPS = { envelope: 110, injection: 25 } as const;

interface Case {
  readonly name: string;
  readonly input: Buffer;
  readonly exitCode: number;
  readonly fragment: string;
}

function load(group: string): Case[] {
  const dir = join(ROOT, group);
  return readdirSync(dir)
    .filter((file) => file.endsWith('.in'))
    .sort()
    .map((file) => {
      const name = file.slice(0, -3);
      const [code, fragment] = readFileSync(join(dir, `${name}.expect`), 'utf8').split('\n');
      return { name, input: readFileSync(join(dir, file)), exitCode: Number(code), fragment: fragment ?? '' };
    });
}

/** What the envelope alone comes to, worded as the verdict words it. */
function envelopeVerdict(input: Buffer): { exitCode: number; text: string } {
  try {
    const envelope = parseEnvelopeBlock(input);
    return { exitCode: 0, text: `ok: ${envelope.recipients.length} recipients` };
  } catch (error) {
    if (!isSubmissionError(error)) throw error;
    return { exitCode: statusOf(error.outcome).exitCode, text: describeStatus(error.outcome, error.message) };
  }
}

describe.each(Object.entries(GROUPS))('golden fixtures: %s', (group, minimum) => {
  const cases = load(group);

  it(`has at least ${minimum} cases, each with an expectation`, () => {
    expect(cases.length).toBeGreaterThanOrEqual(minimum);
    for (const c of cases) {
      expect([0, 65], c.name).toContain(c.exitCode);
      expect(c.fragment.length, c.name).toBeGreaterThan(0);
    }
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const verdict = envelopeVerdict(c.input);
    expect(verdict.text).toContain(c.fragment);
    expect(verdict.exitCode).toBe(c.exitCode);
  });
});
