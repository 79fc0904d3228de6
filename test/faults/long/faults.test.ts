/**
 * The long fault campaigns (`npm run test:faults`; not in the default run):
 * 2,000 messages each through the real helper, daemon and a private Postfix,
 * with every fault the proxy knows and the daemon SIGKILLed and restarted at
 * random moments, once with helpers left alone and once with helpers
 * SIGKILLed at random moments; then a retrying caller, which must end with
 * every message delivered except those refused for good. Each prints its
 * table (docs/reliability.md quotes them). FAULTS_SEED and FAULTS_MESSAGES
 * override the seed and the size.
 */
import { describe, expect, it } from 'vitest';
import { PrivatePostfix } from '../../support/private-postfix.ts';
import { expectContractKept } from '../campaign-checks.ts';
import { runCampaign, type CampaignOptions } from '../driver.ts';
import { ALL_FAULTS } from '../fault-schedule.ts';
import { formatReport } from '../report.ts';

const SEED = Number(process.env.FAULTS_SEED ?? 20261124);
const MESSAGES = Number(process.env.FAULTS_MESSAGES ?? 2_000);
/** A campaign of 2,000 takes minutes on a loaded 2-core machine; a hung one must still end. */
const CAMPAIGN_TIMEOUT_MS = 40 * 60_000;

const BASE: CampaignOptions = {
  messages: MESSAGES,
  concurrency: 8,
  seed: SEED,
  rates: { connection: 0.15, transaction: 0.4 },
  daemonKillEveryMs: [5_000, 15_000],
  helperKillShare: 0,
  retries: 0,
  largeShare: 0.05,
};

describe.skipIf(!PrivatePostfix.isAvailable() && !process.env.CI)('fault campaigns (long)', () => {
  it(`${MESSAGES} messages, every fault, daemon SIGKILLs`, { timeout: CAMPAIGN_TIMEOUT_MS }, async () => {
    const result = await runCampaign(BASE);
    console.log(formatReport(result));
    expectContractKept(result, MESSAGES);
    expect(ALL_FAULTS.filter((kind) => (result.table.faultsByKind[kind] ?? 0) === 0)).toEqual([]);
  });

  it(`${MESSAGES} messages, every fault, daemon and helper SIGKILLs`, { timeout: CAMPAIGN_TIMEOUT_MS }, async () => {
    const result = await runCampaign({ ...BASE, seed: SEED + 1, helperKillShare: 0.1, helperKillAtMs: [0, 60] });
    console.log(formatReport(result));
    expectContractKept(result, MESSAGES);
    expect(result.table.helperKills).toBeGreaterThan(0);
  });

  it('a caller that retries 75: everything delivered at least once, except what was refused for good', { timeout: CAMPAIGN_TIMEOUT_MS }, async () => {
    const messages = Math.ceil(MESSAGES / 2);
    const result = await runCampaign({ ...BASE, messages, seed: SEED + 2, rates: { connection: 0.1, transaction: 0.3 }, helperKillShare: 0.05, retries: 10 });
    console.log(formatReport(result));
    expectContractKept(result, messages);
    // 67 and 69 are the caller's cue to bounce; nothing else may be left undelivered.
    expect(Object.keys(result.table.notDeliveredByFinalExit).filter((code) => code !== '67' && code !== '69')).toEqual([]);
  });
});
