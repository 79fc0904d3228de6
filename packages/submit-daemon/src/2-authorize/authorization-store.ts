/**
 * The authorization list as the daemon holds it: read at start and on
 * reload, refused when anyone but root could have written it (the list is
 * what turns a uid into the right to submit, so a writable list is a hole).
 *
 * The file is stat()ed on every connection (a few microseconds) and read
 * again when it changed, so `mailsubmitctl allow` takes effect for the next
 * submission without a signal; submissions in progress keep what they were
 * admitted with.
 *
 * A list that cannot be used fails closed. At start that is a configuration
 * error (mailsubmitd does not start, 78). Later, a hand edit that does not
 * parse, or a file gone, unreadable or writable by others, makes every
 * submission a temporary failure (`authorization-list-invalid`, 75: callers
 * keep their mail and retry) until the file is fixed; the next connection
 * after the fix uses it. Keeping the previous list instead would keep rights
 * the administrator may just have taken away, and say nothing. The problem
 * is logged once, with file:line, and `mailsubmitctl status` shows it.
 */
import { readFileSync, statSync } from 'node:fs';
import { escapeText, parseAuthorizationList, SubmissionError, type AuthorizationEntry } from '@mailsubmit/shared';
import { assertRootOnlyWritable } from '../util/safe-path.ts';

/** Where the store reports a list that became unusable, and usable again. */
export interface AuthorizationLog {
  error(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
}

export class AuthorizationStore {
  private current: readonly AuthorizationEntry[] = [];
  private loadedAt = 0;
  private fingerprint = '';
  /** Why the file on disk cannot be used, and which version of it; null while the list is in force. */
  private invalid: { readonly message: string; readonly fingerprint: string } | null = null;
  /** The problem last logged, so that one problem is one log line however many callers meet it. */
  private reported = '';

  constructor(
    readonly path: string,
    private readonly log: AuthorizationLog | null = null,
  ) {}

  /**
   * The list to decide with. While the file cannot be used this throws
   * SubmissionError('authorization-list-invalid') (75): nothing can read a
   * list the administrator did not mean.
   */
  get entries(): readonly AuthorizationEntry[] {
    if (this.invalid !== null) {
      throw new SubmissionError(
        'authorization-list-invalid',
        'mailsubmitctl status names the problem; keep the message and try again later',
      );
    }
    return this.current;
  }

  /** Entries of the last list that was in force (for status reports only, never for a decision). */
  get entryCount(): number {
    return this.current.length;
  }

  get loadedAtMs(): number {
    return this.loadedAt;
  }

  /** Why the list cannot be used now (file:line: problem), or null. */
  get problem(): string | null {
    return this.invalid?.message ?? null;
  }

  /** Reads the list; throws when it is unsafe or malformed, and from then on refuses everyone until a load succeeds. */
  load(): void {
    let fingerprint = '';
    try {
      fingerprint = this.stat();
      assertRootOnlyWritable(this.path);
      const text = readFileSync(this.path, 'utf8');
      this.current = parseAuthorizationList(text, this.path);
    } catch (err) {
      const message = describe(this.path, err);
      this.invalid = { message, fingerprint: fingerprint || `unreadable:${message}` };
      throw err;
    }
    this.loadedAt = Date.now();
    this.fingerprint = fingerprint;
    this.invalid = null;
    this.reported = '';
  }

  /**
   * Reloads when the file changed since it was last read (in force or not).
   * A problem is logged the first time it is seen; a fixed list is logged
   * once too. Returns the problem, or null when the list is in force.
   */
  refresh(): string | null {
    let fingerprint: string;
    try {
      fingerprint = this.stat();
    } catch (err) {
      fingerprint = `unreadable:${describe(this.path, err)}`;
    }
    const seen = this.invalid === null ? this.fingerprint : this.invalid.fingerprint;
    if (fingerprint === seen) return this.problem;
    const wasInvalid = this.invalid !== null;
    try {
      this.load();
    } catch {
      const problem = this.problem as string;
      this.report(problem);
      return problem;
    }
    if (wasInvalid) this.log?.info({ path: this.path, authorized: this.current.length }, 'authorization list fixed: in force again');
    return null;
  }

  private report(problem: string): void {
    if (problem === this.reported) return;
    this.reported = problem;
    this.log?.error({ err: problem, path: this.path }, 'authorization list INVALID: every submission gets 75 (temporary) until it is fixed');
  }

  private stat(): string {
    const s = statSync(this.path, { bigint: true });
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
  }
}

function describe(path: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code !== undefined && code !== 'ERR_AUTHORIZATION_LIST' && code !== 'ERR_UNSAFE_PATH') return `${path}: cannot be read (${code})`;
  // The parser shows the list's words through escapeText already.
  return err instanceof Error ? err.message : escapeText(String(err));
}
