/**
 * Socket activation: the daemon takes the submission socket systemd passes
 * (sd_listen_fds(3)) instead of making one, as under mailsubmitd.socket.
 * Here systemd's own systemd-socket-activate holds the socket and starts the
 * daemon at the first connection, which then waits in the socket's backlog
 * and is served: the caller hears 0 and Postfix has the message. The daemon
 * leaves the socket file to its giver when it stops. A socket that is not
 * the configuration's (a stream socket, or a file with more access than
 * daemon.socket_mode) is refused with 78, naming the fix.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childOutput } from '../support/child-output.ts';
import { collectLogLines } from '../support/daemon-log.ts';
import { startMailPath } from '../support/mail-path.ts';
import type { MailsubmitUnderTest } from '../support/mailsubmit-under-test.ts';
import { PrivatePostfix } from '../support/private-postfix.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import { tearDown } from '../support/tear-down.ts';
import { ensureUser, idOf, type TestUser } from '../support/test-accounts.ts';
import { until } from '../support/until.ts';

const DAEMON_BUNDLE = join(import.meta.dirname, '..', '..', 'packages', 'submit-daemon', 'dist', 'mailsubmitd.mjs');
const SOCKET_ACTIVATE = '/usr/bin/systemd-socket-activate';

/**
 * systemd-socket-activate holding the configuration's socket, with the
 * daemon to start at the first connection. Resolves once the socket file is
 * there, given the test's group and `mode` (as SocketGroup= and SocketMode=
 * do).
 */
async function activated(ms: MailsubmitUnderTest, options: { mode: number; stream?: boolean }): Promise<{ child: ChildProcess; logLines: Record<string, unknown>[] }> {
  rmSync(ms.socketPath, { force: true });
  const kind = options.stream === true ? [] : ['--seqpacket'];
  const child = spawn(SOCKET_ACTIVATE, [...kind, '-l', ms.socketPath, process.execPath, DAEMON_BUNDLE, '-c', ms.configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  const logLines: Record<string, unknown>[] = [];
  collectLogLines(child.stdout, logLines);
  await until(() => existsSync(ms.socketPath), 'systemd-socket-activate made the socket');
  chownSync(ms.socketPath, 0, idOf('group', ms.group));
  chmodSync(ms.socketPath, options.mode);
  return { child, logLines };
}

describe.skipIf(!PrivatePostfix.isAvailable() || !existsSync(SOCKET_ACTIVATE))('the submission socket from systemd', () => {
  const sink = new RecordingSink();
  let postfix: PrivatePostfix;
  let ms: MailsubmitUnderTest;
  let alice: TestUser;

  beforeAll(async () => {
    ({ postfix, ms } = await startMailPath(sink));
    alice = ensureUser('mstsockact');
    ms.setAuthorizations(['mstsockact']);
    // The daemon of the mail path makes its own socket; these tests start it through systemd's tool.
    await ms.stopDaemon();
  }, 60_000);

  afterAll(() => tearDown(ms, postfix, sink));

  it("serves the caller whose connection started it, and leaves the socket file to systemd's tool", async () => {
    const { child, logLines } = await activated(ms, { mode: 0o660 });
    const result = await ms.submit(alice, 'sender: <a@example.org>\nrecipient: <b@example.org>\n\nSubject: activated\n\nhello\n', ['-v']);
    expect(result.stderr).toMatch(/^mailsubmit: queued as [0-9A-F]+\n$/);
    expect(result.code).toBe(0);
    const [message] = await sink.waitForMessages(1);
    expect(message?.data.toString()).toContain('Subject: activated');
    expect(logLines.find((line) => line.msg === 'mailsubmitd started')).toMatchObject({ socket: ms.socketPath, socket_from: 'systemd' });

    child.kill('SIGTERM');
    const { code } = await childOutput(child);
    expect(code).toBe(0);
    expect(existsSync(ms.socketPath)).toBe(true);
  });

  it('refuses a socket file that gives others more than daemon.socket_mode, with 78', async () => {
    const { child } = await activated(ms, { mode: 0o666 });
    const attempt = ms.submit(alice, 'sender: <a@example.org>\nrecipient: <b@example.org>\n\nx\n');
    const { code, stderr } = await childOutput(child);
    expect(code).toBe(78);
    expect(stderr).toContain(`the socket systemd passed (${ms.socketPath}) is mode 0666, more than 0660: set SocketMode= and SocketGroup= in mailsubmitd.socket`);
    expect((await attempt).code).toBe(75);
  });

  it('refuses a socket that is not a SOCK_SEQPACKET one, with 78', async () => {
    const { child } = await activated(ms, { mode: 0o660, stream: true });
    const probe = connect(ms.socketPath).on('error', () => undefined);
    const { code, stderr } = await childOutput(child);
    probe.destroy();
    expect(code).toBe(78);
    expect(stderr).toMatch(/daemon\.socket: systemd passed adopt EINVAL: fd 3, which should be a listening SOCK_SEQPACKET socket at \S+: ListenSequentialPacket= in mailsubmitd\.socket must name this path/);
  });
});
