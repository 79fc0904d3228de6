/**
 * The errors a message can cause, one function each, so that the wording is
 * the same wherever a rule is checked (the encoder's fast path, its slow
 * path, the stream wrapper). Line numbers count over the whole input,
 * envelope block included, which is what a caller sees in an editor.
 */

import { SubmissionError } from '../errors.ts';

export function nulOctet(line: number): SubmissionError {
  return new SubmissionError('message-syntax', 'NUL octet in the message', { line });
}

export function bareCr(line: number): SubmissionError {
  return new SubmissionError('message-syntax', 'bare CR in the message (a CR must be followed by LF)', { line });
}

export function notAHeaderLine(line: number): SubmissionError {
  return new SubmissionError(
    'message-syntax',
    'header line is neither a field ("name: value") nor a continuation (starting with space or tab)',
    { line },
  );
}

export function continuationFirst(line: number): SubmissionError {
  return new SubmissionError(
    'message-syntax',
    'header section starts with a continuation line (space or tab) instead of a field',
    { line },
  );
}

export function emptyMessage(): SubmissionError {
  return new SubmissionError('message-syntax', 'no message after the envelope block');
}

export function lineTooLong(line: number, limit: number): SubmissionError {
  return new SubmissionError('over-limit', `line longer than ${limit} octets (not counting the line end)`, { line });
}

export function headerTooLarge(line: number, limit: number): SubmissionError {
  return new SubmissionError('over-limit', `header section larger than ${limit} octets`, { line });
}

export function messageTooLarge(line: number, limit: number): SubmissionError {
  return new SubmissionError('over-limit', `message larger than ${limit} octets`, { line });
}

export function sizeMismatch(declared: number, actual: number): SubmissionError {
  return new SubmissionError(
    'size-mismatch',
    `declared ${declared} octets, but the message has ${actual} octets`,
    { attribute: 'size' },
  );
}

/** Misuse by the calling code (write after end); never caused by a caller's input. */
export function encoderMisuse(what: string): SubmissionError {
  return new SubmissionError('internal', `message encoder: ${what}`);
}
