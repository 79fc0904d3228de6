/**
 * How the helper ends: with the daemon's status and text, and with 75 (or
 * qmail-queue's own codes) whenever the daemon cannot give one: not running,
 * gone without a reply, a garbled reply, no reply in time. Also the checks
 * made before anything else: stdin closed, argc 0.
 */
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodeReply, FRAME_VERSION, MAX_REPLY_TEXT_OCTETS, statusOf } from '@mailsubmit/shared';
import type { Answer, HelperBuild } from './harness.ts';
import { FakeDaemon, buildHelper, runHelper, writeAuthList } from './harness.ts';

let build: HelperBuild;
let daemon: FakeDaemon | undefined;
let message: string;
const opened: number[] = [];

beforeAll(() => {
  // A short deadline, compiled in, so the no-reply case ends quickly.
  build = buildHelper(2);
  writeAuthList(build, 'root\n');
  message = join(build.dir, 'message');
  writeFileSync(message, 'sender: <>\nrecipient: <b@example.org>\n\nSubject: hi\n\n');
});

afterAll(() => build.cleanup());

afterEach(() => {
  daemon?.close();
  daemon = undefined;
  for (const fd of opened.splice(0)) closeSync(fd);
});

function stdin(): number {
  const fd = openSync(message, 'r');
  opened.push(fd);
  return fd;
}

function answering(answer: Answer | ((raw: Buffer) => Answer)): FakeDaemon {
  daemon = new FakeDaemon(build.socket);
  daemon.answer = (captured) => (typeof answer === 'function' ? answer(captured.raw) : answer);
  return daemon;
}

/** A reply frame with a chosen version, kind or text, built by hand (the current version unless told). */
function rawReply({ version = FRAME_VERSION, kind = 2, status = 65, outcome = 'internal', text = Buffer.from('x') } = {}): Buffer {
  const head = Buffer.from([0x4d, 0x53, 0x55, 0x42, 0, 0, kind, 0, status, outcome.length, 0, 0]);
  head.writeUInt16LE(version, 4);
  head.writeUInt16LE(text.length, 10);
  return Buffer.concat([head, Buffer.from(outcome), text]);
}

describe('with a reply', () => {
  it('exits 0 and prints nothing when the daemon says ok without text', async () => {
    answering(encodeReply({ status: 0, outcome: 'ok', text: '' }));
    expect(await runHelper(build.binary, { argv: ['mailsubmit'], stdin: stdin() })).toEqual({ code: 0, stderr: '' });
  });

  it('exits 0 and prints the text of a success the caller asked to hear about (-v)', async () => {
    answering(encodeReply({ status: 0, outcome: 'ok', text: 'queued as 4F2A1' }));
    expect(await runHelper(build.binary, { argv: ['mailsubmit', '-v'], stdin: stdin() })).toEqual({ code: 0, stderr: 'mailsubmit: queued as 4F2A1\n' });
  });

  it.each([
    [65, 'envelope-syntax', 'line 3: attribute "recipient": missing @domain'],
    [67, 'recipient-refused', '550 5.1.1 <b@example.org>: Recipient address rejected'],
    [75, 'mta-tempfail', '451 4.3.0 try again later'],
    [77, 'attribute-not-permitted', 'line 1: attribute "client_address": not permitted for user nobody'],
    [31, 'message-refused', 'qmail-queue code as the daemon chose it'],
  ])('exits %i and prints the daemon\'s text', async (status, outcome, text) => {
    answering(encodeReply({ status, outcome, text }));
    const run = await runHelper(build.binary, { argv: ['mailsubmit'], stdin: stdin() });
    expect(run).toEqual({ code: status, stderr: `mailsubmit: ${text}\n` });
  });

  it('prints the outcome when the text is empty', async () => {
    answering(encodeReply({ status: 69, outcome: 'message-refused', text: '' }));
    expect(await runHelper(build.binary, { argv: ['mailsubmit'], stdin: stdin() })).toEqual({
      code: 69,
      stderr: 'mailsubmit: failed (message-refused)\n',
    });
  });

  it('prints a text of the maximum length whole', async () => {
    const text = `${'x'.repeat(MAX_REPLY_TEXT_OCTETS - 1)}!`;
    answering(encodeReply({ status: 65, outcome: 'over-limit', text }));
    expect((await runHelper(build.binary, { argv: ['mailsubmit'], stdin: stdin() })).stderr).toBe(`mailsubmit: ${text}\n`);
  });
});

