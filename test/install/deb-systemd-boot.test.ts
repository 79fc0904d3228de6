/**
 * The package under real systemd: a Debian 12 booted by systemd-nspawn, the
 * .deb installed in it with dpkg, then the system powered off and booted
 * again. After that boot the daemon must be up (active, enabled, its sockets
 * with the packaged modes, the submission socket held by systemd), rated by `systemd-analyze security` as
 * docs/security.md says, take a listed user's mail into the container's
 * Postfix and refuse anyone else (77 from the helper, EACCES at each socket
 * the package made, its own and Postfix's), and on `systemctl stop` drain what is in
 * flight as mailsubmitd(8) promises. Skipped, with the reason printed, where
 * the machine cannot boot such a system; the offline checks of the unit are
 * in systemd-unit.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BootState, DebianContainer, debianContainerUnavailable } from '../support/debian-container.ts';
import { until } from '../support/until.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const unavailable = await debianContainerUnavailable();
if (unavailable !== null) console.warn(`the boot under systemd is skipped: ${unavailable}`);

/** The overall exposure docs/security.md gives for the running unit. */
function documentedExposure(): number {
  const paragraph = readFileSync(join(ROOT, 'docs', 'security.md'), 'utf8')
    .split('\n\n')
    .find((text) => text.includes('`systemd-analyze security\nmailsubmitd`') || text.includes('`systemd-analyze security mailsubmitd`'));
  const figure = /is rated (\d+(?:\.\d+)?)/.exec(paragraph ?? '')?.[1];
  if (figure === undefined) throw new Error('docs/security.md gives no figure for systemd-analyze security mailsubmitd');
  return Number(figure);
}

const message = (subject: string) => `Subject: ${subject}\nFrom: someone\n\n${subject}: its body\n`;

