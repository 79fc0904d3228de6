/**
 * What every fault campaign must show, quick or long: the contract's
 * guarantees, checked against the ledger. Shared so the long runs hold the
 * daemon to exactly what the default test run does.
 */
import { expect } from 'vitest';
import type { CampaignResult } from './driver.ts';
import { DOCUMENTED_EXITS, type EntryVerdict } from './ledger.ts';

const named = (verdicts: readonly EntryVerdict[]) => verdicts.map((v) => `${v.id}: exits ${v.exits.join(',')}; ${v.causes.join(' ')}; ${v.said}`);

export function expectContractKept(result: CampaignResult, messages: number): void {
  const { table } = result;
  expect(table.submissions).toBe(messages);
  // Exit 0 means Postfix has it: never lost, never altered.
  expect(named(table.lost)).toEqual([]);
  expect(named(table.partial)).toEqual([]);
  // A failure that was delivered anyway needs a fault after Postfix's commit, or a kill, to explain it.
  expect(named(table.unexplained)).toEqual([]);
  expect(named(table.undocumentedExits)).toEqual([]);
  // Resending a spent message source is how an empty message replaces the real one.
  expect(named(table.resentAfterData)).toEqual([]);
  expect(table.stray).toBe(0);
  expect(table.hung).toBe(0);
  expect(result.daemonCrashes).toBe(0);
  // Nothing in a campaign is the caller's fault, not even a daemon met while it restarts.
  expect(named(table.fixTheCallExits)).toEqual([]);
  for (const code of Object.keys(table.exitsByCode)) {
    // "signal" is a helper the campaign killed itself.
    if (code !== 'signal') expect(DOCUMENTED_EXITS.has(Number(code)), `exit ${code}`).toBe(true);
  }
  // Most messages get through: the faults are the exception, not the rule.
  expect(table.deliveredOnce).toBeGreaterThan(table.submissions / 3);
}
