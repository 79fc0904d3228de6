/**
 * A short fault campaign in the default test run: a few hundred messages
 * through the real helper and daemon, every fault kind the proxy knows dealt
 * a few times, the daemon SIGKILLed and restarted now and then. Nothing the
 * helper called a success may be lost, nothing may arrive altered, every exit
 * is one of the contract's, and each fault kind really happened (so a broken
 * injector fails here instead of passing quietly). `npm run test:faults`
 * runs the long campaigns.
 */
import { describe, expect, it } from 'vitest';
import { PrivatePostfix } from '../support/private-postfix.ts';
import { runCampaign, type CampaignResult } from './driver.ts';
import { ALL_FAULTS, injectedCode } from './fault-schedule.ts';
import { expectContractKept } from './campaign-checks.ts';
import { formatReport } from './report.ts';

const SEED = 20261124;

describe.skipIf(!PrivatePostfix.isAvailable() && !process.env.CI)('fault campaign (quick)', () => {
  let result: CampaignResult;

  it('loses nothing, alters nothing, and answers every fault with a documented exit', { timeout: 300_000 }, async () => {
    result = await runCampaign({
      messages: 240,
      concurrency: 6,
      seed: SEED,
      // About three of every transaction fault, two or more of every connection fault.
      rates: { connection: 0.15, transaction: 0.5 },
      daemonKillEveryMs: [4_000, 8_000],
      helperKillShare: 0.03,
      retries: 0,
      largeShare: 0.08,
    });
    console.log(formatReport(result));
    expectContractKept(result, 240);
  });

  it('injected every fault kind', () => {
    expect(result, 'the campaign ran').toBeDefined();
    const missing = ALL_FAULTS.filter((kind) => (result.table.faultsByKind[kind] ?? 0) === 0);
    expect(missing).toEqual([]);
    expect(result.table.daemonKills).toBeGreaterThan(0);
  });

  it('a permanent refusal at MAIL, RCPT or the end of data ends in 67 or 69, never 0 or 75', () => {
    expect(result, 'the campaign ran').toBeDefined();
    let seen = 0;
    for (const [fault, exits] of Object.entries(result.table.exitsByFault)) {
      // Faults whose submission was also hit by a kill ("+kill") are not looked at here.
      const code = /^[a-z-]+-\d{3}$/.test(fault) ? injectedCode(fault as (typeof ALL_FAULTS)[number]) : null;
      if (code === null || code < 500 || fault.startsWith('ehlo-')) continue;
      for (const [exit, count] of Object.entries(exits)) {
        seen += count;
        expect(['67', '69'], `${fault} gave ${exit}`).toContain(exit);
      }
    }
    expect(seen).toBeGreaterThan(0);
  });

  it('a temporary refusal at MAIL, RCPT or the end of data never ends in success', () => {
    expect(result, 'the campaign ran').toBeDefined();
    for (const [fault, exits] of Object.entries(result.table.exitsByFault)) {
      if (!/^(mail|rcpt|data-end)-4\d\d$/.test(fault)) continue;
      expect(Object.keys(exits), fault).not.toContain('0');
    }
  });

  it('a caller killed while the transaction is open, before the dot: nothing delivered', { timeout: 120_000 }, async () => {
    // Postfix's reply to RCPT comes a second late (slow-rcpt); every helper
    // is killed 300-800 ms after it started, which is always before the
    // daemon can have sent the dot, however loaded the machine.
    const killed = await runCampaign({
      messages: 16,
      concurrency: 4,
      seed: SEED + 100,
      rates: { connection: 0, transaction: 1 },
      only: ['slow-rcpt'],
      daemonKillEveryMs: null,
      helperKillShare: 1,
      helperKillAtMs: [300, 800],
      retries: 0,
      largeShare: 0,
    });
    console.log(formatReport(killed));
    expect(killed.table.helperKills).toBe(16);
    expect(killed.table.exitsByFault['slow-rcpt+kill']).toEqual({ signal: 16 });
    expect(killed.table.deliveredByFault['slow-rcpt+kill'] ?? 0).toBe(0);
  });
});
