import { describe, expect, it } from 'vitest';
import { SubmissionError } from '../../src/errors.ts';
import { assertSafeCommandLine, MAX_COMMAND_LINE_OCTETS } from '../../src/smtp/command-line-safety.ts';

function codeOf(fn: () => void): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

describe('assertSafeCommandLine', () => {
  it('accepts an ordinary command and UTF-8', () => {
    expect(() => assertSafeCommandLine('MAIL FROM:<a@b> SIZE=10')).not.toThrow();
    expect(() => assertSafeCommandLine('RCPT TO:<j\u00f6rg@example.org>')).not.toThrow();
  });

  it.each(['\r', '\n', '\0', '\t', '\x1b', '\x7f'])('refuses a line containing %j', (char) => {
    expect(codeOf(() => assertSafeCommandLine(`MAIL FROM:<a${char}b>`))).toBe('ERR_UNSAFE_COMMAND');
  });

  it('refuses an unpaired surrogate', () => {
    expect(codeOf(() => assertSafeCommandLine('RCPT TO:<\udc00@b>'))).toBe('ERR_UNSAFE_COMMAND');
  });

  it('measures the limit in octets, not characters', () => {
    expect(() => assertSafeCommandLine('x'.repeat(MAX_COMMAND_LINE_OCTETS))).not.toThrow();
    expect(codeOf(() => assertSafeCommandLine('x'.repeat(MAX_COMMAND_LINE_OCTETS + 1)))).toBe('ERR_UNSAFE_COMMAND');
    // 1,025 two-octet characters: 1,025 characters but 2,050 octets.
    expect(codeOf(() => assertSafeCommandLine('\u00e9'.repeat(1025)))).toBe('ERR_UNSAFE_COMMAND');
  });

  it('throws a plain Error, not a SubmissionError', () => {
    let caught: unknown;
    try {
      assertSafeCommandLine('a\nb');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(Error);
    expect(caught).not.toBeInstanceOf(SubmissionError);
    expect((caught as Error).name).toBe('UnsafeCommandLineError');
  });
});
