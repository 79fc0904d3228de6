/**
 * `mailsubmitctl check USER` as an administrator runs it: the built command,
 * real users and groups from the system's databases, real list files.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureGroup, ensureUser, removeAll, type TestUser } from '../../../test/support/test-accounts.ts';
import { ctl } from './run-ctl.ts';

describe('mailsubmitctl check', () => {
  let dir: string;
  let list: string;
  let config: string;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;

  function writeList(lines: readonly string[]): void {
    writeFileSync(list, `${lines.join('\n')}\n`, { mode: 0o644 });
  }

  beforeAll(() => {
    dir = mkdtempSync('/tmp/mailsubmitctl-check-');
    chmodSync(dir, 0o755);
    list = join(dir, 'authorized');
    config = join(dir, 'mailsubmit.conf');
    writeFileSync(config, `[daemon]\nauthorization_list = "${list}"\n`, { mode: 0o644 });
    ensureGroup('mstchkfilters');
    alice = ensureUser('mstchkalice');
    bob = ensureUser('mstchkbob', ['mstchkfilters']);
    carol = ensureUser('mstchkcarol');
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    removeAll();
  });

  it('allows a user listed by name, with the line, the capabilities and the senders (exit 0)', () => {
    writeList(['# who may submit', `${alice.name} client sasl`]);
    const { code, stdout, stderr } = ctl(['-c', config, 'check', alice.name]);
    expect(stderr).toBe('');
    expect(stdout).toContain(`${alice.name} (uid ${alice.uid}): allowed`);
    expect(stdout).toMatch(/capabilities: client sasl\n/);
    expect(stdout).toMatch(/senders: +any\n/);
    expect(stdout).toContain(`line 2: ${alice.name} client sasl  (by name ${alice.name})`);
    expect(code).toBe(0);
  });

  it('names every line that matched, through a group and by uid, and unites what they grant', () => {
    writeList([`uid:${bob.uid} tls sender=own`, '@mstchkfilters client sender=*@example.org', `${alice.name}`]);
    const { code, stdout } = ctl(['-c', config, 'check', bob.name]);
    expect(stdout).toContain(`${bob.name} (uid ${bob.uid}): allowed`);
    expect(stdout).toMatch(/capabilities: client tls\n/);
    expect(stdout).toContain(`own: ${bob.name}, ${bob.name}@any domain, and <>; matching *@example.org`);
    expect(stdout).toContain(`line 1: uid:${bob.uid} tls sender=own  (by uid ${bob.uid})`);
    expect(stdout).toContain('line 2: @mstchkfilters client sender=*@example.org  (by group mstchkfilters)');
    expect(stdout).not.toContain('line 3');
    expect(code).toBe(0);
  });

  it('refuses a user no line names, listing the names and groups it looked for (exit 77)', () => {
    writeList([`${alice.name}`, '@mstchkfilters']);
    const { code, stdout } = ctl(['-c', config, 'check', carol.name]);
    expect(stdout).toContain(`${carol.name} (uid ${carol.uid}): not allowed: no line of ${list} names ${carol.name}, uid:${carol.uid} or one of its groups (${carol.name})`);
    expect(stdout).toContain(`to allow: mailsubmitctl allow ${carol.name}`);
    expect(code).toBe(77);
  });

  it('takes a uid, with or without uid:, also one the user database does not know', () => {
    writeList([`uid:${alice.uid}`, 'uid:4000000000']);
    const byNumber = ctl(['-c', config, 'check', String(alice.uid)]);
    expect(byNumber.stdout).toContain(`${alice.name} (uid ${alice.uid}): allowed`);
    expect(byNumber.code).toBe(0);
    const unknown = ctl(['-c', config, 'check', 'uid:4000000000']);
    expect(unknown.stdout).toContain('uid 4000000000 (not in the user database): allowed');
    expect(unknown.stdout).toContain('(by uid 4000000000)');
    expect(unknown.code).toBe(0);
    expect(ctl(['-c', config, 'check', 'uid:4000000001']).code).toBe(77);
  });

  it('answers 67 for a name the user database does not know, 64 for something that is no user', () => {
    writeList([`${alice.name}`]);
    const missing = ctl(['-c', config, 'check', 'mstchknosuchuser']);
    expect(missing.stderr).toBe('mailsubmitctl: no user "mstchknosuchuser" in the user database\n');
    expect(missing.code).toBe(67);
    expect(ctl(['-c', config, 'check', '@mstchkfilters']).code).toBe(64);
    expect(ctl(['-c', config, 'check', '-rf']).code).toBe(64);
  });

  it('reads the list the configuration names; --authorization-list wins over it', () => {
    writeList([`${alice.name}`]);
    const other = join(dir, 'other-list');
    writeFileSync(other, `${carol.name}\n`, { mode: 0o644 });
    expect(ctl(['-c', config, 'check', carol.name]).code).toBe(77);
    expect(ctl(['-c', config, '--authorization-list', other, 'check', carol.name]).code).toBe(0);
  });

  it('warns when the daemon would refuse the list because others can write it', () => {
    writeList([`${alice.name}`]);
    chmodSync(list, 0o666);
    try {
      const { code, stderr } = ctl(['-c', config, 'check', alice.name]);
      expect(stderr).toMatch(/^mailsubmitctl: warning: mailsubmitd will not use this list: .*can be written by group or others \(mode 666\)/);
      expect(code).toBe(0);
    } finally {
      chmodSync(list, 0o644);
    }
  });

  it('answers 78 for a malformed list, naming the line', () => {
    writeList([`${alice.name} wings`]);
    const { code, stderr } = ctl(['-c', config, 'check', alice.name]);
    expect(stderr).toContain(`${list}:1: unknown capability "wings"`);
    expect(code).toBe(78);
  });
});
