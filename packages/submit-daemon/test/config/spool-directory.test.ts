/** The spool directory must be the daemon's own, or the daemon does not start. */
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assertPrivateSpoolDirectory } from '../../src/config/spool-directory.ts';

const base = mkdtempSync('/tmp/spool-directory-');
chmodSync(base, 0o755);
afterAll(() => rmSync(base, { recursive: true, force: true }));
const uid = process.geteuid?.() ?? 0;

function dir(name: string, mode: number): string {
  const path = join(base, name);
  mkdirSync(path);
  chmodSync(path, mode);
  return path;
}

describe('assertPrivateSpoolDirectory', () => {
  it('accepts a 0700 directory of the daemon user', () => {
    expect(() => assertPrivateSpoolDirectory(dir('ok', 0o700), uid, 'mailsubmit')).not.toThrow();
  });

  it('refuses one open to group or others, naming the path and the chmod', () => {
    const path = dir('open', 0o1777);
    expect(() => assertPrivateSpoolDirectory(path, uid, 'mailsubmit')).toThrow(`${path}: the spool directory is open to group or others (mode 1777); run: chmod 0700 ${path}`);
  });

  it('refuses one owned by another uid, naming the chown', () => {
    const path = dir('other', 0o700);
    chownSync(path, 65534, 65534);
    expect(() => assertPrivateSpoolDirectory(path, uid, 'mailsubmit')).toThrow(`run: chown mailsubmit ${path}`);
  });

  it('refuses a missing directory or a file, saying how to create it', () => {
    expect(() => assertPrivateSpoolDirectory(join(base, 'missing'), uid, 'mailsubmit')).toThrow(`create it: install -d -o mailsubmit -m 0700 ${join(base, 'missing')}`);
    writeFileSync(join(base, 'file'), '', { mode: 0o600 });
    expect(() => assertPrivateSpoolDirectory(join(base, 'file'), uid, 'mailsubmit')).toThrow('is not a directory');
  });

  it('refuses a directory under one others can write', () => {
    const parent = dir('shared', 0o777);
    const path = join(parent, 'spool');
    mkdirSync(path, { mode: 0o700 });
    expect(() => assertPrivateSpoolDirectory(path, uid, 'mailsubmit')).toThrow(`run: chmod go-w ${parent}`);
  });
});

describe('mailsubmitd with a shared spool directory', () => {
  it('refuses to start with 78, naming the path and the fix', async () => {
    const { spawnSync } = await import('node:child_process');
    const { DAEMON_BUNDLE } = await import('../../../../test/support/mailsubmit-under-test.ts');
    const shared = dir('world', 0o1777);
    const run = dir('run', 0o755);
    writeFileSync(join(base, 'authorized'), '', { mode: 0o644 });
    const config = join(base, 'mailsubmit.conf');
    writeFileSync(
      config,
      `[daemon]\nsocket = "${join(run, 's.sock')}"\ncontrol_socket = "${join(run, 'c.sock')}"\ninstall_mode = "open"\nsocket_mode = "0666"\nauthorization_list = "${join(base, 'authorized')}"\nspool_directory = "${shared}"\n`,
      { mode: 0o644 },
    );
    const result = spawnSync(process.execPath, [DAEMON_BUNDLE, '-c', config, '--check-config'], { encoding: 'utf8', timeout: 20_000 });
    expect(result.status).toBe(78);
    expect(result.stderr).toContain(`${shared}: the spool directory is open to group or others (mode 1777); run: chmod 0700 ${shared}`);
  });
});
