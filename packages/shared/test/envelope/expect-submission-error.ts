/**
 * Test helper: run a function that must fail, and check the SubmissionError
 * it throws (outcome, position, and optionally the words of the detail).
 */
import { expect } from 'vitest';
import { SubmissionError } from '../../src/errors.ts';
import type { Outcome } from '../../src/status/outcomes.ts';

export interface ExpectedError {
  readonly outcome: Outcome;
  readonly line?: number;
  readonly attribute?: string;
  /** Matched against the detail (the message without its position prefix). */
  readonly detail?: RegExp;
}

export function expectSubmissionError(run: () => unknown, expected: ExpectedError): SubmissionError {
  let thrown: unknown;
  try {
    run();
  } catch (error) {
    thrown = error;
  }
  expect(thrown, 'expected a SubmissionError, nothing was thrown').toBeInstanceOf(SubmissionError);
  const error = thrown as SubmissionError;
  expect(error.outcome).toBe(expected.outcome);
  if (expected.line !== undefined) expect(error.position.line).toBe(expected.line);
  if (expected.attribute !== undefined) expect(error.position.attribute).toBe(expected.attribute);
  if (expected.detail !== undefined) expect(error.detail).toMatch(expected.detail);
  return error;
}
