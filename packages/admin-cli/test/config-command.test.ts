/**
 * `mailsubmitctl config check [FILE]`: the daemon's own parser and
 * permission checks, run as the built command on real files.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ctl } from './run-ctl.ts';

describe('mailsubmitctl config check', () => {
  let dir: string;
  let list: string;

  function writeConfig(name: string, lines: readonly string[]): string {
    const path = join(dir, name);
    writeFileSync(path, `${lines.join('\n')}\n`, { mode: 0o644 });
    return path;
  }

  beforeAll(() => {
    dir = mkdtempSync('/tmp/mailsubmitctl-config-');
    chmodSync(dir, 0o755);
    list = join(dir, 'authorized');
    writeFileSync(list, '# nobody yet\nmstsomeone client\nuid:1234\n', { mode: 0o644 });
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('prints ok with the authorization list it names, exit 0', () => {
    const path = writeConfig('good.conf', ['[daemon]', `authorization_list = "${list}"`, 'metrics_listen = "127.0.0.1:9465"', '[limits]', 'max_recipients = 10']);
    const { code, stdout, stderr } = ctl(['config', 'check', path]);
    expect(stderr).toBe('');
    expect(stdout).toBe(`ok: ${path}; authorization list ${list}, 2 entries\n`);
    expect(code).toBe(0);
  });

  it('checks the -c file when no FILE is given', () => {
    const path = writeConfig('via-c.conf', ['[daemon]', `authorization_list = "${list}"`]);
    const { code, stdout } = ctl(['-c', path, 'config', 'check']);
    expect(stdout).toMatch(new RegExp(`^ok: ${path};`));
    expect(code).toBe(0);
  });

  it.each([
    ['an unknown key', ['[daemon]', 'sokcet = "/x"'], /: daemon\.sokcet: unknown key/],
    ['a bad value', ['[timeouts]', 'input = "10"'], /: timeouts\.input: expected a whole number/],
    ['a metrics address that is not loopback', ['[daemon]', 'metrics_listen = "0.0.0.0:9465"'], /: daemon\.metrics_listen: 0\.0\.0\.0 is not a loopback address/],
    ['broken TOML', ['[daemon'], /: not valid TOML: line 1/],
  ])('refuses %s with the daemon\'s message naming the key, exit 78', (_what, lines, message) => {
    const path = writeConfig('bad.conf', [...lines, ...(lines[0] === '[daemon]' ? [`authorization_list = "${list}"`] : ['[daemon]', `authorization_list = "${list}"`])]);
    const { code, stdout, stderr } = ctl(['config', 'check', path]);
    expect(stdout).toBe('');
    expect(stderr).toMatch(new RegExp(`^mailsubmitctl: ${path}`));
    expect(stderr).toMatch(message);
    expect(code).toBe(78);
  });

  it('refuses a configuration others could change, and says how to fix it', () => {
    const path = writeConfig('writable.conf', ['[daemon]', `authorization_list = "${list}"`]);
    chmodSync(path, 0o664);
    const { code, stderr } = ctl(['config', 'check', path]);
    expect(stderr).toBe(`mailsubmitctl: ${path}: can be written by group or others (mode 664); run: chmod go-w ${path}\n`);
    expect(code).toBe(78);
  });

  it('refuses an authorization list in a directory others can write', () => {
    const open = join(dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    writeFileSync(join(open, 'authorized'), '', { mode: 0o644 });
    const path = writeConfig('open-list.conf', ['[daemon]', `authorization_list = "${join(open, 'authorized')}"`]);
    const { code, stderr } = ctl(['config', 'check', path]);
    expect(stderr).toContain(`${open}: can be written by group or others (mode 777)`);
    expect(code).toBe(78);
  });

  it('refuses a malformed or missing authorization list, naming it', () => {
    const broken = join(dir, 'broken-list');
    writeFileSync(broken, 'mstsomeone\nmstsomeone\n', { mode: 0o644 });
    const withBroken = ctl(['config', 'check', writeConfig('broken.conf', ['[daemon]', `authorization_list = "${broken}"`])]);
    expect(withBroken.stderr).toContain(`${broken}:2: mstsomeone is already listed on line 1`);
    expect(withBroken.code).toBe(78);
    const withMissing = ctl(['config', 'check', writeConfig('missing.conf', ['[daemon]', `authorization_list = "${join(dir, 'nowhere')}"`])]);
    expect(withMissing.stderr).toContain(`${join(dir, 'nowhere')}: cannot be read (ENOENT)`);
    expect(withMissing.code).toBe(78);
  });

  it('refuses a file that is not there', () => {
    const { code, stderr } = ctl(['config', 'check', join(dir, 'no-such.conf')]);
    expect(stderr).toContain(`${join(dir, 'no-such.conf')}: cannot be read (ENOENT)`);
    expect(code).toBe(78);
  });

  it('refuses a -c file that is not there for commands that read paths from it', () => {
    const { code, stderr } = ctl(['-c', join(dir, 'no-such.conf'), 'list']);
    expect(stderr).toContain(`${join(dir, 'no-such.conf')}: cannot read: ENOENT`);
    expect(code).toBe(78);
  });
});
