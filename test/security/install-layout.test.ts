/**
 * The socket-path attacks of setgid-helper.test.ts against the layout
 * install.sh really creates, staged under a temporary root: there the run
 * directory belongs to the daemon's user (0750), not to root as in the test
 * harness's layout. An authorized caller, with or without the mailsubmit
 * group, must still be unable to replace or redirect the socket the
 * installed helper has compiled in, and the installed helper must still
 * reach the real daemon afterwards.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/free-port.ts';
import { PrivatePostfix } from '../support/private-postfix.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import { createUser, deleteAccount, idOf, type TestUser } from '../support/test-accounts.ts';
import { processesRunning, StagedInstall } from '../install/staged-install.ts';
import { runAsCaller } from './setgid-probes.ts';
import { ATTACK_PATHS } from './socket-path-attacks.ts';

const ACCOUNT = 'mstsecinst';
const STEP_TIMEOUT = 120_000;

describe.skipIf(!PrivatePostfix.isAvailable() && !process.env.CI)('the socket path in the layout install.sh creates', () => {
  const sink = new RecordingSink();
  let postfix: PrivatePostfix;
  let staged: StagedInstall;
  let caller: TestUser;
  let group: number;

  beforeAll(async () => {
    postfix = await PrivatePostfix.start({ relayPort: await sink.listen() });
    deleteAccount(ACCOUNT);
    deleteAccount(`${ACCOUNT}-mta`);
    caller = createUser('mstsecinstcaller');
    staged = StagedInstall.create({ postfixConfig: postfix.dir, listenerPort: await freePort(), account: ACCOUNT, setgid: true });
    const installed = await staged.install();
    expect(installed.stderr).toBe('');
    expect(installed.code).toBe(0);
    group = idOf('group', ACCOUNT);
    expect((await staged.ctlCommand(['allow', caller.name])).code).toBe(0);
  }, STEP_TIMEOUT);

  afterAll(async () => {
    if (staged !== undefined) {
      if (readdirSync(staged.root).length > 1) await staged.uninstall();
      for (const pid of processesRunning(join(staged.prefix, 'lib', 'mailsubmit', 'mailsubmitd.mjs'))) process.kill(pid, 'SIGKILL');
      rmSync(staged.root, { recursive: true, force: true });
    }
    deleteAccount(ACCOUNT);
    deleteAccount(`${ACCOUNT}-mta`);
    deleteAccount('mstsecinstcaller');
    await postfix?.stop();
    await sink.close();
  }, STEP_TIMEOUT);

  it('puts the socket 0660 in a 0750 run directory of the daemon\'s user, under directories only root can write', () => {
    const uid = idOf('passwd', ACCOUNT);
    const runDir = statSync(staged.rundir);
    expect([runDir.uid, runDir.gid, (runDir.mode & 0o7777).toString(8)]).toEqual([uid, group, '750']);
    const socket = statSync(staged.socket);
    expect([socket.isSocket(), (socket.mode & 0o777).toString(8), socket.gid]).toEqual([true, '660', group]);
    const helper = statSync(staged.helper);
    expect([helper.uid, helper.gid, (helper.mode & 0o7777).toString(8)]).toEqual([0, group, '2755']);
    for (let dir = dirname(staged.rundir); dir !== '/'; dir = dirname(dir)) {
      const st = statSync(dir);
      const sticky = (st.mode & 0o1000) !== 0;
      expect({ dir, uid: st.uid, writableByOthers: !sticky && (st.mode & 0o022) !== 0 }).toEqual({ dir, uid: 0, writableByOthers: false });
    }
  });

  for (const attack of ATTACK_PATHS) {
    it(`cannot be ${attack.name} by an authorized caller, with or without the mailsubmit group`, async () => {
      const before = statSync(staged.socket).ino;
      for (const gid of [caller.gid, group]) {
        expect(await runAsCaller({ uid: caller.uid, gid }, attack.program, attack.args(staged.socket, staged.root)), `as gid ${gid}`).toEqual(attack.expected);
      }
      expect(statSync(staged.socket).ino).toBe(before);
    });
  }

  it('keeps the daemon\'s way into Postfix shut to an authorized caller, with or without the mailsubmit group (EACCES)', () => {
    const script = "require('net').connect({ path: process.argv[1] }).on('connect', function () { console.log('connected'); this.destroy(); }).on('error', (e) => console.log(e.code));";
    for (const gid of [caller.gid, group]) {
      const result = spawnSync(process.execPath, ['-e', script, staged.downstreamSocket], { uid: caller.uid, gid, encoding: 'utf8', env: {} });
      expect(result.stdout.trim(), `as gid ${gid}`).toBe('EACCES');
    }
    expect(statSync(staged.downstreamSocket).isSocket()).toBe(true);
  });

  it('still delivers through the installed helper to the real daemon', async () => {
    const result = await staged.submit(caller, `sender: ${caller.name}@example.org\nrecipient: rcpt@example.net\n\nSubject: layout\n\nbody\n`, ['-v']);
    expect(result.stderr).toMatch(/^mailsubmit: queued as [0-9A-F]+\n$/);
    expect(result.code).toBe(0);
    const [message] = await sink.waitForMessages(1);
    expect(message?.mailFrom).toMatch(new RegExp(`^MAIL FROM:<${caller.name}@example\\.org>`));
  }, STEP_TIMEOUT);
});
