/**
 * The package's life on a Debian system, as an administrator lives it, in a
 * Debian 12 booted by systemd-nspawn: installed with apt as README.md says
 * (the listener added, both units started, a listed user's mail delivered);
 * upgraded to a package rebuilt with a changed default while a user submits
 * without pause (no submission refused or lost: the socket waits for the
 * new daemon; the administrator's edits to the conffiles kept);
 * `apt remove` (daemon and listener gone, master.cf as before; the
 * configuration, the accounts and a message in the local queue kept);
 * installed again (the kept message delivered); `apt purge` (nothing left:
 * files, accounts, statoverride, master.cf entry). Skipped, with the reason
 * printed, where the machine cannot boot such a system.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DebianContainer, debianContainerUnavailable } from '../support/debian-container.ts';
import { until } from '../support/until.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const unavailable = await debianContainerUnavailable();
if (unavailable !== null) console.warn(`the package's install, upgrade and removal are skipped: ${unavailable}`);

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
/** The first line of README.md's sh block that starts with `start`. */
function readmeCommand(start: string): string[] {
  const block = [...README.matchAll(/```sh\n([^]*?)```/g)].map((m) => m[1]!).find((text) => text.startsWith(start));
  if (block === undefined) throw new Error(`README.md has no sh block starting with ${start}`);
  return block.trim().split('\n');
}

/** The default the rebuilt package changes, as install/files/mailsubmit.conf has it. */
const OLD_DEFAULT = '#max_recipients = 100000';
const NEW_DEFAULT = 'max_recipients = 5000';
/** The administrator's own edit of the same conffile. */
const OLD_LINE = '#max_per_uid = 64';
const ADMIN_LINE = 'max_per_uid = 32';

const run = (command: string, args: readonly string[], cwd = ROOT) => execFileSync(command, args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });

/**
 * The package rebuilt from a copy of the tree with a later version and a
 * changed default in mailsubmit.conf, as a next release would be.
 */
function buildNextRelease(scratch: string, out: string, version: string): void {
  const tree = join(scratch, 'mailsubmit');
  mkdirSync(tree, { recursive: true });
  run('sh', ['-c', 'git ls-files -z --cached --others --exclude-standard | xargs -0 tar -c --no-recursion -f - | tar -x -C "$1"', 'sh', tree]);
  run('cp', ['-a', join(ROOT, 'node_modules'), tree]);
  const conf = join(tree, 'install', 'files', 'mailsubmit.conf');
  const text = readFileSync(conf, 'utf8');
  if (!text.includes(`\n${OLD_DEFAULT}\n`)) throw new Error(`install/files/mailsubmit.conf has no line ${OLD_DEFAULT} to change`);
  writeFileSync(conf, text.replace(`\n${OLD_DEFAULT}\n`, `\n${NEW_DEFAULT}\n`));
  const changelog = join(tree, 'debian', 'changelog');
  const entry = `mailsubmit (${version}) bookworm; urgency=medium\n\n  * ${NEW_DEFAULT} by default.\n\n -- mailsubmit maintainers <maintainers@users.noreply.r-seed-2d1eab89.example>  Mon, 07 Dec 2026 06:00:00 +0000\n\n`;
  writeFileSync(changelog, entry + readFileSync(changelog, 'utf8'));
  // build-deb.sh copies the files git knows.
  run('sh', ['-c', 'git init -q . && git add -A'], tree);
  run('bash', ['scripts/build-deb.sh', out], tree);
}