describe.skipIf(unavailable !== null)('the package in a Debian booted by systemd', () => {
  let out: string;
  let box: DebianContainer;
  let booted: BootState;
  const mailbox = (user: string) => box.output(['sh', '-c', 'cat "/var/mail/$1" 2>/dev/null || true', 'sh', user]);
  /** A key's value in the installed mailsubmit.conf (the key is unique there, in whichever table). */
  const confValue = async (key: string) => /=\s*"?([^"\n]*)"?/.exec(await box.output(['grep', '-E', `^\\s*${key}\\s*=`, '/etc/mailsubmit/mailsubmit.conf']))?.[1];
  const unitValue = (key: string) => box.output(['systemctl', 'show', '-P', key, 'mailsubmitd']);
  const socketsReady = async () => (await box.exec(['test', '-S', '/run/mailsubmit/mailsubmit.sock'])).code === 0 && (await box.exec(['test', '-S', '/run/mailsubmit/control.sock'])).code === 0;
  const addUser = async (name: string) => expect((await box.exec(['useradd', '--no-create-home', name])).code).toBe(0);

  beforeAll(async () => {
    out = mkdtempSync('/tmp/mailsubmit-boot-deb-');
    execFileSync('npm', ['run', 'deb', '--', out], { cwd: ROOT, stdio: 'ignore' });
    const deb = readdirSync(out).find((name) => /^mailsubmit_.*\.deb$/.test(name));
    if (deb === undefined) throw new Error(`npm run deb left no package in ${out}`);

    box = await DebianContainer.create({ name: 'msboot' });
    await box.boot();
    await box.copyIn(join(out, deb), `/root/${deb}`);
    const installed = await box.exec(['dpkg', '-i', `/root/${deb}`]);
    if (installed.code !== 0) throw new Error(`dpkg -i ${deb} failed (${installed.code}):\n${installed.stdout}${installed.stderr}`);
    await box.poweroff();
    booted = await box.boot();
  }, 400_000);

  afterAll(() => {
    box?.destroy();
    if (out) rmSync(out, { recursive: true, force: true });
  }, 30_000);

  it('boots with no failed unit and the daemon started by systemd: active, enabled, its sockets with the packaged modes', async () => {
    expect(booted.failedUnits).toEqual([]);
    expect(booted.state).toBe('running');
    expect(await box.output(['systemctl', 'is-active', 'mailsubmitd'])).toBe('active');
    expect(await box.output(['systemctl', 'is-enabled', 'mailsubmitd'])).toBe('enabled');
    // systemd holds the submission socket (mailsubmitd.socket) and passes it to the daemon.
    expect(await box.output(['systemctl', 'is-active', 'mailsubmitd.socket'])).toBe('active');
    expect(await box.output(['systemctl', 'is-enabled', 'mailsubmitd.socket'])).toBe('enabled');
    await until(socketsReady, "the daemon's sockets");

    const user = await unitValue('User');
    const group = await unitValue('Group');
    const stat = async (path: string) => box.output(['stat', '-c', '%a %U %G', path]);
    const octal = (mode: string | undefined) => Number.parseInt(mode ?? 'missing', 8).toString(8);
    expect(await stat('/run/mailsubmit')).toBe(`${octal(await unitValue('RuntimeDirectoryMode'))} ${user} ${group}`);
    expect(await stat('/run/mailsubmit/mailsubmit.sock')).toBe(`${octal(await confValue('socket_mode'))} ${user} ${await confValue('socket_group')}`);
    // docs/security.md: the control socket is 0600, its owner's alone.
    expect(await stat('/run/mailsubmit/control.sock')).toBe(`600 ${user} ${group}`);
  });

  it('is rated by systemd-analyze security, running, as docs/security.md says', async () => {
    const security = await box.exec(['systemd-analyze', 'security', 'mailsubmitd', '--no-pager']);
    expect(security.code).toBe(0);
    const exposure = /Overall exposure level for mailsubmitd\.service: ([0-9.]+)/.exec(security.stdout)?.[1];
    expect(exposure, security.stdout).toBeDefined();
    expect(Number(exposure)).toBeLessThanOrEqual(documentedExposure());
  });

  it("takes a listed user's message into the system's Postfix, which delivers it to /var/mail", async () => {
    await addUser('mstbootalice');
    expect((await box.exec(['mailsubmitctl', 'allow', 'mstbootalice'])).code).toBe(0);
    const sent = await box.exec(['mailsubmit-sendmail', '-v', 'mstbootalice'], { user: 'mstbootalice', input: message('boot submission') });
    expect(sent.stderr).toMatch(/^mailsubmit-sendmail: queued as [0-9A-F]+\n$/);
    expect(sent.code).toBe(0);
    await until(async () => (await mailbox('mstbootalice')).includes('boot submission: its body'), 'the message in /var/mail/mstbootalice');
    const queueId = /queued as ([0-9A-F]+)/.exec(sent.stderr)![1];
    expect(await mailbox('mstbootalice')).toMatch(new RegExp(`with ESMTP id ${queueId}\\b`));
  });

  it('refuses a user who is not on the list with 77', async () => {
    await addUser('mstbootbob');
    const refused = await box.exec(['mailsubmit-sendmail', 'mstbootbob'], { user: 'mstbootbob', input: message('not listed') });
    expect(refused.stderr).toMatch(/not authorized/);
    expect(refused.code).toBe(77);
    expect(await mailbox('mstbootbob')).toBe('');
  });

  it("keeps a user who is not on the list out of every socket the package made, the daemon's and Postfix's", async () => {
    // connect(2) as that user, with the socket type each one has: the errno's name, or 'connected'.
    const probe = `import socket, sys
for path, kind in ((p.split('=')[0], p.split('=')[1]) for p in sys.argv[1:]):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET if kind == 'seqpacket' else socket.SOCK_STREAM)
    try:
        s.connect(path); print(path, 'connected')
    except OSError as e:
        print(path, __import__('errno').errorcode[e.errno])`;
    const sockets = ['/run/mailsubmit/mailsubmit.sock=seqpacket', '/run/mailsubmit/control.sock=stream', '/var/spool/postfix/mailsubmit/smtpd=stream', '/var/spool/postfix/public/mailsubmit-cleanup=stream'];
    const asOutsider = await box.exec(['python3', '-c', probe, ...sockets], { user: 'mstbootbob' });
    expect(asOutsider.stdout.trim().split('\n')).toEqual(sockets.map((entry) => `${entry.split('=')[0]} EACCES`));
    // The same probe as root reaches each of them: the refusals above are the modes', not the probe's.
    const asRoot = await box.exec(['python3', '-c', probe, ...sockets]);
    expect(asRoot.stdout.trim().split('\n')).toEqual(sockets.map((entry) => `${entry.split('=')[0]} connected`));
  });

  it('drains on systemctl stop: a submission in flight that ends within timeouts.shutdown gets 0 and arrives, one that does not gets 75 and nothing arrives; one that comes meanwhile waits in the socket backlog and is served', async () => {
    // A short drain window, so that a caller who never finishes meets it soon.
    const shutdownSeconds = 5;
    expect((await box.exec(['sed', '-i', `s/^\\[timeouts\\]$/[timeouts]\\nshutdown = ${shutdownSeconds}/`, '/etc/mailsubmit/mailsubmit.conf'])).code).toBe(0);
    expect(await confValue('shutdown')).toBe(String(shutdownSeconds));
    expect((await box.exec(['systemctl', 'restart', 'mailsubmitd'])).code).toBe(0);
    await until(socketsReady, "the restarted daemon's sockets");
    const inFlight = async () => JSON.parse(await box.output(['mailsubmitctl', 'status', '--json'])).in_flight as number;

    // Slow writers: the headers now, the body only once the stop has begun.
    const finishing = ['drain 1', 'drain 2', 'drain 3'].map((subject) => {
      const submission = box.start(['mailsubmit-sendmail', '-v', 'mstbootalice'], { user: 'mstbootalice' });
      submission.write(`Subject: ${subject}\nFrom: someone\n\n`);
      return { subject, submission };
    });
    const held = box.start(['mailsubmit-sendmail', '-v', 'mstbootalice'], { user: 'mstbootalice' });
    held.write('Subject: drain held\nFrom: someone\n\ndrain held: ');
    await until(async () => (await inFlight()) === 4, 'four submissions in flight');

    // systemd holds the socket across the stop: a caller who comes meanwhile
    // waits in its backlog, and the socket starts the service again for it.
    const orderlyStops = async () => (await box.output(['journalctl', '-u', 'mailsubmitd', '-o', 'cat', '--no-pager'])).split('\n').filter((line) => line === 'mailsubmitd.service: Deactivated successfully.').length;
    const stopsBefore = await orderlyStops();
    const stop = box.exec(['systemctl', 'stop', 'mailsubmitd'], { timeoutMs: 90_000 });
    await until(async () => (await box.output(['systemctl', 'is-active', 'mailsubmitd'])) === 'deactivating', 'the stop to begin');
    const late = box.exec(['mailsubmit-sendmail', '-v', 'mstbootalice'], { user: 'mstbootalice', input: message('drain late') });

    const finished = await Promise.all(finishing.map(({ subject, submission }) => submission.end(`${subject}: its body\n`)));
    for (const result of finished) {
      expect(result.stderr).toMatch(/queued as [0-9A-F]+/);
      expect(result.code).toBe(0);
    }
    const heldResult = await held.result;
    held.end();
    expect(heldResult.code).toBe(75);

    expect((await stop).code).toBe(0);
    // The daemon ended with 0, an orderly stop, before the socket started it again for the late caller.
    await until(async () => (await orderlyStops()) === stopsBefore + 1, "systemd's record of the stop");
    const lateResult = await late;
    expect(lateResult.stderr).toMatch(/queued as [0-9A-F]+/);
    expect(lateResult.code).toBe(0);

    for (const subject of [...finishing.map(({ subject }) => subject), 'drain late']) {
      await until(async () => (await mailbox('mstbootalice')).includes(`${subject}: its body`), `"${subject}" in /var/mail/mstbootalice`);
    }
    // Everything Postfix took has been delivered by now (or is still queued): the held message is in neither.
    expect(await box.output(['sh', '-c', 'postqueue -p | tail -n 1'])).toMatch(/Mail queue is empty/);
    const delivered = await mailbox('mstbootalice');
    expect(delivered).not.toContain('drain held');
  }, 90_000);
});
