/** The contract's outcome table must say what the code does. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OUTCOMES, statusOf } from '../../src/status/outcomes.ts';

const doc = readFileSync(join(import.meta.dirname, '../../../../docs/submission-interface.md'), 'utf8');
const table = doc.split('<!-- outcome-table:begin -->')[1]?.split('<!-- outcome-table:end -->')[0] ?? '';
const rows = table
  .split('\n')
  .filter((line) => line.startsWith('| ') && !line.startsWith('| outcome'))
  .map((line) => line.split('|').slice(1, -1).map((cell) => cell.trim()));

describe('docs/submission-interface.md outcome table', () => {
  it('lists every outcome once, in the order of the code', () => {
    expect(rows.map((r) => r[0])).toEqual([...OUTCOMES]);
  });

  it.each(rows.map((r) => [r[0], r] as const))('%s matches the status table', (outcome, row) => {
    const s = statusOf(outcome as string);
    expect(row).toEqual([s.outcome, String(s.exitCode), String(s.smtpCode), s.enhanced, String(s.qmailCode), s.text]);
  });
});
