/**
 * The daemon's way into Postfix, as install.sh sets it up: a Unix socket in
 * a directory only the daemon's user may pass through. Staged against a
 * private Postfix: an install with the TCP re-injection listener of older
 * versions (any local user can connect to it, forge XFORWARD and get mail
 * queued, bypassing the authorization list), then install.sh again with
 * the default, which takes the TCP listener out. Then: a user not on the
 * list, with or without the helper's group, cannot connect to the socket;
 * the old attack finds nothing listening; a listed user's mail still goes
 * through, with its XFORWARD client in Postfix's log. Also: the modes of
 * the list, the log directory and the logrotate file; a link the daemon's
 * user plants in its log directory is never written through by root; an
 * earlier release's block is brought up to date by install.sh; and
 * uninstall leaves master.cf byte for byte as before the first install.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childOutput } from '../support/child-output.ts';
import { freePort } from '../support/free-port.ts';
import { PrivatePostfix } from '../support/private-postfix.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import { accountExists, createUser, deleteAccount, idOf, type TestUser } from '../support/test-accounts.ts';
import { processesRunning, runCommand, StagedInstall } from './staged-install.ts';

const ACCOUNT = 'mstpriv';
const STEP_TIMEOUT = 120_000;

/** connect(2) to a Unix socket as uid/gid (no supplementary groups): 'connected' or the errno code. */
function connectAs(uid: number, gid: number, path: string): Promise<string> {
  const script = "require('net').connect({ path: process.argv[1] }).on('connect', function () { console.log('connected'); this.destroy(); }).on('error', (e) => console.log(e.code));";
  const child = spawn(process.execPath, ['-e', script, path], { uid, gid, stdio: ['ignore', 'pipe', 'inherit'], env: {} });
  return childOutput(child).then(({ stdout }) => stdout.trim());
}

/** The old attack: straight to a TCP re-injection listener, XFORWARD, MAIL, RCPT, DATA. Returns the last reply or the errno code. */
function forgeThroughTcp(port: number, subject: string): Promise<string> {
  const commands = [
    'EHLO attacker\r\n',
    'XFORWARD NAME=forged.example ADDR=192.0.2.66\r\n',
    'MAIL FROM:<forged@example.org>\r\n',
    'RCPT TO:<victim@example.net>\r\n',
    'DATA\r\n',
    `Subject: ${subject}\r\n\r\nforged\r\n.\r\n`,
    'QUIT\r\n',
  ];
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let replies = '';
    let sent = 0;
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    socket.on('data', (chunk: Buffer) => {
      replies += chunk.toString();
      // One command per final reply line (the greeting first).
      const finals = replies.split('\r\n').filter((line) => /^\d{3} /.test(line)).length;
      while (sent < finals && sent < commands.length) socket.write(commands[sent++] ?? '');
    });
    socket.on('close', () => resolve(replies.split('\r\n').filter((l) => /^250 2\.0\.0 Ok: queued/.test(l))[0] ?? replies));
  });
}

