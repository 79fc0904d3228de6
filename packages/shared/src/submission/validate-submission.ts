/**
 * Runs a whole input through the submission checks without sending it
 * anywhere: the basis of `mailsubmitctl validate` and of the golden corpus.
 */
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SubmissionError } from '../errors.ts';
import type { Limits } from '../limits.ts';
import { SubmissionParser } from './submission-parser.ts';
import { acceptedVerdict, refusedVerdict, type Verdict } from './verdict.ts';

/** Input read errors that mean "not readable as a message" rather than a passing fault. */
const UNREADABLE_CODES = new Set(['ENOENT', 'EISDIR', 'EBADF', 'EINVAL', 'ENXIO', 'EACCES']);

export async function validateSubmission(input: Readable, options: { limits?: Limits } = {}): Promise<Verdict> {
  const parser = new SubmissionParser(options.limits ? { limits: options.limits } : {});
  const discard = new Writable({ write: (_chunk, _encoding, callback) => callback() });
  try {
    await pipeline(input, parser, discard);
  } catch (err) {
    return refusedVerdict(classifyReadError(err));
  }
  const { parsedEnvelope, stats } = parser;
  if (parsedEnvelope === null || stats === null) return refusedVerdict(new Error('parser ended without a verdict'));
  return acceptedVerdict(parsedEnvelope, stats);
}

export async function validateBuffer(input: Buffer | string, options: { limits?: Limits } = {}): Promise<Verdict> {
  return validateSubmission(Readable.from([Buffer.from(input)]), options);
}

const CODE_WORDS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  EISDIR: 'it is a directory',
  EACCES: 'permission denied',
  EBADF: 'not open for reading',
  EINVAL: 'not readable as a stream',
  ENXIO: 'no such device',
};

function classifyReadError(err: unknown): unknown {
  if (err instanceof SubmissionError) return err;
  const { code, path } = (err ?? {}) as NodeJS.ErrnoException;
  if (code !== undefined && UNREADABLE_CODES.has(code)) {
    return new SubmissionError('no-input', `cannot read ${path ?? 'the input'}: ${CODE_WORDS[code] ?? code}`);
  }
  if (code !== undefined) return new SubmissionError('input-error', `reading the input failed (${code})`);
  return err;
}
