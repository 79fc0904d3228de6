/**
 * The C helper and the daemon must speak the same numbers. This parses the
 * helper's frame.h and checks every MSUB_ define against the TypeScript
 * constants (and the helper's own exit codes against the status table), in
 * both directions: a constant missing on either side fails too.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as constants from '../../src/frame/constants.ts';
import { isOutcome, statusOf } from '../../src/status/outcomes.ts';

const headerPath = join(import.meta.dirname, '../../../submit-helper/src/frame.h');

function parseDefines(source: string): Map<string, string | number> {
  const defines = new Map<string, string | number>();
  for (const line of source.split('\n')) {
    const match = /^#define\s+(MSUB_\w+)\s+(.+?)\s*$/.exec(line);
    if (!match) continue;
    const [, name, raw] = match as unknown as [string, string, string];
    if (/^"[^"\\]*"$/.test(raw)) defines.set(name, raw.slice(1, -1));
    else if (/^(0x[0-9a-fA-F]+|[0-9]+)$/.test(raw)) defines.set(name, Number(raw));
    else throw new Error(`frame.h: ${name} is not a plain literal: ${raw}`);
  }
  return defines;
}

const defines = parseDefines(readFileSync(headerPath, 'utf8'));
const tsConstants = Object.entries(constants).filter(([, v]) => typeof v === 'number' || typeof v === 'string');
const outcomeDefines = [...defines].filter(([name]) => /^MSUB_OUTCOME_\w+_(EXIT|QMAIL)$/.test(name));
const frameDefines = [...defines].filter(([name]) => !name.startsWith('MSUB_OUTCOME_'));

describe('frame.h', () => {
  it('defines something (the parser found the file\'s defines)', () => {
    expect(frameDefines.length).toBeGreaterThan(10);
  });

  it.each(tsConstants)('has MSUB_%s with the same value', (name, value) => {
    expect(defines.get(`MSUB_${name}`)).toBe(value);
  });

  it.each(frameDefines)('%s has a TypeScript counterpart', (name) => {
    expect(Object.keys(constants)).toContain(name.slice('MSUB_'.length));
  });

  it.each(outcomeDefines)('%s matches the status table', (name, value) => {
    const match = /^MSUB_OUTCOME_(\w+)_(EXIT|QMAIL)$/.exec(name) as RegExpExecArray;
    const outcome = (match[1] as string).toLowerCase().replaceAll('_', '-');
    expect(isOutcome(outcome), `${outcome} is an outcome`).toBe(true);
    const row = statusOf(outcome);
    expect(value).toBe(match[2] === 'EXIT' ? row.exitCode : row.qmailCode);
  });

  it('gives an exit code and a qmail-queue code for each outcome it uses', () => {
    const exits = outcomeDefines.filter(([n]) => n.endsWith('_EXIT')).map(([n]) => n.replace(/_EXIT$/, ''));
    const qmails = outcomeDefines.filter(([n]) => n.endsWith('_QMAIL')).map(([n]) => n.replace(/_QMAIL$/, ''));
    expect(exits.length).toBeGreaterThan(0);
    expect(exits.sort()).toEqual(qmails.sort());
  });
});
