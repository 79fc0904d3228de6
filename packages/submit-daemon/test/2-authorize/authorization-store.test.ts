/**
 * The authorization list fails closed: a list that cannot be used refuses
 * everyone with 75 (temporary) until it is fixed, instead of keeping an
 * older list that may be wider than what the administrator just wrote. One
 * problem is one log line, however many callers meet it.
 */
import { chmodSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuthorizationListError, isSubmissionError, statusOf } from '@mailsubmit/shared';
import { AuthorizationStore } from '../../src/2-authorize/authorization-store.ts';

interface Logged {
  level: 'error' | 'info';
  fields: Record<string, unknown>;
  message: string;
}

describe('AuthorizationStore', () => {
  let dir: string;
  let path: string;
  let logged: Logged[];
  let store: AuthorizationStore;
  let edits = 0;

  /** Writes the list; each write gets its own size or mtime, so the store sees a change. */
  function write(lines: readonly string[]): void {
    edits++;
    writeFileSync(path, `# edit ${edits}\n${lines.join('\n')}\n`, { mode: 0o644 });
  }

  function refusal(): { outcome: string; message: string } {
    try {
      void store.entries;
    } catch (err) {
      if (isSubmissionError(err)) return { outcome: err.outcome, message: err.message };
      throw err;
    }
    throw new Error('the list was used');
  }

  beforeEach(() => {
    dir = mkdtempSync('/tmp/mailsubmit-store-');
    path = join(dir, 'authorized');
    logged = [];
    store = new AuthorizationStore(path, {
      error: (fields, message) => logged.push({ level: 'error', fields, message }),
      info: (fields, message) => logged.push({ level: 'info', fields, message }),
    });
    write(['alice', 'bob client']);
    store.load();
  });

  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses everyone with 75 once a hand edit does not parse, and logs file:line once', () => {
    write(['alice', 'bob clinet']);
    const problem = store.refresh();
    expect(problem).toBe(`${path}:3: unknown capability "clinet" (known: client, sasl, tls, queue, sender=any|own|PATTERNS)`);
    const refused = refusal();
    expect(refused.outcome).toBe('authorization-list-invalid');
    expect(statusOf(refused.outcome).exitCode).toBe(75);
    // The caller is not shown the list's contents.
    expect(refused.message).not.toContain('clinet');
    for (let i = 0; i < 5; i++) expect(store.refresh()).toBe(problem);
    expect(logged).toEqual([{ level: 'error', fields: { err: problem, path }, message: expect.stringMatching(/INVALID.*75/) }]);
    expect(store.problem).toBe(problem);
    expect(store.entryCount).toBe(2);
  });

  it('uses the fixed file at the next refresh, and says so once', () => {
    write(['alice', 'bob clinet']);
    store.refresh();
    write(['carol']);
    expect(store.refresh()).toBeNull();
    expect(store.problem).toBeNull();
    expect(store.entries.map((e) => e.line)).toEqual([2]);
    expect(logged.map((l) => l.level)).toEqual(['error', 'info']);
    expect(store.refresh()).toBeNull();
    expect(logged).toHaveLength(2);
  });

  it('does not log the same problem again when the file changes but stays broken the same way', () => {
    write(['alice', 'bob clinet']);
    store.refresh();
    writeFileSync(path, `# edit x\nalice\nbob clinet\n\n`, { mode: 0o644 });
    expect(store.refresh()).toMatch(/:3: unknown capability/);
    expect(logged).toHaveLength(1);
    refusal();
  });

  it('refuses everyone when the file is gone, or writable by others', () => {
    unlinkSync(path);
    expect(store.refresh()).toBe(`${path}: cannot be read (ENOENT)`);
    expect(refusal().outcome).toBe('authorization-list-invalid');
    write(['alice']);
    expect(store.refresh()).toBeNull();
    chmodSync(path, 0o666);
    expect(store.refresh()).toMatch(/can be written by group or others \(mode 666\)/);
    expect(refusal().outcome).toBe('authorization-list-invalid');
    chmodSync(path, 0o644);
    expect(store.refresh()).toBeNull();
    expect(store.entries).toHaveLength(1);
  });

  it('turns an explicit reload of a broken file into the same refusal', () => {
    write(['@']);
    expect(() => store.load()).toThrow(AuthorizationListError);
    expect(refusal().outcome).toBe('authorization-list-invalid');
    // The reload reported it; the next connection sees the same file and does not log it again.
    expect(store.refresh()).toMatch(/:2: "@" is not a user name/);
  });

  it('at start, throws the parse error (a configuration error: mailsubmitd does not start)', () => {
    write(['alice sender=*@exampl\u212a.com']);
    const fresh = new AuthorizationStore(path);
    expect(() => fresh.load()).toThrow(AuthorizationListError);
    expect(() => fresh.load()).toThrow(new RegExp(`^${path}:2: sender pattern`));
  });

  it('shows a list line with a bidi override escaped in the problem', () => {
    write(['alice', 'b\u202eob']);
    expect(store.refresh()).toBe(`${path}:3: "b\\u202eob" is not a user name, uid:N or @group`);
  });
});
