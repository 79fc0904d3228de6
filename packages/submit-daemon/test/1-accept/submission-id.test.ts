/** Submission ids: 12 hex digits each, none repeated across several draws from the random pool. */
import { describe, expect, it } from 'vitest';
import { newSubmissionId } from '../../src/1-accept/submission-id.ts';

describe('newSubmissionId', () => {
  it('gives 12 hex digits, different every time, across refills of its pool', () => {
    const ids = Array.from({ length: 5000 }, () => newSubmissionId());
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{12}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
