/**
 * README.md's first command, install/install.sh, on a Debian 12 where systemd
 * is PID 1 (booted by systemd-nspawn; this machine has no systemd of its
 * own, so the other install tests take the background-daemon path): it
 * installs both units, mailsubmitd.socket holding the socket with the
 * configuration's owner and mode, sends its first message, and leaves the
 * daemon restartable without a caller hearing 75; run again it changes
 * nothing that works; uninstall.sh then stops and removes the units and
 * leaves master.cf as it was. Run with --no-build from a copy of this tree's
 * build products: the system has no network to run npm ci. Skipped, with the
 * reason printed, where the machine cannot boot such a system.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DebianContainer, debianContainerUnavailable } from '../support/debian-container.ts';
import { until } from '../support/until.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const unavailable = await debianContainerUnavailable();
if (unavailable !== null) console.warn(`install.sh under systemd is skipped: ${unavailable}`);

/** What install.sh --no-build reads: the files git knows and the build products (the bundles, the addon, the man pages). */
const BUILD_PRODUCTS = ['packages/submit-daemon/dist/mailsubmitd.mjs', 'packages/submit-daemon/dist/socket_addon.node', 'packages/admin-cli/dist/mailsubmitctl.cjs', 'build/man'];

describe.skipIf(unavailable !== null)('install.sh where systemd runs', () => {
  let scratch: string;
  let box: DebianContainer;
  let masterBefore: string;
  const inTree = (script: string) => box.exec(['sh', '-c', `cd /root/mailsubmit && ${script}`], { timeoutMs: 300_000 });

  beforeAll(async () => {
    scratch = mkdtempSync('/tmp/mailsubmit-install-systemd-');
    const tar = join(scratch, 'tree.tar');
    execFileSync('sh', ['-c', '{ git ls-files -z --cached --others --exclude-standard; printf "%s\\0" "$@"; } | xargs -0 tar -cf "$0"', tar, ...BUILD_PRODUCTS], { cwd: ROOT });
    box = await DebianContainer.create({ name: 'msinst' });
    await box.boot();
    await box.copyIn(tar, '/root/tree.tar');
    expect((await box.exec(['sh', '-c', 'mkdir /root/mailsubmit && tar -xf /root/tree.tar -C /root/mailsubmit'])).code).toBe(0);
    masterBefore = await box.output(['cat', '/etc/postfix/master.cf']);
  }, 600_000);

  afterAll(() => {
    box?.destroy();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('installs both units, the socket held by systemd with the configuration\'s owner and mode, and sends its first message', async () => {
    const installed = await inTree('./install/install.sh --no-build');
    expect(installed.code, installed.stdout + installed.stderr).toBe(0);
    expect(installed.stdout).toContain('install: mailsubmitd runs under systemd, which holds its socket');
    expect(installed.stdout).toMatch(/install: {3}mailsubmit: queued as [0-9A-F]+\n/);
    for (const unit of ['mailsubmitd.socket', 'mailsubmitd.service']) {
      expect(await box.output(['systemctl', 'is-active', unit])).toBe('active');
      expect(await box.output(['systemctl', 'is-enabled', unit])).toBe('enabled');
    }
    expect(await box.output(['stat', '-c', '%a %U %G', '/run/mailsubmit', '/run/mailsubmit/mailsubmit.sock'])).toBe('750 mailsubmit mailsubmit\n660 mailsubmit mailsubmit');
    const started = await box.output(['journalctl', '-u', 'mailsubmitd', '-o', 'cat', '--no-pager']);
    expect(started).toContain('"socket_from":"systemd"');
  });

  it('restarts the daemon with no caller refused meanwhile', async () => {
    // Callers one after another, their exit codes a line each in /tmp/codes, until /tmp/codes.stop.
    const loop = box.start(['sh', '-c', 'while [ ! -e /tmp/codes.stop ]; do printf "sender: <root@localhost>\\nrecipient: <root@localhost>\\n\\nSubject: restart\\n\\nr\\n" | /usr/local/bin/mailsubmit 2>/dev/null; echo $? >>/tmp/codes; done']);
    const codes = async () => (await box.output(['cat', '/tmp/codes'])).split('\n').filter(Boolean);
    await until(async () => (await codes()).length >= 10, 'ten submissions before the restarts');
    for (let restart = 0; restart < 3; restart++) expect((await box.exec(['systemctl', 'restart', 'mailsubmitd'])).code).toBe(0);
    const afterRestarts = (await codes()).length;
    await until(async () => (await codes()).length >= afterRestarts + 10, 'ten submissions after the restarts');
    await box.exec(['touch', '/tmp/codes.stop']);
    expect((await loop.end('')).code).toBe(0);
    expect((await codes()).filter((code) => code !== '0')).toEqual([]);
  }, 120_000);

  it('run again, says there was nothing to do for the units and the listener, and the daemon still answers', async () => {
    const again = await inTree('./install/install.sh --no-build');
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toContain('already has the re-injection listener');
    expect(again.stdout).toMatch(/install: {3}mailsubmit: queued as [0-9A-F]+\n/);
  }, 300_000);

  it('uninstall.sh stops and removes both units and leaves master.cf as it was', async () => {
    const removed = await inTree('./install/uninstall.sh');
    expect(removed.code, removed.stdout + removed.stderr).toBe(0);
    for (const unit of ['mailsubmitd.socket', 'mailsubmitd.service']) {
      expect(await box.output(['systemctl', 'is-active', unit])).toBe('inactive');
      expect((await box.exec(['test', '-e', `/etc/systemd/system/${unit}`])).code).toBe(1);
    }
    expect((await box.exec(['test', '-e', '/run/mailsubmit/mailsubmit.sock'])).code).toBe(1);
    expect(await box.output(['cat', '/etc/postfix/master.cf'])).toBe(masterBefore);
    expect((await box.exec(['getent', 'passwd', 'mailsubmit'])).code).toBe(2);
  }, 300_000);
});