describe('without a usable reply', () => {
  const tempfail = statusOf('daemon-unavailable').exitCode;

  it('exits 75 when no daemon is running', async () => {
    const run = await runHelper(build.binary, { argv: ['mailsubmit'], stdin: stdin() });
    expect(run.code).toBe(tempfail);
    expect(run.stderr).toMatch(/^mailsubmit: the mailsubmit daemon is not running \(cannot connect to .*daemon\.sock: No such file or directory\)\n$/);
  });

  it('exits with qmail-queue\'s "connection rejected" in qmail-queue mode', async () => {
    const run = await runHelper(build.binary, { argv: ['qmail-queue'], stdin: stdin(), stdout: stdin() });
    expect(run.code).toBe(statusOf('daemon-unavailable').qmailCode);
  });

  it('exits 75 when the daemon closes without a reply', async () => {
    answering('close');
    const run = await runHelper(build.binary, { argv: ['mailsubmit'], stdin: stdin() });
    expect(run.code).toBe(tempfail);
    expect(run.stderr).toContain('closed the connection without a reply');
  });

  it('exits 75 when no reply comes before the deadline', async () => {
    answering('silent');
    const run = await runHelper(build.binary, { argv: ['mailsubmit'], stdin: stdin() });
    expect(run.code).toBe(tempfail);
    expect(run.stderr).toContain('no reply from the mailsubmit daemon within 2 seconds');
  });

  it.each([
    ['not a frame at all', Buffer.from('250 ok, honest')],
    ['a reply of the previous version', rawReply({ version: FRAME_VERSION - 1 })],
    ['a reply of a later version', rawReply({ version: FRAME_VERSION + 1 })],
    ['a request where a reply belongs', rawReply({ kind: 1 })],
    ['a newline in the text', rawReply({ text: Buffer.from('first\nsecond') })],
    ['an escape sequence in the text', rawReply({ text: Buffer.from('\x1b[2J') })],
    ['a C1 control in the text', rawReply({ text: Buffer.from([0x61, 0xc2, 0x9b, 0x62]) })],
    ['an empty outcome', rawReply({ outcome: '' })],
    ['a text longer than the limit', rawReply({ text: Buffer.alloc(MAX_REPLY_TEXT_OCTETS + 1, 0x61) })],
    ['lengths that do not add up', Buffer.concat([rawReply(), Buffer.from('extra')])],
    ['a frame far too long', Buffer.alloc(5000, 0x4d)],
  ])('exits 75 on a garbled reply: %s', async (_name, reply) => {
    answering(reply);
    const run = await runHelper(build.binary, { argv: ['mailsubmit'], stdin: stdin() });
    expect(run.code).toBe(statusOf('internal').exitCode);
    expect(run.stderr).toMatch(/^mailsubmit: garbled reply from the mailsubmit daemon \(.+\)\n$/);
  });

  it('takes a hand-built reply of this version, so each garbled one above fails for its own fault', async () => {
    answering(rawReply());
    expect(await runHelper(build.binary, { argv: ['mailsubmit'], stdin: stdin() })).toEqual({ code: 65, stderr: 'mailsubmit: x\n' });
  });

  it('names a version mismatch as an installation problem', async () => {
    answering(rawReply({ version: FRAME_VERSION - 1 }));
    const run = await runHelper(build.binary, { argv: ['mailsubmit'], stdin: stdin() });
    expect(run.code).toBe(statusOf('internal').exitCode);
    expect(run.stderr).toContain('another protocol version: install the helper and the daemon from one release');
  });
});

describe('before contacting the daemon', () => {
  it('exits 66 when stdin is closed, and never connects', async () => {
    const d = answering(encodeReply({ status: 0, outcome: 'ok', text: '' }));
    const run = await runHelper(build.binary, { argv: ['mailsubmit'], closeStdin: true });
    expect(run).toEqual({ code: 66, stderr: 'mailsubmit: standard input is closed: there is no message to submit\n' });
    expect(d.captured).toEqual([]);
  });

  it('exits with qmail-queue\'s "cannot read" code when the envelope fd 1 is closed', async () => {
    const run = await runHelper(build.binary, { argv: ['qmail-queue'], stdin: stdin(), closeStdout: true });
    expect(run.code).toBe(statusOf('no-input').qmailCode);
    expect(run.stderr).toContain('file descriptor 1 (the envelope) is closed');
  });

  it('accepts a closed stdout outside qmail-queue mode (it is opened on /dev/null)', async () => {
    answering(encodeReply({ status: 0, outcome: 'ok', text: '' }));
    const run = await runHelper(build.binary, { argv: ['mailsubmit'], stdin: stdin(), closeStdout: true });
    expect(run.code).toBe(0);
  });

  it('never runs with argc == 0: refuses it, or sees the kernel\'s empty argv[0]', async () => {
    // Linux 5.18 and later turn an empty argv into [""] (the CVE-2021-4034
    // fix); older kernels start the helper with argc 0, which it refuses.
    const d = answering(encodeReply({ status: 0, outcome: 'ok', text: '' }));
    const run = await runHelper(build.binary, { argv: [], stdin: stdin() });
    if (run.code === 64) {
      expect(run.stderr).toBe('mailsubmit: started without a program name (argc is 0)\n');
      expect(d.captured).toEqual([]);
    } else {
      expect(run.code).toBe(0);
      expect(d.captured[0]?.argv).toEqual(['']);
    }
  });
});
