/**
 * The control socket of a real mailsubmitd (the built bundle, as a child
 * process, with the set-gid helper in front and a recording SMTP sink as
 * the MTA): the protocol, status, reload by request and by SIGHUP, and a
 * reload while a submission is in flight.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAEMON_BUNDLE, MailsubmitUnderTest } from '../../../../test/support/mailsubmit-under-test.ts';
import { freePort } from '../../../../test/support/free-port.ts';
import { RecordingSink } from '../../../../test/support/recording-sink.ts';
import { ensureUser, removeAll, type TestUser } from '../../../../test/support/test-accounts.ts';
import { ask, askRaw, reload, status, waitForStatus } from './ask-control.ts';

const VERSION = (JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;

function submission(body: string): string {
  return `sender: <sender@example.org>\nrecipient: <rcpt@example.org>\n\nSubject: control test\n\n${body}`;
}

describe('mailsubmitd control socket', () => {
  const sink = new RecordingSink();
  let ms: MailsubmitUnderTest;
  let user: TestUser;
  let sinkPort: number;
  let control: string;

  /** Rewrites the daemon's configuration file; each `from` must be there. */
  function editConfig(...replacements: [string, string][]): void {
    let text = readFileSync(ms.configPath, 'utf8');
    for (const [from, to] of replacements) {
      expect(text).toContain(from);
      text = text.replace(from, to);
    }
    writeFileSync(ms.configPath, text, { mode: 0o644 });
  }

  beforeAll(async () => {
    sinkPort = await sink.listen();
    ms = await MailsubmitUnderTest.start({
      downstreamPort: sinkPort,
      group: 'mstctlsrvg',
      limits: 'max_message_size = 1000000',
      timeouts: 'command = 60',
    });
    control = ms.controlSocketPath;
    user = ensureUser('mstctlsrv');
    ms.setAuthorizations([`${user.name} client`]);
  });

  afterAll(async () => {
    await ms?.stop();
    await sink.close();
    removeAll();
  });

  it('is a socket only its owner (the daemon\'s user) and root can use: mode 0600', () => {
    const stats = statSync(control);
    expect(stats.isSocket()).toBe(true);
    expect(stats.mode & 0o7777).toBe(0o600);
    expect(stats.uid).toBe(process.getuid?.());
  });

  it('answers status with the daemon\'s identity, configuration and state', async () => {
    const current = await status(control);
    expect(current.version).toBe(VERSION);
    expect(current.pid).toBe(ms.daemonPid);
    expect(current.config_path).toBe(ms.configPath);
    expect(current.log_level).toBe('debug');
    expect(current.in_flight).toBe(0);
    expect(current.uptime_s).toBeGreaterThanOrEqual(0);
    expect(Date.parse(current.started_at)).toBeLessThanOrEqual(Date.now());
    expect(current.downstream.description).toBe(`smtp 127.0.0.1:${sinkPort}`);
    expect(current.authorization_list.path).toBe(ms.authorizationList);
    expect(current.local_queue).toEqual({ directory: join(ms.dir, 'queue'), messages: 0, octets: 0, held: 0, oldest_arrival: null });
  });

  it('counts submissions by outcome and records the downstream\'s last success', async () => {
    const before = await status(control);
    expect((await ms.submit(user, submission('one\n'))).code).toBe(0);
    expect((await ms.submit(user, 'sender: <a@example.org>\nrecipient: <>\n\nSubject: x\n\n')).code).toBe(65);
    const after = await status(control);
    expect(after.submissions.total).toBe(before.submissions.total + 2);
    expect(after.submissions.by_outcome.ok).toBe((before.submissions.by_outcome.ok ?? 0) + 1);
    expect(after.submissions.by_outcome['recipient-syntax']).toBe((before.submissions.by_outcome['recipient-syntax'] ?? 0) + 1);
    expect(after.downstream.healthy).toBe(true);
    expect(after.downstream.last_success_at).not.toBeNull();
    expect(after.last_errors.at(-1)?.outcome).toBe('recipient-syntax');
    // The authorization list was re-read on the connection after setAuthorizations.
    expect(after.authorization_list.entries).toBe(1);
    expect(after.authorization_list.loaded_at).not.toBeNull();
  });

  it.each([
    ['an unknown command', '{"command":"stats"}\n', /^unknown command "stats" \(known: status, reload, queue-list, queue-show, queue-flush, queue-hold, queue-release, queue-delete, queue-requeue\)$/],
    ['a request without a command', '{"verb":"status"}\n', /no "command"/],
    ['a protocol version it does not speak', '{"protocol":2,"command":"status"}\n', /protocol 2 is not known/],
    ['a line that is not JSON', 'status\n', /not a JSON object/],
    ['a JSON array', '["status"]\n', /not a JSON object/],
    ['a request longer than 4096 octets', `{"command":"${'x'.repeat(5000)}"}\n`, /one line of at most 4096 octets/],
  ])('refuses %s with an error reply', async (_what, request, message) => {
    const reply = JSON.parse(await askRaw(control, request)) as { ok: boolean; error: string; protocol: number };
    expect(reply.ok).toBe(false);
    expect(reply.protocol).toBe(1);
    expect(reply.error).toMatch(message);
  });

  it('answers a client that shuts down its side after a request without a newline', async () => {
    const reply = JSON.parse(await askRaw(control, '{"command":"status"}', true)) as { ok: boolean; status: { pid: number } };
    expect(reply.ok).toBe(true);
    expect(reply.status.pid).toBe(ms.daemonPid);
    expect(await askRaw(control, '', true)).toBe('');
  });

  it('reloads the configuration: applies limits, timeouts and the log level, names what needs a restart', async () => {
    editConfig(
      ['max_message_size = 1000000', 'max_message_size = 200'],
      ['command = 60', 'command = 30'],
      ['log_level = "debug"', 'log_level = "info"'],
      [`control_socket = "${control}"`, `control_socket = "${join(ms.dir, 'run', 'elsewhere.sock')}"`],
    );
    const report = await reload(control);
    expect(report.config.reloaded).toBe(true);
    expect(report.config.error).toBeNull();
    expect([...report.config.changed].sort()).toEqual(['daemon.log_level', 'limits.max_message_size', 'timeouts.command']);
    expect(report.config.restart_required).toEqual(['daemon.control_socket']);
    expect(report.authorization_list).toMatchObject({ reloaded: true, error: null, entries: 1, path: ms.authorizationList });
    expect((await status(control)).log_level).toBe('info');
    // The new limit holds for the next submission.
    const big = await ms.submit(user, submission(`${'x'.repeat(300)}\n`));
    expect(big.stderr).toMatch(/over a configured limit/);
    expect(big.code).toBe(65);
    // The control socket did not move: that needs a restart.
    expect((await status(control)).pid).toBe(ms.daemonPid);
    editConfig([`control_socket = "${join(ms.dir, 'run', 'elsewhere.sock')}"`, `control_socket = "${control}"`]);
    const back = await reload(control);
    expect(back.config.changed).toEqual([]);
    expect(back.config.restart_required).toEqual([]);
  });

  it('keeps the running configuration when the file is bad, and says why', async () => {
    editConfig(['max_message_size = 200', 'max_message_size = "big"']);
    const report = await reload(control);
    expect(report.config.reloaded).toBe(false);
    expect(report.config.error).toMatch(/limits\.max_message_size: expected a whole number/);
    expect(report.config.changed).toEqual([]);
    expect(report.authorization_list.reloaded).toBe(true);
    const big = await ms.submit(user, submission(`${'x'.repeat(300)}\n`));
    expect(big.code).toBe(65);
    editConfig(['max_message_size = "big"', 'max_message_size = 1000000']);
    expect((await reload(control)).config.changed).toEqual(['limits.max_message_size']);
  });

  it('fails closed when the new authorization list is malformed: 75 for everyone until it is fixed, shown by status', async () => {
    ms.setAuthorizations([`${user.name} client`, 'uid:1 flying']);
    const report = await reload(control);
    expect(report.authorization_list.reloaded).toBe(false);
    expect(report.authorization_list.error).toBe(`${ms.authorizationList}:2: unknown capability "flying" (known: client, sasl, tls, queue, sender=any|own|PATTERNS)`);
    expect(report.authorization_list.entries).toBe(1);
    const refused = await ms.submit(user, submission('not now\n'));
    expect(refused.stderr).toMatch(/^mailsubmit: the authorization list cannot be used until it is fixed: /);
    expect(refused.code).toBe(75);
    expect((await status(control)).authorization_list.invalid).toBe(report.authorization_list.error);
    ms.setAuthorizations([`${user.name} client`]);
    expect((await reload(control)).authorization_list.reloaded).toBe(true);
    expect((await status(control)).authorization_list.invalid).toBeNull();
    expect((await ms.submit(user, submission('allowed again\n'))).code).toBe(0);
  });

  it('does the same reload on SIGHUP', async () => {
    editConfig(['log_level = "info"', 'log_level = "warn"']);
    process.kill(ms.daemonPid as number, 'SIGHUP');
    const reloaded = await waitForStatus(control, (s) => s.log_level === 'warn');
    expect(reloaded.pid).toBe(ms.daemonPid);
    editConfig(['log_level = "warn"', 'log_level = "debug"']);
    expect((await reload(control)).config.changed).toEqual(['daemon.log_level']);
  });

  it('records a downstream failure and a recovery, following a reload of downstream.target', async () => {
    const closedPort = await freePort();
    editConfig([`target = "127.0.0.1:${sinkPort}"`, `target = "127.0.0.1:${closedPort}"`]);
    expect((await reload(control)).config.changed).toEqual(['downstream.target']);
    const failed = await ms.submit(user, submission('to nowhere\n'));
    expect(failed.code).toBe(75);
    const broken = await status(control);
    expect(broken.downstream.description).toBe(`smtp 127.0.0.1:${closedPort}`);
    expect(broken.downstream.healthy).toBe(false);
    expect(broken.downstream.last_error?.outcome).toBe('mta-unreachable');
    expect(broken.downstream.last_error?.text).toMatch(/ECONNREFUSED/);
    editConfig([`target = "127.0.0.1:${closedPort}"`, `target = "127.0.0.1:${sinkPort}"`]);
    await reload(control);
    expect((await ms.submit(user, submission('back again\n'))).code).toBe(0);
    const healed = await status(control);
    expect(healed.downstream.healthy).toBe(true);
    expect(healed.downstream.last_error?.outcome).toBe('mta-unreachable');
  });

  it('lets a submission in flight finish under the configuration it was admitted with', async () => {
    const before = sink.messages.length;
    const body = `${'slow line\n'.repeat(50)}`;
    const open = ms.startSubmission(user);
    open.write(submission('first part\n'));
    await waitForStatus(control, (s) => s.in_flight === 1);
    editConfig(['max_message_size = 1000000', 'max_message_size = 200'], ['command = 30', 'command = 20']);
    const report = await reload(control);
    expect([...report.config.changed].sort()).toEqual(['limits.max_message_size', 'timeouts.command']);
    const result = await open.end(body);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const [message] = (await sink.waitForMessages(before + 1)).slice(before);
    expect(message?.data.toString('latin1')).toContain(`first part\r\n${body.replace(/\n/g, '\r\n')}`);
    // The same message now is over the reloaded limit.
    const again = await ms.submit(user, submission(`first part\n${body}`));
    expect(again.code).toBe(65);
    editConfig(['max_message_size = 200', 'max_message_size = 1000000']);
    await reload(control);
  });

  it('refuses to start a second daemon on a control socket that answers', () => {
    const other = join(ms.dir, 'second.conf');
    const text = readFileSync(ms.configPath, 'utf8').replace(ms.socketPath, join(ms.dir, 'run', 'second.sock'));
    writeFileSync(other, text, { mode: 0o644 });
    const second = spawnSync(process.execPath, [DAEMON_BUNDLE, '-c', other], { encoding: 'utf8', timeout: 20_000 });
    expect(second.stderr).toMatch(/daemon\.control_socket: cannot listen on .*control\.sock: another process .* answers on it/);
    expect(second.status).toBe(78);
  });

  it('replaces the control socket a killed daemon left behind', async () => {
    const oldPid = ms.daemonPid;
    await ms.stopDaemon('SIGKILL');
    expect(statSync(control).isSocket()).toBe(true);
    await ms.startDaemon();
    const current = await waitForStatus(control, (s) => s.pid !== oldPid);
    expect(current.pid).toBe(ms.daemonPid);
    expect(current.submissions.total).toBe(0);
  });
});

describe('mailsubmitd control socket at stop', () => {
  it('is removed when the daemon stops in order', async () => {
    const sink = new RecordingSink();
    const ms = await MailsubmitUnderTest.start({ downstreamPort: await sink.listen(), group: 'mstctlsrvg' });
    try {
      expect((await ask(ms.controlSocketPath, { command: 'status' })).ok).toBe(true);
      expect(await ms.stopDaemon('SIGTERM')).toBe(0);
      expect(() => statSync(ms.controlSocketPath)).toThrow(/ENOENT/);
    } finally {
      await ms.stop();
      await sink.close();
      removeAll();
    }
  });
});
