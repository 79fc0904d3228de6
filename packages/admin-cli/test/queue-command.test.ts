/**
 * `mailsubmitctl queue ...`, the built command, against a control socket
 * that has the daemon's real ControlServer behind it and a queue in memory
 * (packages/submit-daemon/test/support/fake-queue-daemon.ts, its own
 * process): the mailq layout, --json, the exit codes, the confirmation of
 * delete, and the example of mailsubmitctl(8), word for word.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMAND, type CtlResult } from './run-ctl.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
const FAKE_DAEMON = join(ROOT, 'packages', 'submit-daemon', 'test', 'support', 'fake-queue-daemon.ts');
const MAN_PAGE = join(ROOT, 'docs', 'man', 'mailsubmitctl.8.md');

const DEFERRED = '0TPLIWVCL8B-1A1BI';
const HELD = '0TPLJ2Q6A4F-1A1C3';
const ACTIVE = '0TPLJ9ZR0K2-1A1C8';
const ABSENT = '0TPLJ9ZR0K2-ZZZZ';

/** The fake daemon's process, its configuration for -c, and what it logged. */
interface FakeDaemon {
  readonly child: ChildProcess;
  readonly config: string;
  log: string;
}

let dir: string;
const daemons: FakeDaemon[] = [];

async function startFakeDaemon(name: string, contents: 'sample' | 'empty' | 'none'): Promise<FakeDaemon> {
  const socket = join(dir, `${name}.sock`);
  const config = join(dir, `${name}.conf`);
  writeFileSync(config, `[daemon]\ncontrol_socket = "${socket}"\n`, { mode: 0o644 });
  const child = spawn(TSX, [FAKE_DAEMON, socket, contents], { stdio: ['ignore', 'pipe', 'pipe'] });
  const daemon: FakeDaemon = { child, config, log: '' };
  daemons.push(daemon);
  child.stderr?.on('data', (chunk: Buffer) => (daemon.log += chunk.toString('utf8')));
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => chunk.toString('utf8').includes('listening') && resolve());
    child.once('exit', (code) => reject(new Error(`the fake daemon exited ${code}: ${daemon.log}`)));
  });
  return daemon;
}

/**
 * The built mailsubmitctl, asynchronously (the test's own process is not the
 * daemon here, but the wait must not block its output), in UTC, with
 * `input` on a pipe, or, with `terminal`, inside script(1) on a pseudo-terminal.
 */
