/**
 * The helper's own gate: the authorization list (its format, and the
 * ownership and mode it must have) and the set-gid group, which must be
 * given up right after connecting. The set-gid cases install a copy of the
 * helper the real way (root:group 2755) and run it as an unprivileged user.
 */
import { chmodSync, chownSync, closeSync, copyFileSync, mkdirSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodeReply } from '@mailsubmit/shared';
import type { HelperBuild } from './harness.ts';
import { FakeDaemon, buildHelper, runHelper, writeAuthList } from './harness.ts';

// Ids no account uses here: the user has no passwd entry, like many service uids.
const USER = 23456;
const SUBMIT_GROUP = 12345;

let build: HelperBuild;
let daemon: FakeDaemon | undefined;
let message: string;
const opened: number[] = [];

beforeAll(() => {
  build = buildHelper();
  message = join(build.dir, 'message');
  writeFileSync(message, 'sender: <>\nrecipient: <b@example.org>\n\n');
});

afterAll(() => build.cleanup());

afterEach(() => {
  daemon?.close();
  daemon = undefined;
  for (const fd of opened.splice(0)) closeSync(fd);
  rmSync(build.authList, { recursive: true, force: true });
});

function stdin(): number {
  const fd = openSync(message, 'r');
  opened.push(fd);
  return fd;
}

function serve(options: { mode?: number; gid?: number } = {}): FakeDaemon {
  daemon = new FakeDaemon(build.socket, options);
  daemon.answer = () => encodeReply({ status: 0, outcome: 'ok', text: '' });
  return daemon;
}

const notListed =
  'mailsubmit: user root (uid 0) is not authorized to submit mail; ask the administrator to run: mailsubmitctl allow root\n';

describe('the authorization list', () => {
  it.each([
    ['the user name', 'root\n'],
    ['the uid', 'uid:0\n'],
    ['a group of the user', '@root\n'],
    ['a line with capability words after the principal', 'root client-attributes sasl\n'],
    ['a line among comments and other principals', '# submitters\nalice\n\n  uid:1000  # bob\n\troot\t# admin\n'],
    ['CRLF line ends', 'alice\r\nroot\r\n'],
    ['a last line without newline', 'alice\nroot'],
  ])('lets the caller in by %s', async (_name, content) => {
    writeAuthList(build, content);
    const d = serve();
    expect(await runHelper(build.binary, { argv: ['mailsubmit'], stdin: stdin() })).toEqual({ code: 0, stderr: '' });
    expect(d.captured).toHaveLength(1);
  });

  it.each([
    ['an empty list', ''],
    ['a commented-out line', '# root\n#root\n'],
    ['other users and uids', 'alice\nroots\nuid:1\nuid:4294967294\n'],
    ['a group the user is not in', '@nogroup\n'],
    ['a principal inside a comment', 'alice # root\n'],
    ['a principal after a CR inside a comment', 'alice # note\rroot\n'],
    ['lines longer than any buffer, all valid', `# ${'x'.repeat(5000)}\nalice sender=${Array.from({ length: 500 }, (_, i) => `p${i}@example.org`).join(',')}\n`],
  ])('refuses the caller with 77 for %s, before connecting', async (_name, content) => {
    writeAuthList(build, content);
    const d = serve();
    expect(await runHelper(build.binary, { argv: ['mailsubmit'], stdin: stdin() })).toEqual({ code: 77, stderr: notListed });
    expect(d.captured).toEqual([]);
  });

  it.each([
    ['uid: without digits', 'alice\nuid:\n'],
    ['uid:0x0', 'uid:0x0\n'],
    ['uid:-0', 'uid:-0\n'],
    ['a bare @', '@nogroup\n@\n'],
    ['a name the daemon refuses', 'alice\nr\u00f6ot\n'],
    ['a name with a bidi override', 'ro\u202eot\n'],
    ['a name longer than 32 characters', `${'r'.repeat(33)}\n`],
    ['an unknown capability on the caller\'s own long line', `root ${'capability '.repeat(120)}\n`],
    ['an unknown capability on another user\'s line', 'alice client-attributes\n'],
    ['a principal listed twice', 'alice\nalice\n'],
    ['a NUL right after a name', 'alice\0\n'],
    ['a CR between words', 'alice\rclient\n'],
    ['a sender pattern only IDNA can judge', 'alice sender=*@b\u00fccher.example\n'],
  ])('leaves a list with %s to the daemon (75 while it cannot parse it), never 77', async (_name, content) => {
    writeAuthList(build, content);
    const d = serve();
    const text = 'the authorization list cannot be used until it is fixed: mailsubmitctl status names the problem; keep the message and try again later';
    d.answer = () => encodeReply({ status: 75, outcome: 'authorization-list-invalid', text });
    expect(await runHelper(build.binary, { argv: ['mailsubmit'], stdin: stdin() })).toEqual({ code: 75, stderr: `mailsubmit: ${text}\n` });
    expect(d.captured).toHaveLength(1);
  });

  it.each([
    ['group-writable', 0o664, 'must not be writable by group or others'],
    ['world-writable', 0o646, 'must not be writable by group or others'],
  ])('refuses a %s list with 78', async (_name, mode, text) => {
    writeAuthList(build, 'root\n', mode);
    const run = await runHelper(build.binary, { argv: ['mailsubmit'], stdin: stdin() });
    expect(run.code).toBe(78);
    expect(run.stderr).toContain(text);
  });

  it('refuses a list not owned by root with 78', async () => {
    writeAuthList(build, 'root\n');
    chownSync(build.authList, USER, 0);
    const run = await runHelper(build.binary, { argv: ['mailsubmit'], stdin: stdin() });
    expect(run).toEqual({ code: 78, stderr: `mailsubmit: the authorization list ${build.authList} must be owned by root\n` });
  });

  it('refuses a missing list with 78', async () => {
    const run = await runHelper(build.binary, { argv: ['mailsubmit'], stdin: stdin() });
    expect(run.code).toBe(78);
    expect(run.stderr).toContain('No such file or directory');
  });

  it.each([
    ['a directory', () => mkdirSync(build.authList)],
    ['a FIFO (without hanging on its open)', () => execFileSync('mkfifo', ['-m', '0644', build.authList])],
  ])('refuses %s in place of the list with 78', async (_name, make) => {
    make();
    const run = await runHelper(build.binary, { argv: ['mailsubmit'], stdin: stdin() });
    expect(run.code).toBe(78);
    expect(run.stderr).toContain('is not a regular file');
  });

  it('uses qmail-queue\'s code for a refusal in qmail-queue mode', async () => {
    writeAuthList(build, 'alice\n');
    const run = await runHelper(build.binary, { argv: ['qmail-queue'], stdin: stdin(), stdout: stdin() });
    expect(run.code).toBe(81);
  });
});

