import type { Outcome } from './status/outcomes.ts';

/** Where in the caller's input a problem was found. */
export interface InputPosition {
  /** 1-based line number counted over the whole input (envelope block and message). */
  readonly line?: number;
  /** Canonical attribute name (`dsn-orig-rcpt`) when the problem is in one attribute. */
  readonly attribute?: string;
}

/**
 * The one error type of the submission path. `outcome` is a key of the status
 * table, which decides the exit code; `message` is the one line a person reads,
 * already prefixed with the position (`line 3: attribute "recipient": ...`).
 */
export class SubmissionError extends Error {
  readonly outcome: Outcome;
  readonly detail: string;
  readonly position: InputPosition;

  constructor(outcome: Outcome, detail: string, position: InputPosition = {}) {
    super(formatPosition(position) + detail);
    this.name = 'SubmissionError';
    this.outcome = outcome;
    this.detail = detail;
    this.position = position;
  }
}

function formatPosition({ line, attribute }: InputPosition): string {
  let prefix = '';
  if (line !== undefined) prefix += `line ${line}: `;
  if (attribute !== undefined) prefix += `attribute "${attribute}": `;
  return prefix;
}

export function isSubmissionError(value: unknown): value is SubmissionError {
  return value instanceof SubmissionError;
}
