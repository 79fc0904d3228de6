/**
 * Collects what a child process writes and how it ends, for the tests that
 * run the helper (or a program around it) themselves: its exit code and its
 * whole stdout and stderr, settled once the streams are closed.
 */
import type { ChildProcess } from 'node:child_process';

export interface ChildOutput {
  readonly code: number | null;
  /** The signal that ended it, or null when it exited. */
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Rejects only when the program could not be started. */
export function childOutput(child: ChildProcess): Promise<ChildOutput> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  // A helper that exits before reading all of its input must not fail the test with EPIPE.
  child.stdin?.on('error', () => undefined);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** A child whose stdin stays open: a slow writer, so a test can act while it runs. */
export interface OpenChild {
  /** Settles when the child has ended, whether or not its input was ended. */
  readonly result: Promise<ChildOutput>;
  write(chunk: string | Buffer): void;
  /** Writes the rest, closes stdin, and resolves with how the child ended. */
  end(chunk?: string | Buffer): Promise<ChildOutput>;
}

export function openChild(child: ChildProcess): OpenChild {
  const result = childOutput(child);
  return {
    result,
    write: (chunk) => void child.stdin?.write(chunk),
    end: (chunk = '') => {
      child.stdin?.end(chunk);
      return result;
    },
  };
}
