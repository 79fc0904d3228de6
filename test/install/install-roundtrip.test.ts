/**
 * install.sh and uninstall.sh as a mail administrator uses them, in both
 * install modes (set-gid helper, and --no-setgid with an open socket):
 * staged into temporary directories against a private Postfix, with a
 * listener of their own added to its master.cf. An allowed user's mail goes
 * through the installed helper, daemon and listener to the sink; a denied
 * user gets 77; uninstall leaves nothing behind: no file, no account, no
 * process, and master.cf byte for byte as before. Also: the installed daemon
 * refuses to start on a configuration or list that a group could change, and
 * the front doors are links beside the helper (mailsubmit-sendmail,
 * mailsubmit-qmail-queue) that uninstall removes with the rest.
 */
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, chmodSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childOutput } from '../support/child-output.ts';
import { freePort } from '../support/free-port.ts';
import { PrivatePostfix } from '../support/private-postfix.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import { accountExists, createGroup, createUser, deleteAccount, idOf, type TestUser } from '../support/test-accounts.ts';
import { processesRunning, runCommand, StagedInstall, UNINSTALL_SCRIPT } from './staged-install.ts';

const STEP_TIMEOUT = 120_000;

function submission(caller: string, subject: string): string {
  return `sender: ${caller}@example.org\nrecipient: rcpt@example.net\n\nSubject: ${subject}\nFrom: ${caller}@example.org\n\nstaged install\n`;
}

/** In one mode the group is there before the install: uninstall must leave it as it was. */
const MODES = [
  { name: 'set-gid helper', setgid: true, account: 'mstms', groupExists: false },
  { name: '--no-setgid, with an existing group', setgid: false, account: 'mstmsopen', groupExists: true },
] as const;

