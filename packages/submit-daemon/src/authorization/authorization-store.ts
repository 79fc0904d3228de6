/**
 * The authorization list as the daemon holds it: read at start and on
 * reload, refused when anyone but root could have written it (the list is
 * what turns a uid into the right to submit, so a writable list is a hole).
 * A reload that fails keeps the previous list in force.
 *
 * The file is stat()ed on every connection (a few microseconds) and read
 * again when it changed, so `mailsubmitctl allow` takes effect for the next
 * submission without a signal; submissions in progress keep what they were
 * admitted with.
 */
import { readFileSync, statSync } from 'node:fs';
import { parseAuthorizationList, type AuthorizationEntry } from '@mailsubmit/shared';
import { assertRootOnlyWritable } from '../util/safe-path.ts';

export class AuthorizationStore {
  private current: readonly AuthorizationEntry[] = [];
  private loadedAt = 0;
  private fingerprint = '';
  private lastFailure = '';

  constructor(readonly path: string) {}

  get entries(): readonly AuthorizationEntry[] {
    return this.current;
  }

  get loadedAtMs(): number {
    return this.loadedAt;
  }

  /** Reads the list; throws (keeping the old one) when it is unsafe or malformed. */
  load(): void {
    const fingerprint = this.stat();
    assertRootOnlyWritable(this.path);
    const text = readFileSync(this.path, 'utf8');
    this.current = parseAuthorizationList(text, this.path);
    this.loadedAt = Date.now();
    this.fingerprint = fingerprint;
    this.lastFailure = '';
  }

  /**
   * Reloads when the file changed since the last load. Returns the error text
   * the first time a changed list cannot be used (the old one stays), else null.
   */
  refresh(): string | null {
    let fingerprint: string;
    try {
      fingerprint = this.stat();
    } catch (err) {
      return this.failed(`cannot stat ${this.path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    if (fingerprint === this.fingerprint) return null;
    try {
      this.load();
      return null;
    } catch (err) {
      return this.failed((err as Error).message);
    }
  }

  private failed(message: string): string | null {
    if (message === this.lastFailure) return null;
    this.lastFailure = message;
    return message;
  }

  private stat(): string {
    const s = statSync(this.path, { bigint: true });
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
  }
}
