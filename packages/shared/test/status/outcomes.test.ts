import { describe, expect, it } from 'vitest';
import { describeStatus, isOutcome, OUTCOMES, statusOf } from '../../src/status/outcomes.ts';

const DOCUMENTED_EXIT_CODES = new Set([0, 64, 65, 66, 67, 69, 75, 77, 78]);
const isQmailPermanent = (code: number) => code >= 11 && code <= 40;

describe('status table', () => {
  it('uses only the exit codes the contract documents', () => {
    for (const outcome of OUTCOMES) expect(DOCUMENTED_EXIT_CODES, outcome).toContain(statusOf(outcome).exitCode);
  });

  it('has two success rows, one per commitment (the MTA\'s queue, the local queue), consistent in every column', () => {
    const successes = OUTCOMES.filter((o) => statusOf(o).exitCode === 0);
    expect(successes).toEqual(['ok', 'queued-locally']);
    for (const success of successes) expect(statusOf(success)).toMatchObject({ smtpClass: 2, smtpCode: 250, qmailCode: 0, enhanced: '2.0.0' });
  });

  it('gives permanent SMTP classes exactly to the permanent exit codes', () => {
    for (const outcome of OUTCOMES) {
      const { exitCode, smtpClass } = statusOf(outcome);
      if (exitCode === 0) continue;
      const permanent = exitCode === 64 || exitCode === 65 || exitCode === 67 || exitCode === 69;
      expect(smtpClass, outcome).toBe(permanent ? 5 : 4);
    }
  });

  it('keeps the SMTP code, the enhanced code and the class in agreement', () => {
    for (const outcome of OUTCOMES) {
      const { smtpClass, smtpCode, enhanced } = statusOf(outcome);
      expect(Math.floor(smtpCode / 100), outcome).toBe(smtpClass);
      expect(enhanced, outcome).toMatch(new RegExp(`^${smtpClass}\\.\\d{1,3}\\.\\d{1,3}$`));
    }
  });

  it('never tells a qmail-queue caller "permanent" for a temporary outcome', () => {
    for (const outcome of OUTCOMES) {
      const { exitCode, qmailCode } = statusOf(outcome);
      if (isQmailPermanent(qmailCode)) expect([65, 67, 69], outcome).toContain(exitCode);
      if (exitCode === 67 || exitCode === 69) expect(isQmailPermanent(qmailCode), outcome).toBe(true);
      if (exitCode === 75) expect(isQmailPermanent(qmailCode), outcome).toBe(false);
    }
  });

  it('treats anything unknown as a temporary failure', () => {
    for (const unknown of ['', 'nonsense', 'OK', 'constructor', '__proto__', 'toString']) {
      expect(isOutcome(unknown)).toBe(false);
      expect(statusOf(unknown).exitCode).toBe(75);
      expect(statusOf(unknown).outcome).toBe('internal');
    }
  });

  it('names each exit code by its sysexits name', () => {
    expect(statusOf('recipient-refused').exitName).toBe('EX_NOUSER');
    expect(statusOf('not-authorized').exitName).toBe('EX_NOPERM');
    expect(statusOf('mta-timeout').exitName).toBe('EX_TEMPFAIL');
  });

  it('puts the case detail after the row text', () => {
    expect(describeStatus('mta-tempfail', '451 4.3.0 try later')).toBe('the MTA refused the message for now: 451 4.3.0 try later');
    expect(describeStatus('ok')).toBe('queued');
  });
});
