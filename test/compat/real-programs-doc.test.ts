/**
 * The "## Programs" table of docs/compatibility.md is the suite's own list:
 * one row per case of test/compat/programs.ts, in its order, with the
 * version installed here (dpkg, or node_modules for an npm package), the
 * sendmail arguments the suite records, and the result the suite asserts
 * ("same as Postfix", or the known difference its agreement test expects).
 * A program added, dropped, upgraded or fixed without its row fails here;
 * the expected table is in the failure.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROGRAM_CASES, programsTable } from './programs.ts';

const ROOT = join(import.meta.dirname, '..', '..');

function programsSection(): string {
  const doc = readFileSync(join(ROOT, 'docs', 'compatibility.md'), 'utf8');
  const start = doc.indexOf('\n## Programs\n');
  if (start === -1) return '';
  const next = doc.indexOf('\n## ', start + 1);
  return doc.slice(start, next === -1 ? undefined : next);
}

describe('docs/compatibility.md, Programs', () => {
  it('has the suite\'s table: every program run, its installed version, its sendmail call, the asserted result', () => {
    const section = programsSection();
    expect(section, 'docs/compatibility.md has no "## Programs" section').not.toBe('');
    const table = section
      .split('\n')
      .filter((line) => line.startsWith('|'))
      .join('\n');
    expect(table).toBe(programsTable());
  });

  it('names every program of the suite once', () => {
    const names = PROGRAM_CASES.map((program) => program.name);
    expect(new Set(names).size).toBe(names.length);
  });
});