describe.skipIf(!PrivatePostfix.isAvailable())('the private re-injection listener install.sh sets up', () => {
  const sink = new RecordingSink();
  let postfix: PrivatePostfix;
  let tcp: StagedInstall;
  let staged: StagedInstall;
  let masterBefore: Buffer;
  let caller: TestUser;
  let outsider: TestUser;
  let port: number;

  beforeAll(async () => {
    postfix = await PrivatePostfix.start({ relayPort: await sink.listen() });
    masterBefore = readFileSync(join(postfix.dir, 'master.cf'));
    deleteAccount(ACCOUNT);
    deleteAccount(`${ACCOUNT}-mta`);
    caller = createUser('mstprivcaller');
    outsider = createUser('mstprivoutsider');
    port = await freePort();
    tcp = StagedInstall.create({ postfixConfig: postfix.dir, listenerPort: port, account: ACCOUNT, setgid: true, listener: 'tcp' });
    staged = tcp.withListener('private');
  }, STEP_TIMEOUT);

  afterAll(async () => {
    if (staged !== undefined) {
      if (existsSync(staged.stateFile)) await staged.uninstall();
      for (const pid of processesRunning(join(staged.prefix, 'lib', 'mailsubmit', 'mailsubmitd.mjs'))) process.kill(pid, 'SIGKILL');
      rmSync(staged.root, { recursive: true, force: true });
    }
    for (const name of [ACCOUNT, `${ACCOUNT}-mta`, 'mstprivcaller', 'mstprivoutsider']) deleteAccount(name);
    await postfix?.stop();
    await sink.close();
  }, STEP_TIMEOUT);

  it('with --listener 127.0.0.1:PORT, as older versions had it, any local user can queue forged mail past the list', async () => {
    const result = await tcp.install();
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(await forgeThroughTcp(port, 'forged over tcp')).toMatch(/^250 2\.0\.0 Ok: queued as/);
    await sink.waitForMessage((m) => m.data.includes('Subject: forged over tcp\r\n'));
  }, STEP_TIMEOUT);

  it('install.sh again, with the default: the TCP listener is gone and the daemon targets the private socket', async () => {
    const result = await staged.install();
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`removed the re-injection listener ${tcp.listener}`);
    expect(result.stdout).toContain(`added the re-injection listener ${staged.listenerService}`);
    expect(result.stdout).toContain(`downstream.target is now unix:${staged.downstreamSocket} (was ${tcp.listener})`);
    const master = readFileSync(join(postfix.dir, 'master.cf'), 'utf8');
    expect(master).not.toContain(tcp.listener);
    expect(master.split('# mailsubmit: end').length).toBe(2);
    expect(readFileSync(staged.configFile, 'utf8')).toContain(`\ntarget = "unix:${staged.downstreamSocket}"\n`);
    const check = await runCommand('postfix', ['-c', postfix.dir, 'check']);
    expect(check.code).toBe(0);
    expect(check.stderr).not.toMatch(/mailsubmit-|unix\.\.\./);

    const dir = statSync(staged.downstreamDir);
    expect([dir.uid, dir.gid, (dir.mode & 0o7777).toString(8)]).toEqual([idOf('passwd', 'postfix'), idOf('group', staged.mtaGroup), '710']);
    expect(statSync(staged.downstreamSocket).isSocket()).toBe(true);
    expect(execFileSync('getent', ['group', staged.mtaGroup], { encoding: 'utf8' }).trim().split(':')[3]).toBe(ACCOUNT);
  }, STEP_TIMEOUT);

  it('the old attack finds no listener, and the socket refuses users the daemon does not trust (EACCES)', async () => {
    expect(await forgeThroughTcp(port, 'forged after migration')).toBe('ECONNREFUSED');
    expect(await connectAs(outsider.uid, outsider.gid, staged.downstreamSocket)).toBe('EACCES');
    // The set-gid helper's group is not enough either.
    expect(await connectAs(outsider.uid, idOf('group', ACCOUNT), staged.downstreamSocket)).toBe('EACCES');
    expect(await connectAs(caller.uid, caller.gid, staged.downstreamSocket)).toBe('EACCES');
    // Only the daemon's user, through its group.
    expect(await connectAs(idOf('passwd', ACCOUNT), idOf('group', staged.mtaGroup), staged.downstreamSocket)).toBe('connected');
  }, STEP_TIMEOUT);

  it('a listed user\'s mail goes through the helper, the daemon and the socket, with the XFORWARD client in Postfix\'s log', async () => {
    expect((await staged.ctlCommand(['allow', caller.name, 'client'])).code).toBe(0);
    const result = await staged.submit(
      caller,
      `sender: ${caller.name}@example.org\nrecipient: rcpt@example.net\nclient_name: mx.example.net\nclient_address: [192.0.2.25]\n\nSubject: private door\n\nbody\n`,
      ['-v'],
    );
    expect(result.stderr).toMatch(/^mailsubmit: queued as [0-9A-F]+\n$/);
    expect(result.code).toBe(0);
    const queueId = /queued as ([0-9A-F]+)/.exec(result.stderr)?.[1] ?? '';
    await postfix.waitForLog(new RegExp(`postfix/mailsubmit/smtpd\\[\\d+\\]: ${queueId}: client=localhost\\[127\\.0\\.0\\.1\\], orig_client=mx\\.example\\.net\\[192\\.0\\.2\\.25\\]`));
    await sink.waitForMessage((m) => m.data.includes('Subject: private door\r\n'));
    expect(sink.messages.some((m) => m.data.includes('Subject: forged after migration'))).toBe(false);
  }, STEP_TIMEOUT);

  it('leaves the list 0640 root:GROUP, the log directory 0750 and a logrotate file logrotate accepts', async () => {
    const list = statSync(staged.authorizationList);
    expect([list.uid, list.gid, (list.mode & 0o7777).toString(8)]).toEqual([0, idOf('group', ACCOUNT), '640']);
    // mailsubmitctl allow rewrote it: the rewrite keeps the mode and the group.
    const logdir = statSync(staged.logdir);
    expect([logdir.uid, (logdir.mode & 0o7777).toString(8)]).toEqual([idOf('passwd', ACCOUNT), '750']);
    const rotate = readFileSync(staged.logrotateFile, 'utf8');
    expect(rotate).toContain(`${staged.logFile} {`);
    expect(rotate).toContain(`su ${ACCOUNT} ${ACCOUNT}`);
    const scratch = mkdtempSync('/tmp/mailsubmit-logrotate-');
    try {
      const debug = await runCommand('logrotate', ['-d', '-s', join(scratch, 'state'), staged.logrotateFile]);
      expect(debug.stderr + debug.stdout).not.toMatch(/error/i);
      expect(debug.code).toBe(0);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }, STEP_TIMEOUT);

  it('never writes through a link the daemon\'s user plants in the log directory', async () => {
    const target = join(staged.root, 'root-only-file');
    writeFileSync(target, 'root\'s own\n', { mode: 0o644 });
    const before = statSync(target);
    const user = idOf('passwd', ACCOUNT);
    execFileSync('setpriv', [`--reuid=${user}`, `--regid=${idOf('group', ACCOUNT)}`, '--clear-groups', 'ln', '-sfn', target, staged.logFile]);
    expect(lstatSync(staged.logFile).isSymbolicLink()).toBe(true);
    const result = await staged.install();
    expect(result.code).toBe(0);
    expect(readFileSync(target, 'utf8')).toBe('root\'s own\n');
    const after = statSync(target);
    expect([after.mtimeMs, after.uid, after.mode]).toEqual([before.mtimeMs, before.uid, before.mode]);
    const log = lstatSync(staged.logFile);
    expect([log.isFile(), log.uid]).toEqual([true, user]);
    rmSync(target);
  }, STEP_TIMEOUT);

  it('install.sh over the block of an earlier release brings it up to date (smtpd_recipient_limit), once', async () => {
    const masterPath = join(postfix.dir, 'master.cf');
    const current = readFileSync(masterPath, 'utf8');
    // The block as an earlier release wrote it (the private Postfix's own listener, above it, keeps its line).
    const block = current.indexOf("# mailsubmit: Postfix's re-injection listener");
    const older = current.slice(block).replace('\n  -o smtpd_recipient_limit=100000\n', '\n');
    expect(older).not.toBe(current.slice(block));
    writeFileSync(masterPath, current.slice(0, block) + older);
    const result = await staged.install();
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`updated the re-injection listener ${staged.listenerService}`);
    const master = readFileSync(masterPath, 'utf8');
    expect(master.split('# mailsubmit: end').length).toBe(2);
    expect(master.slice(master.indexOf("# mailsubmit: Postfix's re-injection listener"))).toContain('\n  -o smtpd_recipient_limit=100000\n');
    const check = await runCommand('postfix', ['-c', postfix.dir, 'check']);
    expect(check.code).toBe(0);
    const again = await staged.install();
    expect(again.stdout).toContain(`already has the re-injection listener ${staged.listenerService}`);
    expect(readFileSync(masterPath, 'utf8')).toBe(master);
  }, STEP_TIMEOUT);

  it('uninstall.sh leaves master.cf byte for byte as before the first install, and no directory or group behind', async () => {
    const result = await staged.uninstall();
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(readFileSync(join(postfix.dir, 'master.cf')).equals(masterBefore)).toBe(true);
    expect(existsSync(staged.downstreamDir)).toBe(false);
    expect(existsSync(join(postfix.dir, 'queue', 'pid', 'unix...'))).toBe(false);
    expect(staged.listRoot()).toEqual(['prefix']);
    expect(accountExists('group', staged.mtaGroup)).toBe(false);
    expect(accountExists('passwd', ACCOUNT)).toBe(false);
  }, STEP_TIMEOUT);
});
