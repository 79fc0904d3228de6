/**
 * `mailsubmitctl config check [FILE]`: the daemon's own parser and
 * permission checks, run as the built command on real files.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureGroup, ensureUser, removeAll } from '../../../test/harness/test-accounts.ts';
import { ctl } from './run-ctl.ts';

/** A listening Unix socket at `path`, mode `mode`. */
async function socketAt(path: string, mode: number): Promise<Server> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(path, resolve));
  chmodSync(path, mode);
  return server;
}

describe('mailsubmitctl config check', () => {
  let dir: string;
  let list: string;
  let privateSocket: string;
  const servers: Server[] = [];

  function writeConfig(name: string, lines: readonly string[]): string {
    const path = join(dir, name);
    writeFileSync(path, `${lines.join('\n')}\n`, { mode: 0o644 });
    return path;
  }

  beforeAll(async () => {
    dir = mkdtempSync('/tmp/mailsubmitctl-config-');
    chmodSync(dir, 0o755);
    list = join(dir, 'authorized');
    writeFileSync(list, '# nobody yet\nmstsomeone client\nuid:1234\n', { mode: 0o644 });
    // A downstream only root can reach: a 0666 socket in a 0700 directory.
    mkdirSync(join(dir, 'private'), { mode: 0o700 });
    privateSocket = join(dir, 'private', 'smtpd');
    servers.push(await socketAt(privateSocket, 0o666));
  });

  afterAll(async () => {
    for (const server of servers) await new Promise((resolve) => server.close(resolve));
    removeAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints ok with the authorization list it names, exit 0', () => {
    const path = writeConfig('good.conf', ['[daemon]', `authorization_list = "${list}"`, 'metrics_listen = "127.0.0.1:9465"', `control_socket = "${join(dir, 'none.sock')}"`, '[downstream]', `target = "unix:${privateSocket}"`, '[limits]', 'max_recipients = 10']);
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

  describe('warns when others can get past the daemon, exit still 0', () => {
    const daemonLines = () => ['[daemon]', `authorization_list = "${list}"`, `control_socket = "${join(dir, 'none.sock')}"`, `socket = "${join(dir, 'none-submit.sock')}"`];

    it('a TCP target: every local user can connect', () => {
      const path = writeConfig('tcp.conf', [...daemonLines(), '[downstream]', 'target = "127.0.0.1:10026"']);
      const { code, stdout, stderr } = ctl(['config', 'check', '--daemon-user', 'root', path]);
      expect(stderr).toBe('');
      expect(stdout.split('\n')[0]).toMatch(/^ok: /);
      expect(stdout).toMatch(/\nwarning: downstream\.target 127\.0\.0\.1:10026 is a TCP port: every local user can connect to it/);
      expect(code).toBe(0);
    });

    it('no warning for a socket only root and the daemon can reach', () => {
      const path = writeConfig('private.conf', [...daemonLines(), '[downstream]', `target = "unix:${privateSocket}"`]);
      const { code, stdout } = ctl(['config', 'check', '--daemon-user', 'root', path]);
      expect(stdout).not.toMatch(/warning|note/);
      expect(code).toBe(0);
    });

    it('a unix: socket every directory above lets others through', async () => {
      mkdirSync(join(dir, 'open-door'), { mode: 0o755 });
      chmodSync(join(dir, 'open-door'), 0o755);
      const socket = join(dir, 'open-door', 'smtpd');
      servers.push(await socketAt(socket, 0o666));
      const path = writeConfig('open-door.conf', [...daemonLines(), '[downstream]', `target = "unix:${socket}"`]);
      const { code, stdout } = ctl(['config', 'check', '--daemon-user', 'root', path]);
      expect(stdout).toContain(`warning: downstream.target unix:${socket}: users other than root can reach it: every step lets others through: ${socket} (socket, 0666)`);
      expect(code).toBe(0);
    });

    it('a unix: socket behind a group that has other members than the daemon\'s user', async () => {
      const gid = ensureGroup('mstcfgdoor');
      ensureUser('mstcfgdaemon', ['mstcfgdoor']);
      ensureUser('mstcfgother', ['mstcfgdoor']);
      const door = join(dir, 'group-door');
      mkdirSync(door);
      chownSync(door, 0, gid);
      chmodSync(door, 0o710);
      const socket = join(door, 'smtpd');
      servers.push(await socketAt(socket, 0o666));
      const path = writeConfig('group-door.conf', [...daemonLines(), '[downstream]', `target = "unix:${socket}"`]);
      const shared = ctl(['config', 'check', '--daemon-user', 'mstcfgdaemon', path]);
      expect(shared.stdout).toContain(`warning: downstream.target unix:${socket}: users other than root and mstcfgdaemon can reach it`);
      expect(shared.stdout).toContain(`${door} (0710)`);
      expect(shared.code).toBe(0);
      // The same directory, the daemon's user its only member: private.
      execFileSync('gpasswd', ['-d', 'mstcfgother', 'mstcfgdoor'], { stdio: 'ignore' });
      const alone = ctl(['config', 'check', '--daemon-user', 'mstcfgdaemon', path]);
      expect(alone.stdout).not.toContain('warning');
      expect(alone.code).toBe(0);
    });

    it('a directory on the way that another user owns', async () => {
      const user = ensureUser('mstcfgowner');
      const door = join(dir, 'owned-door');
      mkdirSync(door);
      chownSync(door, user.uid, user.gid);
      chmodSync(door, 0o700);
      const socket = join(door, 'smtpd');
      servers.push(await socketAt(socket, 0o666));
      const path = writeConfig('owned-door.conf', [...daemonLines(), '[downstream]', `target = "unix:${socket}"`]);
      const other = ctl(['config', 'check', '--daemon-user', 'root', path]);
      expect(other.stdout).toContain(`${door} (0700, uid ${user.uid}) lets others replace what is in it`);
      // Owned by the daemon's own user, the same directory is private.
      expect(ctl(['config', 'check', '--daemon-user', 'mstcfgowner', path]).stdout).not.toContain('warning');
    });

    it('a sendmail transport: a note that it is the public door, no warning', () => {
      const path = writeConfig('sendmail.conf', [...daemonLines(), '[downstream]', 'transport = "sendmail"']);
      const { code, stdout } = ctl(['config', 'check', '--daemon-user', 'root', path]);
      expect(stdout).toContain('note: downstream.transport = "sendmail" runs /usr/sbin/sendmail, the MTA\'s public door');
      expect(stdout).not.toContain('warning');
      expect(code).toBe(0);
    });

    it('a control socket that is not 0600', async () => {
      const control = join(dir, 'control.sock');
      servers.push(await socketAt(control, 0o666));
      const path = writeConfig('control.conf', ['[daemon]', `authorization_list = "${list}"`, `control_socket = "${control}"`, '[downstream]', `target = "unix:${privateSocket}"`]);
      const { code, stdout } = ctl(['config', 'check', '--daemon-user', 'root', path]);
      expect(stdout).toContain(`warning: daemon.control_socket ${control} is 0666 uid 0: it must be 0600`);
      expect(code).toBe(0);
    });
  });
});
