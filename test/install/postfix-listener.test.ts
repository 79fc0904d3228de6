/**
 * mailsubmit-postfix-listener, the Debian package's way to add Postfix's
 * re-injection listener (install/postfix-listener.sh), against a private
 * Postfix: `add` puts install.sh's block into master.cf and Postfix then
 * listens on the private socket, which the daemon's group reaches and
 * nobody else; `add` again changes nothing; `remove` leaves master.cf byte
 * for byte as before and takes its directories, its cleanup service's socket
 * and its record with it; `status`
 * tells which. The package's own use of it runs in a booted Debian
 * (deb-lifecycle.test.ts).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childOutput } from '../support/child-output.ts';
import { PrivatePostfix } from '../support/private-postfix.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import { idOf } from '../support/test-accounts.ts';
import { runCommand, type RunResult } from './staged-install.ts';

const SCRIPT = join(import.meta.dirname, '..', '..', 'install', 'postfix-listener.sh');

/** connect(2) to a Unix socket as uid/gid, no supplementary groups: 'connected' or the errno code. */
function connectAs(uid: number, gid: number, path: string): Promise<string> {
  const script = "require('net').connect({ path: process.argv[1] }).on('connect', function () { console.log('connected'); this.destroy(); }).on('error', (e) => console.log(e.code));";
  const child = spawn(process.execPath, ['-e', script, path], { uid, gid, stdio: ['ignore', 'pipe', 'inherit'], env: {} });
  return childOutput(child).then(({ stdout }) => stdout.trim());
}

function groupExists(name: string): boolean {
  return readFileSync('/etc/group', 'utf8').split('\n').some((line) => line.startsWith(`${name}:`));
}

describe.skipIf(!PrivatePostfix.isAvailable() || !groupExists('mailsubmit-mta'))('mailsubmit-postfix-listener', () => {
  const sink = new RecordingSink();
  let postfix: PrivatePostfix;
  let record: string;
  let masterBefore: Buffer;
  let doorDir: string;
  const listener = (command: string): Promise<RunResult> =>
    runCommand('env', [`MAILSUBMIT_LISTENER_STATE=${record}`, SCRIPT, command, '--postfix-config', postfix.dir]);

  beforeAll(async () => {
    postfix = await PrivatePostfix.start({ relayPort: await sink.listen() });
    record = join(mkdtempSync('/tmp/mailsubmit-listener-record-'), 'postfix-listener.state');
    masterBefore = readFileSync(join(postfix.dir, 'master.cf'));
    doorDir = join(postfix.dir, 'queue', 'mailsubmit');
  }, 60_000);

  afterAll(async () => {
    await postfix?.stop();
    await sink.close();
    if (record) rmSync(join(record, '..'), { recursive: true, force: true });
  });

  it('says there is no listener before add', async () => {
    const status = await listener('status');
    expect(status.code).toBe(1);
    expect(status.stdout).toContain('has no re-injection listener of mailsubmit');
  });

  it("adds install.sh's block, and Postfix listens where only the daemon's group gets in", async () => {
    const added = await listener('add');
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    expect(added.stdout).toContain('added the re-injection listener ../mailsubmit/smtpd');
    const master = readFileSync(join(postfix.dir, 'master.cf'), 'utf8');
    expect(master.startsWith(masterBefore.toString())).toBe(true);
    expect(master).toContain("\n# mailsubmit: Postfix's re-injection listener (see docs/postfix.md).\n");
    expect(master).toContain('\n../mailsubmit/smtpd unix n  -       n       -       -       smtpd\n');
    expect(statSync(doorDir).mode & 0o7777).toBe(0o710);
    expect(statSync(doorDir).gid).toBe(idOf('group', 'mailsubmit-mta'));
    const socket = join(doorDir, 'smtpd');
    expect(statSync(socket).isSocket()).toBe(true);
    expect(await connectAs(idOf('passwd', 'mailsubmit'), idOf('group', 'mailsubmit-mta'), socket)).toBe('connected');
    expect(await connectAs(idOf('passwd', 'nobody'), idOf('group', 'nogroup'), socket)).toBe('EACCES');
    expect(statSync(join(postfix.dir, 'queue', 'public', 'mailsubmit-cleanup')).isSocket()).toBe(true);
    expect((await listener('status')).code).toBe(0);
  });

  it('changes nothing when run again', async () => {
    const master = readFileSync(join(postfix.dir, 'master.cf'));
    const again = await listener('add');
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('already has the re-injection listener');
    expect(readFileSync(join(postfix.dir, 'master.cf'))).toEqual(master);
  });

  it('removes it: master.cf as it was, its directories and record gone', async () => {
    const removed = await listener('remove');
    expect(removed.code).toBe(0);
    expect(readFileSync(join(postfix.dir, 'master.cf'))).toEqual(masterBefore);
    expect(existsSync(doorDir)).toBe(false);
    // The cleanup service's socket and lock, which Postfix's master leaves behind.
    expect(existsSync(join(postfix.dir, 'queue', 'public', 'mailsubmit-cleanup'))).toBe(false);
    expect(existsSync(join(postfix.dir, 'queue', 'pid', 'unix.mailsubmit-cleanup'))).toBe(false);
    expect(existsSync(`${join(postfix.dir, 'master.cf')}.mailsubmit-backup`)).toBe(false);
    expect(existsSync(record)).toBe(false);
    expect((await listener('status')).code).toBe(1);
  });

  it('refuses an unknown command with its usage line', async () => {
    const wrong = await listener('install');
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toBe('postfix-listener: expected add, remove or status (see --help)\n');
  });
});
