/**
 * `mailsubmitctl validate [FILE]`: what would a submission of this input come
 * to? Prints one verdict line and exits with exactly the code `mailsubmit`
 * would give for it, without sending anything.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Command } from 'commander';
import {
  DEFAULT_LIMITS,
  refusedVerdict,
  SubmissionError,
  validateSubmission,
  withLimits,
  type Limits,
  type Verdict,
} from '@mailsubmit/shared';
import { parseOctetCount } from '../options.ts';

interface ValidateOptions {
  json?: boolean;
  maxMessageSize?: number;
  maxLineLength?: number;
  maxRecipients?: number;
  strictMessageSyntax?: boolean;
}

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description('check an envelope block and message (FILE, or standard input) without sending it')
    .argument('[file]', 'submission to check; standard input when absent')
    .option('--json', 'print the verdict, the parsed envelope and message statistics as JSON')
    .option('--max-message-size <octets>', `message size limit (default ${DEFAULT_LIMITS.maxMessageOctets})`, parseOctetCount)
    .option('--max-line-length <octets>', `line length limit (default ${DEFAULT_LIMITS.maxLineOctets})`, parseOctetCount)
    .option('--max-recipients <count>', `recipient limit (default ${DEFAULT_LIMITS.maxRecipients})`, parseOctetCount)
    .option('--strict-message-syntax', 'refuse a message RFC 5322 does not allow, as limits.strict_message_syntax = true does')
    .action(async (file: string | undefined, options: ValidateOptions) => {
      const verdict = await validateInput(file, limitsFrom(options));
      report(verdict, options.json === true);
      process.exitCode = verdict.exitCode;
    });
}

async function validateInput(file: string | undefined, limits: Limits): Promise<Verdict> {
  if (file === undefined && process.stdin.isTTY) {
    return refusedVerdict(new SubmissionError('no-input', 'standard input is a terminal: give a FILE or pipe the submission in'));
  }
  const input: Readable = file === undefined || file === '-' ? process.stdin : createReadStream(file);
  return validateSubmission(input, { limits });
}

function limitsFrom(options: ValidateOptions): Limits {
  return withLimits({
    ...(options.maxMessageSize !== undefined ? { maxMessageOctets: options.maxMessageSize } : {}),
    ...(options.maxLineLength !== undefined ? { maxLineOctets: options.maxLineLength } : {}),
    ...(options.maxRecipients !== undefined ? { maxRecipients: options.maxRecipients } : {}),
    ...(options.strictMessageSyntax === true ? { strictMessageSyntax: true } : {}),
  });
}

function report(verdict: Verdict, json: boolean): void {
  if (json) {
    const { text, outcome, exitCode, envelope, stats } = verdict;
    process.stdout.write(`${JSON.stringify({ verdict: text, outcome, exitCode, envelope, stats })}\n`);
    return;
  }
  if (verdict.exitCode === 0) process.stdout.write(`${verdict.text}\n`);
  else process.stderr.write(`mailsubmitctl: ${verdict.text}\n`);
}