describe.skipIf(unavailable !== null)('the package installed, upgraded, removed and purged with apt', () => {
  let scratch: string;
  let box: DebianContainer;
  let firstDeb: string;
  let nextDeb: string;
  let nextVersion: string;
  let masterBefore: string;
  const sh = (script: string) => box.exec(['sh', '-c', script]);
  const apt = (argv: readonly string[]) =>
    box.exec(['env', 'DEBIAN_FRONTEND=noninteractive', ...argv, '-o', 'Dpkg::Options::=--force-confdef', '-o', 'Dpkg::Options::=--force-confold'], { timeoutMs: 180_000 });
  const mailbox = (user: string) => box.output(['sh', '-c', 'cat "/var/mail/$1" 2>/dev/null || true', 'sh', user]);
  const submit = (user: string, subject: string) => box.exec(['mailsubmit-sendmail', '-v', user], { user, input: `Subject: ${subject}\nFrom: ${user}\n\n${subject}: its body\n` });
  const active = (unit: string) => box.output(['systemctl', 'is-active', unit]);
  /**
   * Postfix down for good: `postfix stop` lets a running smtpd finish its
   * session at its convenience, and the daemon's pooled connection would
   * keep one taking mail; those are ended too.
   */
  const stopPostfix = async () => {
    expect((await box.exec(['systemctl', 'stop', 'postfix'])).code).toBe(0);
    await sh('pkill -x smtpd; pkill -x cleanup; true');
    await until(async () => (await box.exec(['pgrep', '-x', 'smtpd'])).code === 1, 'no smtpd left');
  };

  beforeAll(async () => {
    scratch = mkdtempSync('/tmp/mailsubmit-lifecycle-');
    const first = join(scratch, 'first');
    run('npm', ['run', '--silent', 'deb', '--', first]);
    const version = run('dpkg-parsechangelog', ['-S', 'Version']).trim();
    const arch = run('dpkg-architecture', ['-qDEB_HOST_ARCH']).trim();
    firstDeb = `mailsubmit_${version}_${arch}.deb`;
    nextVersion = `${version}+next1`;
    buildNextRelease(join(scratch, 'next-tree'), join(scratch, 'next'), nextVersion);
    nextDeb = `mailsubmit_${nextVersion}_${arch}.deb`;

    box = await DebianContainer.create({ name: 'mslife' });
    await box.boot();
    // Where README.md's apt line takes it from.
    await box.exec(['mkdir', '-p', '/tmp/mailsubmit-debs']);
    await box.copyIn(join(first, firstDeb), `/tmp/mailsubmit-debs/${firstDeb}`);
    await box.copyIn(join(scratch, 'next', nextDeb), `/root/${nextDeb}`);
    masterBefore = await box.output(['cat', '/etc/postfix/master.cf']);
    for (const user of ['mstlife', 'mstlifeout']) expect((await box.exec(['useradd', '--no-create-home', user])).code).toBe(0);
  }, 600_000);

  afterAll(() => {
    box?.destroy();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it("installs with README.md's apt command: the listener added, both units running, a listed user's mail delivered", async () => {
    const [install] = readmeCommand('apt install /tmp/mailsubmit-debs/');
    expect(install).toBe(`apt install /tmp/mailsubmit-debs/${firstDeb}`);
    const installed = await box.exec(['env', 'DEBIAN_FRONTEND=noninteractive', ...install!.split(' ')], { timeoutMs: 180_000 });
    expect(installed.code, installed.stdout + installed.stderr).toBe(0);
    expect(installed.stdout).toContain('mailsubmit-postfix-listener: added the re-injection listener ../mailsubmit/smtpd to /etc/postfix/master.cf');
    expect((await box.exec(['mailsubmit-postfix-listener', 'status'])).code).toBe(0);
    expect(await active('mailsubmitd.socket')).toBe('active');
    expect(await active('mailsubmitd.service')).toBe('active');

    expect((await box.exec(['mailsubmitctl', 'allow', 'mstlife'])).code).toBe(0);
    const sent = await submit('mstlife', 'first install');
    expect(sent.stderr).toMatch(/^mailsubmit-sendmail: queued as [0-9A-F]+\n$/);
    expect(sent.code).toBe(0);
    await until(async () => (await mailbox('mstlife')).includes('first install: its body'), 'the first message in /var/mail/mstlife');
    const refused = await submit('mstlifeout', 'not listed');
    expect(refused.code).toBe(77);
  });

  it('upgrades while a user submits without pause: no submission refused or lost, the edited conffiles kept', async () => {
    expect((await box.exec(['sed', '-i', `s/^${OLD_LINE}$/${ADMIN_LINE}/`, '/etc/mailsubmit/mailsubmit.conf'])).code).toBe(0);
    const pidBefore = await box.output(['systemctl', 'show', '-P', 'MainPID', 'mailsubmitd']);
    // One submission after another, each with its own subject, until told to stop; "N CODE" a line in /tmp/flow.
    const loop = box.start(['sh', '-c', 'i=0; while [ ! -e /tmp/flow.stop ]; do i=$((i+1)); printf "Subject: flow-%s\\n\\nflow %s\\n" $i $i | mailsubmit-sendmail -i mstlife 2>/dev/null; echo "$i $?" >>/tmp/flow; done'], {
      user: 'mstlife',
      timeoutMs: 300_000,
    });
    const lines = async () => (await box.output(['cat', '/tmp/flow'])).split('\n').filter(Boolean);
    await until(async () => (await lines()).length >= 20, 'twenty submissions before the upgrade', 60_000);
    const upgraded = await apt(['apt-get', 'install', '-y', `/root/${nextDeb}`]);
    expect(upgraded.code, upgraded.stdout + upgraded.stderr).toBe(0);
    const afterUpgrade = (await lines()).length;
    await until(async () => (await lines()).length >= afterUpgrade + 20, 'twenty submissions after the upgrade', 60_000);
    await box.exec(['touch', '/tmp/flow.stop']);
    expect((await loop.end('')).code).toBe(0);

    const results = (await lines()).map((line) => line.split(' '));
    expect(results.filter(([, code]) => code !== '0'), 'submissions not answered 0').toEqual([]);
    const delivered = () => mailbox('mstlife').then((text) => text.match(/^Subject: flow-\d+$/gm) ?? []);
    await until(async () => (await delivered()).length >= results.length, `${results.length} flow messages in /var/mail/mstlife`);
    expect((await delivered()).sort()).toEqual(results.map(([n]) => `Subject: flow-${n}`).sort());

    expect(await box.output(['dpkg-query', '-W', '-f', '${Version}', 'mailsubmit'])).toBe(nextVersion);
    expect(await box.output(['systemctl', 'show', '-P', 'MainPID', 'mailsubmitd'])).not.toBe(pidBefore);
    const conf = await box.output(['cat', '/etc/mailsubmit/mailsubmit.conf']);
    expect(conf).toContain(`\n${ADMIN_LINE}\n`);
    expect(conf).not.toContain(NEW_DEFAULT);
    expect(await box.output(['cat', '/etc/mailsubmit/mailsubmit.conf.dpkg-dist'])).toContain(`\n${NEW_DEFAULT}\n`);
    expect(await box.output(['mailsubmitctl', 'check', 'mstlife'])).toMatch(/^mstlife \(uid \d+\): allowed/);
    const master = await box.output(['cat', '/etc/postfix/master.cf']);
    expect(master.split("# mailsubmit: Postfix's re-injection listener").length).toBe(2);
  }, 300_000);

  it("apt remove: the daemon and the listener gone, master.cf as before; the configuration, the accounts and the local queue's message kept", async () => {
    // A message the MTA cannot take now waits in mailsubmit's local queue.
    await stopPostfix();
    const queued = await submit('mstlife', 'kept across removal');
    expect(queued.stderr).toMatch(/held in the local queue until the MTA can take it/);
    expect(queued.code).toBe(0);

    const [remove] = readmeCommand('apt remove mailsubmit');
    expect(remove).toBe('apt remove mailsubmit');
    const removed = await apt(remove!.split(' ').concat('-y'));
    expect(removed.code, removed.stdout + removed.stderr).toBe(0);
    expect(await active('mailsubmitd.socket')).toBe('inactive');
    expect(await active('mailsubmitd.service')).toBe('inactive');
    expect(await box.output(['cat', '/etc/postfix/master.cf'])).toBe(masterBefore);
    expect((await sh('test -e /usr/bin/mailsubmit || test -e /run/mailsubmit/mailsubmit.sock || test -e /var/spool/postfix/mailsubmit')).code).toBe(1);
    expect(await box.output(['cat', '/etc/mailsubmit/mailsubmit.conf'])).toContain(`\n${ADMIN_LINE}\n`);
    expect(await box.output(['cat', '/etc/mailsubmit/authorized'])).toMatch(/^mstlife$/m);
    expect((await box.exec(['getent', 'passwd', 'mailsubmit'])).code).toBe(0);
    expect(await box.output(['sh', '-c', 'ls /var/lib/mailsubmit/queue/ready | wc -l'])).toBe('1');
  }, 180_000);

  it('installed again, carries on: the listener back, the kept message delivered, the listed user still listed', async () => {
    expect((await box.exec(['systemctl', 'start', 'postfix'])).code).toBe(0);
    const installed = await apt(['apt-get', 'install', '-y', `/root/${nextDeb}`]);
    expect(installed.code, installed.stdout + installed.stderr).toBe(0);
    expect((await box.exec(['mailsubmit-postfix-listener', 'status'])).code).toBe(0);
    await until(async () => (await mailbox('mstlife')).includes('kept across removal: its body'), 'the kept message in /var/mail/mstlife', 60_000);
    const sent = await submit('mstlife', 'after reinstall');
    expect(sent.code).toBe(0);
  }, 180_000);

  it("apt purge after README.md's remove: no file, account, statoverride or master.cf entry of mailsubmit left", async () => {
    await stopPostfix();
    expect((await submit('mstlife', 'waiting at purge')).stderr).toMatch(/held in the local queue/);
    for (const command of readmeCommand('apt remove mailsubmit')) {
      const result = await apt(command.split(' ').concat('-y'));
      expect(result.code, `${command}: ${result.stdout}${result.stderr}`).toBe(0);
      if (command.startsWith('apt purge')) expect(result.stdout + result.stderr).toContain('mailsubmit: purged 1 message(s) that were waiting in the local queue');
    }
    expect((await box.exec(['systemctl', 'start', 'postfix'])).code).toBe(0);
    expect(await box.output(['cat', '/etc/postfix/master.cf'])).toBe(masterBefore);
    for (const name of ['mailsubmit', 'mailsubmit-mta']) expect((await box.exec(['getent', 'group', name])).code).toBe(2);
    expect((await box.exec(['getent', 'passwd', 'mailsubmit'])).code).toBe(2);
    expect(await box.output(['dpkg-statoverride', '--list'])).not.toContain('mailsubmit');
    expect(await box.output(['dpkg-query', '-W', '-f', '${Status}', 'mailsubmit'])).toBe('');
    const left = await box.output(['sh', '-c', 'find / -xdev \\( -path /proc -o -path /root -o -path /tmp/mailsubmit-debs -o -path /var/mail \\) -prune -o -name "*mailsubmit*" -print']);
    expect(left).toBe('');
  }, 180_000);
});
