/**
 * The error a promise rejects with, a SubmissionError (or the subclass
 * given); the test fails when it resolves or rejects with anything else. Call it before awaiting what
 * makes the promise fail, so its rejection is handled from the start.
 */
import { expect } from 'vitest';
import { SubmissionError } from '@mailsubmit/shared';

export async function rejection<E extends Error = SubmissionError>(
  promise: Promise<unknown>,
  kind: abstract new (...args: never[]) => E = SubmissionError as unknown as abstract new (...args: never[]) => E,
): Promise<E> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(kind);
    return err as E;
  }
  throw new Error(`resolved, where a ${kind.name} was expected`);
}
