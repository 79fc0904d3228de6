/**
 * The SubmissionError a promise rejects with; the test fails when it
 * resolves or rejects with anything else. Call it before awaiting what
 * makes the promise fail, so its rejection is handled from the start.
 */
import { expect } from 'vitest';
import { SubmissionError } from '@mailsubmit/shared';

export async function rejection(promise: Promise<unknown>): Promise<SubmissionError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(SubmissionError);
    return err as SubmissionError;
  }
  throw new Error('resolved, where a SubmissionError was expected');
}