describe('installed set-gid', () => {
  let setgid: string;

  beforeAll(() => {
    mkdirSync(join(build.dir, 'bin'), { mode: 0o755 });
    setgid = join(build.dir, 'bin', 'mailsubmit');
    copyFileSync(build.binary, setgid);
    chownSync(setgid, 0, SUBMIT_GROUP);
    chmodSync(setgid, 0o2755);
  });

  /** The real layout: list and socket readable only through the group. */
  function install(list: string): void {
    writeAuthList(build, list, 0o640);
    chownSync(build.authList, 0, SUBMIT_GROUP);
  }

  it('connects with the group and gives it up for good before sending', async () => {
    install(`uid:${USER}\n`);
    const d = serve({ mode: 0o660, gid: SUBMIT_GROUP });
    const run = await runHelper(setgid, { argv: ['mailsubmit'], stdin: stdin(), setid: [USER, USER] });
    expect(run).toEqual({ code: 0, stderr: '' });
    const [captured] = d.captured;
    // SO_PEERCRED is recorded at connect(), while the group was still held...
    expect(captured?.credentials).toMatchObject({ uid: USER, gid: SUBMIT_GROUP });
    // ...but by the time the frame arrives, real, effective, saved and fs gid are all the caller's.
    expect(captured?.procGid).toBe(`Gid:\t${USER}\t${USER}\t${USER}\t${USER}`);
  });

  it('names the uid of a user without a passwd entry when refusing', async () => {
    install('uid:1\n');
    serve({ mode: 0o660, gid: SUBMIT_GROUP });
    const run = await runHelper(setgid, { argv: ['mailsubmit'], stdin: stdin(), setid: [USER, USER] });
    expect(run).toEqual({
      code: 77,
      stderr: `mailsubmit: user uid:${USER} (uid ${USER}) is not authorized to submit mail; ask the administrator to run: mailsubmitctl allow uid:${USER}\n`,
    });
  });

  it('exits 78 when not installed set-gid: the list is unreadable', async () => {
    install(`uid:${USER}\n`);
    serve({ mode: 0o660, gid: SUBMIT_GROUP });
    const run = await runHelper(build.binary, { argv: ['mailsubmit'], stdin: stdin(), setid: [USER, USER] });
    expect(run.code).toBe(78);
    expect(run.stderr).toContain('Permission denied (is mailsubmit installed set-gid?)');
  });

  it('exits 78 when the socket does not belong to the helper\'s group', async () => {
    install(`uid:${USER}\n`);
    const d = serve({ mode: 0o660, gid: 0 });
    const run = await runHelper(setgid, { argv: ['mailsubmit'], stdin: stdin(), setid: [USER, USER] });
    expect(run.code).toBe(78);
    expect(run.stderr).toContain('permission denied connecting to');
    expect(d.captured).toEqual([]);
  });
});
