/**
 * `mailsubmitctl config check [FILE]`: the daemon's own parser and
 * permission checks, run as the built command on real files; the paths of
 * helpers built from the tree's source with paths of the test's own.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { CONFIG_KEYS } from '@mailsubmit/submit-daemon/documented-values';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildHelper } from '../../../test/support/helper-build.ts';
import { ensureGroup, ensureUser, removeAll } from '../../../test/support/test-accounts.ts';
import { ctl as runCtl, type CtlResult } from './run-ctl.ts';

/** Every `table.key` config check printed below (an unknown one it was given excepted), for the last test. */
const printedKeys = new Set<string>();

function ctl(args: readonly string[]): CtlResult {
  const result = runCtl(args);
  for (const [key] of `${result.stdout}${result.stderr}`.matchAll(/(?<![\w/.-])(?:daemon|downstream|limits|timeouts)\.[a-z_]+\b(?!: unknown key)/g)) printedKeys.add(key);
  return result;
}

const ROOT = join(import.meta.dirname, '..', '..', '..');
const DAEMON = join(ROOT, 'packages', 'submit-daemon', 'dist', 'mailsubmitd.mjs');

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
  let submitSocket: string;
  // Built with the socket and list the configurations below name: no warning about the helper.
  let helper: string;
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
    submitSocket = join(dir, 'none-submit.sock');
    helper = buildHelper({ out: join(dir, 'bin', 'mailsubmit'), socket: submitSocket, authorizationList: list });
  });

  afterAll(async () => {
    for (const server of servers) await new Promise((resolve) => server.close(resolve));
    removeAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints ok with the authorization list it names, exit 0', () => {
    const path = writeConfig('good.conf', ['[daemon]', `authorization_list = "${list}"`, `socket = "${submitSocket}"`, 'metrics_listen = "127.0.0.1:9465"', `control_socket = "${join(dir, 'none.sock')}"`, '[downstream]', `target = "unix:${privateSocket}"`, '[limits]', 'max_recipients = 10']);
    const { code, stdout, stderr } = ctl(['config', 'check', '--helper', helper, path]);
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
    ['an unknown key', ['# mailsubmit.conf', '[daemon]', 'sokcet = "/x"'], ':3: daemon.sokcet: unknown key: did you mean daemon.socket? (known in [daemon]: socket, '],
    ['a key in the wrong table', ['[daemon]', 'max_recipients = 5'], ':2: daemon.max_recipients: unknown key: it belongs in [limits] ('],
    ['an unknown table', ['[deamon]', 'socket = "/x"'], ':1: deamon: unknown table: did you mean [daemon]? (known: daemon, '],
    ['a bad value', ['[timeouts]', '', 'input = "10"'], ':3: timeouts.input: expected a whole number from 1 to 86400, got "10"; write it without quotes\n'],
    ['a metrics address that is not loopback', ['[daemon]', 'metrics_listen = "0.0.0.0:9465"'], ':2: daemon.metrics_listen: 0.0.0.0 is not a loopback address'],
    ['broken TOML', ['[daemon'], ':1: not valid TOML: illegal character in key (column 8) in "[daemon"; a table header is a name in brackets on a line of its own ([daemon])'],
    ['an unquoted string', ['[daemon]', 'socket = /run/x.sock'], ':2: not valid TOML: invalid value (column 10) in "socket = /run/x.sock"; text values need double quotes'],
  ])('refuses %s as FILE:LINE: with the key and the fix, as mailsubmitd does, exit 78', (_what, lines, message) => {
    const path = writeConfig('bad.conf', [...lines, '[downstream]', 'xforward = true']);
    const { code, stdout, stderr } = ctl(['config', 'check', path]);
    expect(stdout).toBe('');
    expect(stderr.startsWith(`mailsubmitctl: ${path}${message}`), stderr).toBe(true);
    expect(code).toBe(78);
    // The daemon, started on the same file, stops with the same words.
    const daemon = spawnSync(process.execPath, [DAEMON, '-c', path, '--check-config'], { encoding: 'utf8' });
    expect(daemon.stderr).toBe(stderr.replace(/^mailsubmitctl: /, 'mailsubmitd: '));
    expect(daemon.status).toBe(78);
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

  it('refuses a file that is not there, saying what to do, as mailsubmitd does', () => {
    const missing = join(dir, 'no-such.conf');
    const { code, stderr } = ctl(['config', 'check', missing]);
    expect(stderr).toBe(`mailsubmitctl: ${missing}: no such file: install one (install.sh writes the annotated default; every key is optional, so an empty file means the defaults) or name another with -c\n`);
    expect(code).toBe(78);
    const daemon = spawnSync(process.execPath, [DAEMON, '-c', missing, '--check-config'], { encoding: 'utf8' });
    expect(daemon.stderr).toBe(stderr.replace(/^mailsubmitctl: /, 'mailsubmitd: '));
    expect(daemon.status).toBe(78);
  });

  it('refuses a -c file that is not there for commands that read paths from it', () => {
    const { code, stderr } = ctl(['-c', join(dir, 'no-such.conf'), 'list']);
    expect(stderr).toContain(`${join(dir, 'no-such.conf')}: no such file: `);
    expect(code).toBe(78);
  });

  describe('warns when others can get past the daemon, exit still 0', () => {
    const daemonLines = () => ['[daemon]', `authorization_list = "${list}"`, `control_socket = "${join(dir, 'none.sock')}"`, `socket = "${submitSocket}"`];

    it('a TCP target: every local user can connect', () => {
      const path = writeConfig('tcp.conf', [...daemonLines(), '[downstream]', 'target = "127.0.0.1:10026"']);
      const { code, stdout, stderr } = ctl(['config', 'check', '--daemon-user', 'root', '--helper', helper, path]);
      expect(stderr).toBe('');
      expect(stdout.split('\n')[0]).toMatch(/^ok: /);
      expect(stdout).toMatch(/\nwarning: downstream\.target 127\.0\.0\.1:10026 is a TCP port: every local user can connect to it/);
      expect(code).toBe(0);
    });

    it('no warning for a socket only root and the daemon can reach', () => {
      const path = writeConfig('private.conf', [...daemonLines(), '[downstream]', `target = "unix:${privateSocket}"`]);
      const { code, stdout } = ctl(['config', 'check', '--daemon-user', 'root', '--helper', helper, path]);
      expect(stdout).not.toMatch(/warning|note/);
      expect(code).toBe(0);
    });

    it('a unix: socket every directory above lets others through', async () => {
      mkdirSync(join(dir, 'open-door'), { mode: 0o755 });
      chmodSync(join(dir, 'open-door'), 0o755);
      const socket = join(dir, 'open-door', 'smtpd');
      servers.push(await socketAt(socket, 0o666));
      const path = writeConfig('open-door.conf', [...daemonLines(), '[downstream]', `target = "unix:${socket}"`]);
      const { code, stdout } = ctl(['config', 'check', '--daemon-user', 'root', '--helper', helper, path]);
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
      const shared = ctl(['config', 'check', '--daemon-user', 'mstcfgdaemon', '--helper', helper, path]);
      expect(shared.stdout).toContain(`warning: downstream.target unix:${socket}: users other than root and mstcfgdaemon can reach it`);
      expect(shared.stdout).toContain(`${door} (0710)`);
      expect(shared.code).toBe(0);
      // The same directory, the daemon's user its only member: private.
      execFileSync('gpasswd', ['-d', 'mstcfgother', 'mstcfgdoor'], { stdio: 'ignore' });
      const alone = ctl(['config', 'check', '--daemon-user', 'mstcfgdaemon', '--helper', helper, path]);
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
      const other = ctl(['config', 'check', '--daemon-user', 'root', '--helper', helper, path]);
      expect(other.stdout).toContain(`${door} (0700, uid ${user.uid}) lets others replace what is in it`);
      // Owned by the daemon's own user, the same directory is private.
      expect(ctl(['config', 'check', '--daemon-user', 'mstcfgowner', '--helper', helper, path]).stdout).not.toContain('warning');
    });

    it('a sendmail transport: a note that it is the public door, no warning', () => {
      const path = writeConfig('sendmail.conf', [...daemonLines(), '[downstream]', 'transport = "sendmail"']);
      const { code, stdout } = ctl(['config', 'check', '--daemon-user', 'root', '--helper', helper, path]);
      expect(stdout).toContain('note: downstream.transport = "sendmail" runs /usr/sbin/sendmail, the MTA\'s public door');
      expect(stdout).not.toContain('warning');
      expect(code).toBe(0);
    });

    it('a control socket that is not 0600', async () => {
      const control = join(dir, 'control.sock');
      servers.push(await socketAt(control, 0o666));
      const path = writeConfig('control.conf', ['[daemon]', `authorization_list = "${list}"`, `control_socket = "${control}"`, '[downstream]', `target = "unix:${privateSocket}"`]);
      const { code, stdout } = ctl(['config', 'check', '--daemon-user', 'root', '--helper', helper, path]);
      expect(stdout).toContain(`warning: daemon.control_socket ${control} is 0666 uid 0: it must be 0600`);
      expect(code).toBe(0);
    });
  });

  describe('warns when the installed helper was built with other paths than the configuration names, exit still 0', () => {
    const configLines = () => ['[daemon]', `authorization_list = "${list}"`, `socket = "${submitSocket}"`, `control_socket = "${join(dir, 'none.sock')}"`, '[downstream]', `target = "unix:${privateSocket}"`];

    it('another socket: no submission reaches the daemon; the fix either way', () => {
      const other = buildHelper({ out: join(dir, 'bin-socket', 'mailsubmit'), socket: '/run/elsewhere/mailsubmit.sock', authorizationList: list });
      const path = writeConfig('socket-differs.conf', configLines());
      const { code, stdout, stderr } = ctl(['config', 'check', '--daemon-user', 'root', '--helper', other, path]);
      expect(stderr).toBe('');
      expect(stdout.split('\n').slice(1)).toEqual([
        `warning: the helper ${other} connects to /run/elsewhere/mailsubmit.sock, but daemon.socket is ${submitSocket}: every submission through the helper gets 75 (daemon not running); ` +
          `set daemon.socket = "/run/elsewhere/mailsubmit.sock", or rebuild the helper with the configuration's (make -C packages/submit-helper SOCKET=${submitSocket} AUTH_LIST=${list}, as install.sh does)`,
        '',
      ]);
      expect(code).toBe(0);
    });

    it('another authorization list: the helper turns callers away by a list mailsubmitctl allow does not edit', () => {
      const other = buildHelper({ out: join(dir, 'bin-list', 'mailsubmit'), socket: submitSocket, authorizationList: '/etc/elsewhere/authorized' });
      const path = writeConfig('list-differs.conf', configLines());
      const { code, stdout } = ctl(['config', 'check', '--daemon-user', 'root', '--helper', other, path]);
      expect(stdout).toContain(`\nwarning: the helper ${other} checks callers against /etc/elsewhere/authorized, but daemon.authorization_list is ${list}: `);
      expect(stdout).toContain(`set daemon.authorization_list = "/etc/elsewhere/authorized", or rebuild the helper`);
      expect(stdout).not.toContain('connects to');
      expect(code).toBe(0);
    });

    it('finds the helper install.sh recorded in install.state beside the configuration', () => {
      const installed = join(dir, 'installed');
      mkdirSync(installed);
      const recorded = buildHelper({ out: join(installed, 'bin', 'mailsubmit'), socket: '/run/recorded/mailsubmit.sock', authorizationList: list });
      writeFileSync(join(installed, 'install.state'), `prefix=${installed}\nfile=${join(installed, 'bin', 'mailsubmit-sendmail')}\nfile=${recorded}\n`);
      writeFileSync(join(installed, 'mailsubmit.conf'), `${configLines().join('\n')}\n`, { mode: 0o644 });
      const { code, stdout } = ctl(['config', 'check', '--daemon-user', 'root', join(installed, 'mailsubmit.conf')]);
      expect(stdout).toContain(`warning: the helper ${recorded} connects to /run/recorded/mailsubmit.sock, but daemon.socket is ${submitSocket}`);
      expect(code).toBe(0);
    });

    it('a note, not a guess, for a helper that does not record its paths', () => {
      const path = writeConfig('old-helper.conf', configLines());
      const { code, stdout } = ctl(['config', 'check', '--daemon-user', 'root', '--helper', '/bin/true', path]);
      expect(stdout).toContain('\nnote: the helper /bin/true does not record its compiled-in paths (built by an older release): rebuild it to have them compared\n');
      expect(stdout).not.toContain('warning');
      expect(code).toBe(0);
    });
  });

  // Last: the outputs of every test above.
  it('names only keys of the table of keys in what it prints', () => {
    expect(printedKeys.size).toBeGreaterThan(4);
    const known = new Set(CONFIG_KEYS.map((k) => k.key));
    expect([...printedKeys].filter((key) => !known.has(key))).toEqual([]);
  });
});