function ctl(daemon: FakeDaemon, args: readonly string[], options: { input?: string; terminal?: boolean } = {}): Promise<CtlResult> {
  const argv = [COMMAND, '-c', daemon.config, ...args];
  const [file, fileArgs] = options.terminal
    ? ['script', ['-qec', argv.map((a) => `'${a}'`).join(' '), '/dev/null']]
    : [argv[0] as string, argv.slice(1)];
  const child = spawn(file, fileArgs as string[], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', TZ: 'UTC', TERM: 'dumb' } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  child.stdin.end(options.input ?? '');
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

async function listed(daemon: FakeDaemon): Promise<{ id: string; state: string; attempts: number }[]> {
  const { stdout, code } = await ctl(daemon, ['queue', 'list', '--json']);
  expect(code).toBe(0);
  return (JSON.parse(stdout) as { messages: { id: string; state: string; attempts: number }[] }).messages.map(({ id, state, attempts }) => ({ id, state, attempts }));
}

/** The control server's log lines of changes to the queue: command and ids. */
function changesLogged(daemon: FakeDaemon): [string, string[]][] {
  return daemon.log
    .split('\n')
    .filter((line) => line.includes('"queue changed by an administrator"'))
    .map((line) => JSON.parse(line) as { command: string; ids: string[] })
    .map(({ command, ids }) => [command, ids]);
}

/** The transcript of mailsubmitctl(8) that starts with `command`: its output lines. */
function manPageExample(command: string): string {
  const text = readFileSync(MAN_PAGE, 'utf8');
  const start = text.indexOf(`\`\`\`\n# ${command}\n`);
  expect(start, `mailsubmitctl(8) shows # ${command}`).toBeGreaterThan(-1);
  const body = text.slice(start + `\`\`\`\n# ${command}\n`.length);
  return body.slice(0, body.indexOf('```\n'));
}

beforeAll(() => {
  dir = mkdtempSync('/tmp/mailsubmitctl-queue-');
  chmodSync(dir, 0o755);
});

afterAll(() => {
  for (const { child } of daemons) child.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

describe('mailsubmitctl queue, reading', () => {
  let daemon: FakeDaemon;
  beforeAll(async () => {
    daemon = await startFakeDaemon('reading', 'sample');
  });

  it('list prints the queue as mailq does, as mailsubmitctl(8) shows it', async () => {
    const { code, stdout, stderr } = await ctl(daemon, ['queue', 'list']);
    expect(stderr).toBe('');
    expect(stdout).toBe(
      [
        '-Queue ID-         --Size-- ----Arrival Time---- -Sender/Recipient-',
        '0TPLIWVCL8B-1A1BI      2154 Sun Dec  6 06:57:55  backup@example.org',
        '(451 4.3.0 Error: queue file write error)',
        '                                                 ops@example.org',
        '                                                 archive@example.org',
        '',
        '0TPLJ2Q6A4F-1A1C3!    18433 Sun Dec  6 09:20:00  www-data@example.org',
        '(connect to 127.0.0.1:25: Connection refused)',
        '                                                 customer@example.net',
        '',
        '0TPLJ9ZR0K2-1A1C8*     1102 Sun Dec  6 09:58:30  MAILER-DAEMON',
        '                                                 backup@example.org',
        '',
        '-- 21 Kbytes in 3 Requests.',
        '',
      ].join('\n'),
    );
    expect(code).toBe(0);
    expect(manPageExample('mailsubmitctl queue list')).toBe(stdout);
  });

  it('list --json prints every message and the totals', async () => {
    const { code, stdout } = await ctl(daemon, ['queue', 'list', '--json']);
    const reply = JSON.parse(stdout) as { messages: { id: string; state: string; last_error: string | null; recipients: string[] }[]; summary: unknown };
    expect(reply.messages.map((m) => [m.id, m.state])).toEqual([[DEFERRED, 'deferred'], [HELD, 'held'], [ACTIVE, 'active']]);
    expect(reply.messages[0]?.recipients).toEqual(['ops@example.org', 'archive@example.org']);
    expect(reply.messages[1]?.last_error).toBe('connect to 127.0.0.1:25: Connection refused');
    expect(reply.summary).toEqual({ messages: 3, octets: 21_689, held: 1, oldest_arrival: '2026-12-06T06:57:55.000Z' });
    expect(code).toBe(0);
  });

  it('show prints the message\'s state, envelope and text', async () => {
    const { code, stdout, stderr } = await ctl(daemon, ['queue', 'show', DEFERRED]);
    expect(stderr).toBe('');
    expect(stdout).toBe(
      [
        `queue id:   ${DEFERRED} (deferred)`,
        'arrival:    2026-12-06T06:57:55.000Z, 3h 2m 5s ago',
        'size:       2154 octets',
        'caller:     uid 34 (backup), sendmail front door',
        'attempts:   4, next 2026-12-06T10:10:00.000Z',
        'last error: 451 4.3.0 Error: queue file write error',
        '',
        'sender: <backup@example.org>',
        'recipient: <ops@example.org>',
        'recipient: <archive@example.org>',
        '',
        'Subject: nightly backup',
        '',
        'All 12 volumes copied.',
        '',
      ].join('\n'),
    );
    expect(code).toBe(0);
  });

  it('show --json prints the daemon\'s reply', async () => {
    const { code, stdout } = await ctl(daemon, ['queue', 'show', ACTIVE, '--json']);
    const detail = JSON.parse(stdout) as { listing: { id: string; sender: string; front_door: string }; envelope: string[]; truncated: boolean };
    expect(detail.listing).toMatchObject({ id: ACTIVE, sender: '', front_door: 'notice' });
    expect(detail.envelope).toEqual(['sender: <>', 'recipient: <backup@example.org>']);
    expect(detail.truncated).toBe(false);
    expect(code).toBe(0);
  });

  it.each([
    ['show', ABSENT],
    ['hold', ABSENT],
    ['delete', ABSENT, '--yes'],
    ['flush', ABSENT],
  ])('%s of an id the queue does not hold: 66, saying so', async (...args) => {
    const { code, stdout, stderr } = await ctl(daemon, ['queue', ...args]);
    expect(stderr).toBe(`mailsubmitctl: no message ${ABSENT} in the local queue\n`);
    expect(stdout).toBe('');
    expect(code).toBe(66);
  });

  it.each([
    ['show', '0tpliwvcl8b-1a1bi'],
    ['hold', '../queue/ready/x'],
    ['release', `${DEFERRED}\u202e`],
  ])('%s %s: not a queue id, 64 before anything is asked', async (command, id) => {
    const before = daemon.log;
    const { code, stderr } = await ctl(daemon, ['queue', command, id]);
    expect(stderr).toMatch(/^mailsubmitctl: not a queue id: \S+ \(queue list prints them, such as 0TPLIWVCL8B-1A1BI\)\n$/);
    expect(stderr).not.toContain('\u202e');
    expect(code).toBe(64);
    expect(daemon.log).toBe(before);
  });

  it('a command without its id is a usage error (64)', async () => {
    for (const command of ['show', 'hold', 'release', 'delete']) expect((await ctl(daemon, ['queue', command])).code).toBe(64);
  });
});

describe('mailsubmitctl queue, changing', () => {
  let daemon: FakeDaemon;
  beforeAll(async () => {
    daemon = await startFakeDaemon('changing', 'sample');
  });

  it('hold and release: one line each, the state changed, the change in the daemon\'s log', async () => {
    const hold = await ctl(daemon, ['queue', 'hold', DEFERRED]);
    expect([hold.stdout, hold.stderr, hold.code]).toEqual([`held: ${DEFERRED}\n`, '', 0]);
    expect((await listed(daemon)).find((m) => m.id === DEFERRED)?.state).toBe('held');
    const list = await ctl(daemon, ['queue', 'list']);
    expect(list.stdout).toContain(`${DEFERRED}!     2154 Sun Dec  6 06:57:55  backup@example.org\n`);
    const release = await ctl(daemon, ['queue', 'release', DEFERRED]);
    expect([release.stdout, release.code]).toEqual([`released: ${DEFERRED}\n`, 0]);
    expect((await listed(daemon)).find((m) => m.id === DEFERRED)?.state).toBe('due');
    expect(changesLogged(daemon)).toEqual([['queue-hold', [DEFERRED]], ['queue-release', [DEFERRED]]]);
  });

  it('flush and requeue without an id act on every message not held, one line each', async () => {
    const flush = await ctl(daemon, ['queue', 'flush']);
    expect([flush.stdout, flush.code]).toEqual([`flushed: ${DEFERRED}\nflushed: ${ACTIVE}\n`, 0]);
    const requeue = await ctl(daemon, ['queue', 'requeue']);
    expect([requeue.stdout, requeue.code]).toEqual([`requeued: ${DEFERRED}\nrequeued: ${ACTIVE}\n`, 0]);
    expect((await listed(daemon)).find((m) => m.id === DEFERRED)?.attempts).toBe(0);
    const one = await ctl(daemon, ['queue', 'flush', HELD]);
    expect([one.stdout, one.code]).toEqual([`flushed: ${HELD}\n`, 0]);
  });

  it('the queue\'s refusal is the message, exit 75: the message is being delivered', async () => {
    const { code, stdout, stderr } = await ctl(daemon, ['queue', 'delete', '--yes', ACTIVE]);
    expect(stderr).toBe(`mailsubmitctl: message ${ACTIVE} is being delivered now; hold it, then delete it\n`);
    expect(stdout).toBe('');
    expect(code).toBe(75);
    expect((await listed(daemon)).map((m) => m.id)).toContain(ACTIVE);
  });

  it('delete without --yes and without a terminal refuses: 64, naming --yes; nothing deleted', async () => {
    const { code, stdout, stderr } = await ctl(daemon, ['queue', 'delete', DEFERRED], { input: 'y\n' });
    expect(stderr).toBe(`mailsubmitctl: delete ${DEFERRED}: standard input is not a terminal to confirm on; add --yes\n`);
    expect(stdout).toBe('');
    expect(code).toBe(64);
    expect((await listed(daemon)).map((m) => m.id)).toContain(DEFERRED);
  });

  it('delete asks on the terminal: anything but y keeps the message', async () => {
    const { code, stdout } = await ctl(daemon, ['queue', 'delete', DEFERRED], { input: 'n\n', terminal: true });
    expect(stdout).toContain(`delete ${DEFERRED}? [y/N] `);
    expect(stdout).toContain(`not deleted: ${DEFERRED}`);
    expect(code).toBe(0);
    expect((await listed(daemon)).map((m) => m.id)).toContain(DEFERRED);
  });

  it('delete asks on the terminal: y deletes', async () => {
    const { code, stdout } = await ctl(daemon, ['queue', 'delete', DEFERRED], { input: 'y\n', terminal: true });
    expect(stdout).toContain(`delete ${DEFERRED}? [y/N] `);
    expect(stdout).toContain(`deleted: ${DEFERRED}`);
    expect(stdout).not.toContain('not deleted');
    expect(code).toBe(0);
    expect((await listed(daemon)).map((m) => m.id)).not.toContain(DEFERRED);
  });

  it('delete --yes deletes without asking', async () => {
    const { code, stdout, stderr } = await ctl(daemon, ['queue', 'delete', '--yes', HELD]);
    expect([stdout, stderr, code]).toEqual([`deleted: ${HELD}\n`, '', 0]);
    expect((await listed(daemon)).map((m) => m.id)).toEqual([ACTIVE]);
    expect(changesLogged(daemon).at(-1)).toEqual(['queue-delete', [HELD]]);
  });

  it('the summary line says Request for one', async () => {
    const { stdout } = await ctl(daemon, ['queue', 'list']);
    expect(stdout.split('\n').at(-2)).toBe('-- 1 Kbytes in 1 Request.');
  });
});

describe('mailsubmitctl queue, no messages or no queue', () => {
  it('list of an empty queue: "Mail queue is empty", exit 0; flush: nothing to do', async () => {
    const daemon = await startFakeDaemon('empty', 'empty');
    expect(await ctl(daemon, ['queue', 'list'])).toEqual({ code: 0, stdout: 'Mail queue is empty\n', stderr: '' });
    expect(JSON.parse((await ctl(daemon, ['queue', 'list', '--json'])).stdout)).toEqual({ messages: [], summary: { messages: 0, octets: 0, held: 0, oldest_arrival: null } });
    expect(await ctl(daemon, ['queue', 'flush'])).toEqual({ code: 0, stdout: 'nothing to flush: every message is held, or the queue is empty\n', stderr: '' });
  });

  it('a daemon without a local queue: 69, saying so', async () => {
    const daemon = await startFakeDaemon('none', 'none');
    for (const args of [['list'], ['hold', DEFERRED]]) {
      const { code, stderr } = await ctl(daemon, ['queue', ...args]);
      expect(stderr).toBe('mailsubmitctl: the local queue is not in use in this mailsubmitd (queue.directory)\n');
      expect(code).toBe(69);
    }
  });

  it('a daemon that is not running: 75', async () => {
    const config = join(dir, 'stopped.conf');
    writeFileSync(config, `[daemon]\ncontrol_socket = "${join(dir, 'stopped.sock')}"\n`, { mode: 0o644 });
    const { code, stderr } = await ctl({ child: undefined as unknown as ChildProcess, config, log: '' }, ['queue', 'list']);
    expect(stderr).toBe(`mailsubmitctl: mailsubmitd is not running: nothing answers on ${join(dir, 'stopped.sock')} (ENOENT)\n`);
    expect(code).toBe(75);
  });
});
