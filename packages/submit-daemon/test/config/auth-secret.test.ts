/** auth_secret_file: the first line of a file only the daemon's user can read, in directories nobody else can write. */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AuthSecretError, readAuthSecret } from '../../src/config/auth-secret.ts';
import { UnsafePathError } from '../../src/util/safe-path.ts';

const dir = mkdtempSync(join(tmpdir(), 'mailsubmit-secret-'));
const me = { uid: process.geteuid?.() ?? 0, name: 'the test\'s user' };

function secretFile(name: string, text: string, mode = 0o600): string {
  const path = join(dir, name);
  writeFileSync(path, text, { mode });
  chmodSync(path, mode);
  return path;
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('readAuthSecret', () => {
  it('reads the first line, without its line end', () => {
    expect(readAuthSecret(secretFile('ok', 'pa55 word\nsecond line\n'), me)).toBe('pa55 word');
    expect(readAuthSecret(secretFile('crlf', 'w\r\n', 0o400), me)).toBe('w');
  });

  it.each([
    ['readable by the group', () => secretFile('group', 'S3cr3t-Value\n', 0o640), me, /group or others may read it \(mode 640\); run: chmod 600/],
    ['another user\'s', () => secretFile('other', 'S3cr3t-Value\n'), { uid: me.uid + 4242, name: 'mailsubmit' }, /belongs to uid \d+; run: chown mailsubmit/],
    ['empty', () => secretFile('empty', '\nx\n'), me, /its first line is empty/],
    ['missing', () => join(dir, 'absent'), me, /cannot be opened \(ENOENT\)/],
    ['a symbolic link', () => { const link = join(dir, 'link'); symlinkSync(secretFile('target', 'S3cr3t-Value\n'), link); return link; }, me, /cannot be opened \(ELOOP\)/],
    ['a directory', () => { const d = join(dir, 'd'); mkdirSync(d, { mode: 0o700 }); return d; }, me, /is not a regular file/],
  ])('refuses a file that is %s, saying what to do', (_what, make, owner, message) => {
    const path = make();
    expect(() => readAuthSecret(path, owner)).toThrow(AuthSecretError);
    expect(() => readAuthSecret(path, owner)).toThrow(message);
    // The password itself is in no message.
    try {
      readAuthSecret(path, owner);
    } catch (err) {
      expect((err as Error).message).not.toContain('S3cr3t-Value');
    }
  });

  it('refuses a file in a directory others can write', () => {
    const open = join(dir, 'open');
    mkdirSync(open, { mode: 0o777 });
    chmodSync(open, 0o777);
    writeFileSync(join(open, 's'), 'S3cr3t-Value\n', { mode: 0o600 });
    expect(() => readAuthSecret(join(open, 's'), me)).toThrow(UnsafePathError);
  });
});