describe.skipIf(!PrivatePostfix.isAvailable())('install.sh and uninstall.sh, staged', () => {
  let caller: TestUser;

  beforeAll(() => {
    caller = createUser('mstinstcaller');
  });

  afterAll(() => {
    deleteAccount('mstinstcaller');
  });

  for (const mode of MODES) {
    describe(mode.name, () => {
      const sink = new RecordingSink();
      let postfix: PrivatePostfix;
      let staged: StagedInstall;
      let masterBefore: Buffer;
      let postfixFilesBefore: string[];
      let daemonPid: number | null = null;
      let existingGid: number | null = null;

      beforeAll(async () => {
        postfix = await PrivatePostfix.start({ relayPort: await sink.listen() });
        masterBefore = readFileSync(join(postfix.dir, 'master.cf'));
        postfixFilesBefore = readdirSync(postfix.dir).sort();
        // Left by an interrupted run, install.sh would take it as the administrator's.
        deleteAccount(mode.account);
        deleteAccount(`${mode.account}-mta`);
        existingGid = mode.groupExists ? createGroup(mode.account) : null;
        staged = StagedInstall.create({ postfixConfig: postfix.dir, listenerPort: await freePort(), account: mode.account, setgid: mode.setgid });
      }, STEP_TIMEOUT);

      afterAll(async () => {
        // After a failure part-way: undo what is left, so the next run starts clean.
        if (staged !== undefined && readdirSync(staged.root).length > 1) await staged.uninstall();
        if (staged !== undefined) {
          for (const pid of processesRunning(join(staged.prefix, 'lib', 'mailsubmit', 'mailsubmitd.mjs'))) process.kill(pid, 'SIGKILL');
          rmSync(staged.root, { recursive: true, force: true });
        }
        deleteAccount(mode.account);
        deleteAccount(`${mode.account}-mta`);
        await postfix?.stop();
        await sink.close();
      }, STEP_TIMEOUT);

      it('installs into the staged layout, with the listener added to the private Postfix', async () => {
        const result = await staged.install();
        expect(result.stderr).toBe('');
        expect(result.code).toBe(0);
        expect(result.stdout).toContain(`added the re-injection listener ${staged.listenerService}`);

        const uid = idOf('passwd', mode.account);
        const gid = idOf('group', mode.account);
        const helper = statSync(staged.helper);
        expect(helper.uid).toBe(0);
        expect(helper.mode & 0o7777).toBe(mode.setgid ? 0o2755 : 0o755);
        expect(helper.gid).toBe(mode.setgid ? gid : 0);
        const rundir = statSync(staged.rundir);
        expect([rundir.uid, rundir.gid, rundir.mode & 0o7777]).toEqual([uid, gid, mode.setgid ? 0o750 : 0o755]);
        expect(statSync(staged.socket).mode & 0o777).toBe(mode.setgid ? 0o660 : 0o666);
        // The local queue: the daemon's own, 0700, its three subdirectories too (uninstall.sh removes them when empty).
        for (const dir of ['', 'incoming', 'ready', 'state']) {
          const queue = statSync(join(staged.queueDirectory, dir));
          expect([queue.uid, queue.gid, queue.mode & 0o7777], `queue/${dir}`).toEqual([uid, gid, 0o700]);
        }
        for (const door of ['mailsubmit-sendmail', 'mailsubmit-qmail-queue']) {
          const link = join(staged.prefix, 'bin', door);
          expect(lstatSync(link).isSymbolicLink(), door).toBe(true);
          expect(readlinkSync(link)).toBe('mailsubmit');
        }
        expect(readFileSync(join(staged.sysconfdir, 'install.state'), 'utf8')).toContain(`file=${join(staged.prefix, 'bin', 'mailsubmit-sendmail')}\n`);

        const config = readFileSync(staged.configFile, 'utf8');
        expect(config).toContain(`\nsocket = "${staged.socket}"\n`);
        expect(config).toContain(`\nauthorization_list = "${staged.authorizationList}"\n`);
        expect(config).toContain(`\nsocket_group = "${mode.account}"\n`);
        expect(config).toContain(`\ntarget = "unix:${staged.downstreamSocket}"\n`);
        expect(config).toContain(`\n[queue]\n`);
        expect(config).toContain(`\ndirectory = "${staged.queueDirectory}"\n`);
        expect(config).toContain(`\ninstall_mode = "${mode.setgid ? 'setgid' : 'open'}"\n`);
        expect(config).toContain(`\nsocket_mode = "${mode.setgid ? '0660' : '0666'}"\n`);
        expect(config + readFileSync(staged.authorizationList, 'utf8')).not.toMatch(/@[A-Z_]+@/);

        const services = execFileSync('postconf', ['-c', postfix.dir, '-M'], { encoding: 'utf8' });
        expect(services).toMatch(new RegExp(`^\\.\\./mailsubmit-${mode.account}/smtpd\\s+unix\\s`, 'm'));
        expect(services).not.toMatch(/\sinet\s.*syslog_name=postfix\/mailsubmit/);
        expect(services).toContain('syslog_name=postfix/mailsubmit');

        daemonPid = staged.daemonPid();
        expect(daemonPid).not.toBeNull();
        expect(statSync(`/proc/${daemonPid}`).uid).toBe(uid);
      }, STEP_TIMEOUT);

      it("has the installed mailsubmitctl config check find the installed helper through install.state, its compiled-in paths the configuration's", async () => {
        // Not on PATH: config check must find the helper install.sh recorded beside the configuration.
        const check = await runCommand(staged.ctl, ['config', 'check', '--daemon-user', mode.account, staged.configFile]);
        expect(check.stderr).toBe('');
        expect(check.stdout).toMatch(new RegExp(`^ok: ${staged.configFile}; authorization list ${staged.authorizationList}, `));
        expect(check.stdout).not.toMatch(/helper|warning/);
        expect(check.code).toBe(0);
      }, STEP_TIMEOUT);

      it('lets an allowed user submit through the installed helper, and answers 77 once denied', async () => {
        const allowed = await staged.ctlCommand(['allow', caller.name]);
        expect(allowed.code).toBe(0);
        // The installed mailsubmitctl finds the staged list on its own.
        expect((await runCommand(staged.ctl, ['list'])).stdout).toContain(caller.name);

        const accepted = await staged.submit(caller, submission(caller.name, 'allowed'), ['-v']);
        expect(accepted.stderr).toMatch(/^mailsubmit: queued as [0-9A-F]+\n$/);
        expect(accepted.code).toBe(0);
        const queueId = /queued as ([0-9A-F]+)/.exec(accepted.stderr)?.[1] ?? '';
        // Through the listener install.sh added (its syslog_name), not the instance's own.
        await postfix.waitForLog(new RegExp(`postfix/mailsubmit/smtpd\\[\\d+\\]: ${queueId}: client=localhost`));
        const [message] = await sink.waitForMessages(1);
        expect(message?.mailFrom).toMatch(new RegExp(`^MAIL FROM:<${caller.name}@example\\.org>`));
        expect(message?.rcptTo).toEqual(['RCPT TO:<rcpt@example.net> ORCPT=rfc822;rcpt@example.net']);
        expect(message?.data.toString('latin1')).toContain('Subject: allowed\r\n');

        expect((await staged.ctlCommand(['deny', caller.name])).code).toBe(0);
        const refused = await staged.submit(caller, submission(caller.name, 'denied'));
        expect(refused.stderr).toMatch(/not authorized/);
        expect(refused.code).toBe(77);
        expect(sink.messages).toHaveLength(1);
      }, STEP_TIMEOUT);

      it('delivers through the installed mailsubmit-sendmail link, sendmail options and all', async () => {
        expect((await staged.ctlCommand(['allow', caller.name])).code).toBe(0);
        const link = join(staged.prefix, 'bin', 'mailsubmit-sendmail');
        const child = spawn(link, ['-oi', '-f', `${caller.name}@example.org`, 'sendmail-door@example.net'], {
          uid: caller.uid,
          gid: caller.gid,
          stdio: ['pipe', 'ignore', 'pipe'],
          env: {},
        });
        const output = childOutput(child);
        child.stdin.end('Subject: through the sendmail door\n\nstaged install\n');
        const result = await output;
        expect(result.stderr).toBe('');
        expect(result.code).toBe(0);
        const message = await sink.waitForMessage((m) => m.data.includes('Subject: through the sendmail door\r\n'));
        expect(message.rcptTo).toEqual(['RCPT TO:<sendmail-door@example.net> ORCPT=rfc822;sendmail-door@example.net']);
        expect((await staged.ctlCommand(['deny', caller.name])).code).toBe(0);
      }, STEP_TIMEOUT);

      if (mode.setgid) {
        it('has the installed daemon refuse a configuration or an authorization list a group can write (78)', async () => {
          const scratch = mkdtempSync('/tmp/mailsubmit-unsafe-');
          try {
            chmodSync(scratch, 0o755);
            // Its own socket paths, so that a daemon that wrongly starts disturbs nothing.
            const config = join(scratch, 'mailsubmit.conf');
            const safeConfig = readFileSync(staged.configFile, 'utf8')
              .replace(/^socket = .*$/m, `socket = "${join(scratch, 'mailsubmit.sock')}"`)
              .replace(/^control_socket = .*$/m, `control_socket = "${join(scratch, 'control.sock')}"`);
            writeFileSync(config, safeConfig, { mode: 0o644 });
            chmodSync(config, 0o664);
            const unsafeConfig = await runCommand(staged.daemon, ['-c', config], 15_000);
            expect(unsafeConfig.stderr).toContain(`${config}: can be written by group or others`);
            expect(unsafeConfig.stderr).toContain(`run: chmod go-w ${config}`);
            expect(unsafeConfig.code).toBe(78);

            const list = join(scratch, 'authorized');
            copyFileSync(staged.authorizationList, list);
            chmodSync(list, 0o664);
            writeFileSync(config, safeConfig.replace(/^authorization_list = .*$/m, `authorization_list = "${list}"`), { mode: 0o644 });
            chmodSync(config, 0o644);
            const unsafeList = await runCommand(staged.daemon, ['-c', config], 15_000);
            expect(unsafeList.stderr).toContain(`${list}: can be written by group or others`);
            expect(unsafeList.stderr).toContain(`run: chmod go-w ${list}`);
            expect(unsafeList.code).toBe(78);
          } finally {
            rmSync(scratch, { recursive: true, force: true });
          }
        }, STEP_TIMEOUT);

        it('has uninstall.sh refuse options that differ from the install record, removing nothing', async () => {
          const before = staged.listRoot();
          const options = staged.layoutOptions;
          const listenerAt = options.indexOf('--listener') + 1;
          options[listenerAt] = '127.0.0.1:1';
          const result = await runCommand('bash', [UNINSTALL_SCRIPT, ...options]);
          expect(result.stderr).toContain('install.state says this was installed with --listener private');
          expect(result.code).toBe(1);
          expect(staged.listRoot()).toEqual(before);
        }, STEP_TIMEOUT);
      }

      it('uninstalls exactly what install created: no file, no account, no daemon, master.cf as before', async () => {
        const result = await staged.uninstall();
        expect(result.stderr).toBe('');
        expect(result.code).toBe(0);
        // The test made the root and prefix/; everything else was install.sh's.
        expect(staged.listRoot()).toEqual(['prefix']);
        expect(readFileSync(join(postfix.dir, 'master.cf')).equals(masterBefore)).toBe(true);
        expect(readdirSync(postfix.dir).sort()).toEqual(postfixFilesBefore);
        expect(execFileSync('postconf', ['-c', postfix.dir, '-M'], { encoding: 'utf8' })).not.toContain('mailsubmit');
        expect(existsSync(staged.downstreamDir)).toBe(false);
        expect(existsSync(join(postfix.dir, 'queue', 'pid', 'unix...'))).toBe(false);
        expect(accountExists('group', staged.mtaGroup)).toBe(false);
        expect(daemonPid).not.toBeNull();
        expect(() => process.kill(daemonPid ?? 0, 0)).toThrow(/ESRCH/);
        expect(processesRunning(join(staged.prefix, 'lib', 'mailsubmit', 'mailsubmitd.mjs'))).toEqual([]);
        expect(accountExists('passwd', mode.account)).toBe(false);
        if (existingGid === null) {
          expect(accountExists('group', mode.account)).toBe(false);
        } else {
          expect(idOf('group', mode.account)).toBe(existingGid);
          expect(result.stdout).toContain(`kept group ${mode.account}: install.sh did not create it`);
        }
      }, STEP_TIMEOUT);
    });
  }
});
