/**
 * `mailsubmitctl status` and `mailsubmitctl reload` against a real
 * mailsubmitd (the built bundle, set-gid helper in front, a recording SMTP
 * sink as the MTA), found through the -c configuration's control_socket.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../test/support/free-port.ts';
import { MailsubmitUnderTest } from '../../../test/support/mailsubmit-under-test.ts';
import { RecordingSink } from '../../../test/support/recording-sink.ts';
import { tearDown } from '../../../test/support/tear-down.ts';
import { ensureUser, type TestUser } from '../../../test/support/test-accounts.ts';
import { ctl } from './run-ctl.ts';

const VERSION = (JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'submit-daemon', 'package.json'), 'utf8')) as { version: string }).version;

describe('mailsubmitctl status and reload', () => {
  const sink = new RecordingSink();
  let ms: MailsubmitUnderTest;
  let user: TestUser;
  let sinkPort: number;

  function editConfig(from: string, to: string): void {
    const text = readFileSync(ms.configPath, 'utf8');
    expect(text).toContain(from);
    writeFileSync(ms.configPath, text.replace(from, to), { mode: 0o644 });
  }

  beforeAll(async () => {
    sinkPort = await sink.listen();
    ms = await MailsubmitUnderTest.start({ downstreamPort: sinkPort, group: 'mstctldg', limits: 'max_recipients = 100' });
    user = ensureUser('mstctld');
    ms.setAuthorizations([user.name]);
  });

  afterAll(() => tearDown(ms, undefined, sink));

  it('status prints a readable summary of the running daemon', async () => {
    const submitted = await ms.submit(user, 'sender: <a@example.org>\nrecipient: <b@example.org>\n\nSubject: hi\n\nhello\n');
    expect(submitted.code).toBe(0);
    const { code, stdout, stderr } = ctl(['-c', ms.configPath, 'status']);
    expect(stderr).toBe('');
    const lines = stdout.split('\n');
    expect(lines[0]).toMatch(new RegExp(`^mailsubmitd ${VERSION.replace(/\./g, '\\.')}, pid ${ms.daemonPid}, up (\\d+[dhm] )*\\d+s \\(since \\d{4}-`));
    expect(stdout).toContain(`configuration:      ${ms.configPath} (log level debug)\n`);
    expect(stdout).toMatch(new RegExp(`authorization list: ${ms.authorizationList}, 1 entry, loaded \\d{4}-`));
    expect(stdout).toMatch(new RegExp(`downstream: +smtp 127\\.0\\.0\\.1:${sinkPort}: healthy; last success \\d{4}-`));
    expect(stdout).toContain('in flight:          0\n');
    expect(stdout).toContain('submissions:        1 (ok 1)\n');
    expect(stdout).toContain(`local queue:        ${ms.dir}/queue: empty\n`);
    expect(code).toBe(0);
  });

  it('status --json prints the daemon\'s reply', () => {
    const { code, stdout } = ctl(['-c', ms.configPath, 'status', '--json']);
    const status = JSON.parse(stdout) as { pid: number; in_flight: number; downstream: { description: string }; submissions: { total: number } };
    expect(status.pid).toBe(ms.daemonPid);
    expect(status.in_flight).toBe(0);
    expect(status.downstream.description).toBe(`smtp 127.0.0.1:${sinkPort}`);
    expect(status.submissions.total).toBeGreaterThanOrEqual(1);
    expect(code).toBe(0);
  });

  it('reload says what changed and what needs a restart (exit 0)', () => {
    editConfig('max_recipients = 100', 'max_recipients = 1');
    editConfig('install_mode = "setgid"', 'install_mode = "open"');
    const { code, stdout, stderr } = ctl(['-c', ms.configPath, 'reload']);
    expect(stderr).toBe('');
    expect(stdout).toBe(
      [
        `configuration ${ms.configPath}: reloaded; changed: limits.max_recipients`,
        '  changed, but in force only after a restart: daemon.install_mode',
        `authorization list ${ms.authorizationList}: reloaded, 1 entry`,
        '',
      ].join('\n'),
    );
    expect(code).toBe(0);
    editConfig('install_mode = "open"', 'install_mode = "setgid"');
  });

  it('the reloaded limit holds for the next submission', async () => {
    const two = await ms.submit(user, 'sender: <a@example.org>\nrecipient: <b@example.org>\nrecipient: <c@example.org>\n\nSubject: hi\n\n');
    expect(two.code).toBe(65);
    editConfig('max_recipients = 1', 'max_recipients = 100');
    const reload = ctl(['-c', ms.configPath, 'reload', '--json']);
    const report = JSON.parse(reload.stdout) as { config: { changed: string[]; restart_required: string[] } };
    expect(report.config.changed).toEqual(['limits.max_recipients']);
    expect(report.config.restart_required).toEqual([]);
    expect(reload.code).toBe(0);
  });

  it('reload exits 78 and says the running configuration stays when the file is bad', () => {
    editConfig('max_recipients = 100', 'max_recipients = 0');
    try {
      const { code, stderr } = ctl(['-c', ms.configPath, 'reload']);
      expect(stderr).toContain(`mailsubmitctl: configuration ${ms.configPath} not reloaded, the running configuration stays in force: `);
      expect(stderr).toContain('limits.max_recipients: expected a whole number from 1 to 100000');
      expect(code).toBe(78);
      // status still reaches the daemon through the broken file's control_socket, and warns.
      const status = ctl(['-c', ms.configPath, 'status']);
      expect(status.stderr).toMatch(/^mailsubmitctl: warning: .*limits\.max_recipients: expected a whole number .*a reload would refuse this file\)\n$/);
      expect(status.stdout).toContain(`pid ${ms.daemonPid}`);
      expect(status.code).toBe(0);
    } finally {
      editConfig('max_recipients = 0', 'max_recipients = 100');
    }
  });

  it('is for root: another user gets 77', () => {
    const { code, stderr } = ctl(['-c', ms.configPath, 'status'], user);
    expect(stderr).toMatch(/control\.sock \(EACCES\): the control socket is for root/);
    expect(code).toBe(77);
  });

  it('status names a hand edit of the list that cannot be used; submissions get 75 until it is fixed', async () => {
    const submit = () => ms.submit(user, 'sender: <a@example.org>\nrecipient: <b@example.org>\n\nSubject: hi\n\nhello\n');
    ms.setAuthorizations([user.name, 'mstnobody clinet']);
    try {
      const refused = await submit();
      expect(refused.code).toBe(75);
      const { code, stdout } = ctl(['-c', ms.configPath, 'status']);
      expect(stdout).toContain(
        `authorization list: INVALID: ${ms.authorizationList}:2: unknown capability "clinet" (known: client, sasl, tls, queue, sender=any|own|PATTERNS) (fix it; submissions get 75 until then)\n`,
      );
      expect(code).toBe(0);
      const json = JSON.parse(ctl(['-c', ms.configPath, 'status', '--json']).stdout) as { authorization_list: { invalid: string | null } };
      expect(json.authorization_list.invalid).toBe(`${ms.authorizationList}:2: unknown capability "clinet" (known: client, sasl, tls, queue, sender=any|own|PATTERNS)`);
    } finally {
      ms.setAuthorizations([user.name]);
    }
    expect((await submit()).code).toBe(0);
    const fixed = ctl(['-c', ms.configPath, 'status', '--json']);
    expect((JSON.parse(fixed.stdout) as { authorization_list: { invalid: string | null } }).authorization_list.invalid).toBeNull();
    expect(ctl(['-c', ms.configPath, 'status']).stdout).toMatch(new RegExp(`authorization list: ${ms.authorizationList}, 1 entry, loaded `));
  });

  it('status shows a caller\'s bidi override escaped, in text and in --json', async () => {
    ms.setAuthorizations([`${user.name} sender=*@example.org`]);
    try {
      const refused = await ms.submit(user, 'sender: <gro.elpmaxe\u202e@evil.example>\nrecipient: <b@example.org>\n\nSubject: hi\n\nhello\n');
      expect(refused.code).toBe(77);
    } finally {
      ms.setAuthorizations([user.name]);
    }
    const text = ctl(['-c', ms.configPath, 'status']).stdout;
    expect(text).toContain('attribute-not-permitted: not permitted to assert this attribute: attribute "sender": may not use the envelope sender <gro.elpmaxe\\u202e@evil.example>');
    expect(text).not.toMatch(/[\u202e\u001b]/);
    const json = ctl(['-c', ms.configPath, 'status', '--json']).stdout;
    expect(json).not.toContain('\u202e');
    expect(json).toContain('\\u202e');
    // The line carries a JSON escape; a program reading it gets the value as it was.
    const parsed = JSON.parse(json) as { last_errors: { text: string }[] };
    expect(parsed.last_errors.at(-1)?.text).toContain('gro.elpmaxe\u202e@evil.example');
  });

  it('allow refuses a sender pattern the list could not hold, and leaves the file as it was', () => {
    const before = readFileSync(ms.authorizationList, 'utf8');
    for (const pattern of ['*@exampl\u212a.com', '*@exa\u202emple.com', '*@xn--.com', 'a,,b']) {
      const { code, stderr } = ctl(['-c', ms.configPath, 'allow', 'mstnobody', `sender=${pattern}`]);
      expect(code).toBe(64);
      expect(stderr).toMatch(/^mailsubmitctl: /);
      expect(stderr).not.toContain('\u202e');
    }
    expect(readFileSync(ms.authorizationList, 'utf8')).toBe(before);
    const allowed = ctl(['-c', ms.configPath, 'allow', 'mstnobody', 'sender=*@B\u00fccher.example,*@XN--BCHER-KVA.example']);
    expect(allowed.stdout).toBe('allowed: mstnobody sender=*@B\u00fccher.example,*@XN--BCHER-KVA.example\n');
    expect(allowed.code).toBe(0);
    ms.setAuthorizations([user.name]);
  });

  it('status shows the local queue: its directory, how many wait and are held, their size, the oldest; --json the same', async () => {
    ms.setAuthorizations([`${user.name} queue`]);
    sink.replies = { 'data-end': '451 4.3.0 try again later' };
    try {
      const queued = await ms.submit(user, 'sender: <a@example.org>\nrecipient: <b@example.org>\n\nSubject: waits\n\nhello\n');
      expect(queued.code).toBe(0);
      const text = ctl(['-c', ms.configPath, 'status']);
      expect(text.stdout).toMatch(new RegExp(`\nlocal queue: +${ms.dir}/queue: 1 message, 1 KB, oldest (\\d+[dhm] )*\\d+s \\(mailsubmitctl queue list\\)\n`));
      expect(text.code).toBe(0);
      const json = JSON.parse(ctl(['-c', ms.configPath, 'status', '--json']).stdout) as { local_queue: Record<string, unknown> };
      expect(json.local_queue).toEqual({ directory: `${ms.dir}/queue`, messages: 1, octets: expect.any(Number), held: 0, oldest_arrival: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
      const listed = JSON.parse(ctl(['-c', ms.configPath, 'queue', 'list', '--json']).stdout) as { messages: { id: string; size: number }[] };
      expect(json.local_queue.octets).toBe(listed.messages[0]?.size);
      const id = listed.messages[0]?.id as string;
      expect(ctl(['-c', ms.configPath, 'queue', 'hold', id]).code).toBe(0);
      expect(ctl(['-c', ms.configPath, 'status']).stdout).toMatch(new RegExp(`\nlocal queue: +${ms.dir}/queue: 1 message \\(1 held\\), 1 KB, oldest `));
      expect(ctl(['-c', ms.configPath, 'queue', 'delete', '--yes', id]).code).toBe(0);
      expect(ctl(['-c', ms.configPath, 'status']).stdout).toContain(`local queue:        ${ms.dir}/queue: empty\n`);
    } finally {
      sink.replies = {};
      ms.setAuthorizations([user.name]);
    }
  });

  it('status lists each of several downstreams with its health; one that cannot be reached is unhealthy, the other takes the mail', async () => {
    const closedPort = await freePort();
    const single = `[downstream]\ntarget = "127.0.0.1:${sinkPort}"`;
    const several = `[[downstream]]\nname = "gone"\ntarget = "127.0.0.1:${closedPort}"\npriority = 1\n[[downstream]]\nname = "sink"\ntarget = "127.0.0.1:${sinkPort}"\npriority = 2`;
    editConfig(single, several);
    expect(ctl(['-c', ms.configPath, 'reload']).code).toBe(0);
    expect((await ms.submit(user, 'sender: <a@example.org>\nrecipient: <b@example.org>\n\nSubject: two\n\nvia the second\n')).code).toBe(0);
    const { code, stdout } = ctl(['-c', ms.configPath, 'status']);
    expect(stdout).toMatch(/^downstream: +2 downstreams: healthy; /m);
    expect(stdout).toMatch(new RegExp(`^  gone \\(smtp 127\\.0\\.0\\.1:${closedPort}\\), priority 1, weight 1: UNHEALTHY \\(probed until it answers\\); last success never; last error \\S+ mta-unreachable: .*ECONNREFUSED`, 'm'));
    expect(stdout).toMatch(new RegExp(`^  sink \\(smtp 127\\.0\\.0\\.1:${sinkPort}\\), priority 2, weight 1: healthy; last success \\d{4}-`, 'm'));
    expect(code).toBe(0);
    const json = JSON.parse(ctl(['-c', ms.configPath, 'status', '--json']).stdout) as { downstreams: { name: string; healthy: boolean }[] };
    expect(json.downstreams.map((d) => [d.name, d.healthy])).toEqual([['gone', false], ['sink', true]]);
    editConfig(several, single);
    expect(ctl(['-c', ms.configPath, 'reload']).code).toBe(0);
  });

  it('says the daemon is not running, exit 75, once it has stopped', async () => {
    await ms.stopDaemon();
    const status = ctl(['-c', ms.configPath, 'status']);
    expect(status.stderr).toBe(`mailsubmitctl: mailsubmitd is not running: nothing answers on ${ms.controlSocketPath} (ENOENT)\n`);
    expect(status.code).toBe(75);
    expect(ctl(['-c', ms.configPath, 'reload']).code).toBe(75);
  });
});
