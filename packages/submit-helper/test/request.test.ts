/**
 * What the helper sends: a version-2 request frame with the mode from
 * argv[0]'s basename, argv as given, fd 0 (and fd 1 for qmail-queue) being
 * the caller's own, and only the TCPREMOTE* environment in qmail-queue mode.
 */
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  encodeReply,
  FRAME_VERSION,
  KIND_REQUEST,
  MAX_ENV_VALUE_OCTETS,
  MAX_PACKET_OCTETS,
  MODE_NATIVE,
  MODE_QMAIL_QUEUE,
  MODE_SENDMAIL,
  REQUEST_FIXED_OCTETS,
  REQUEST_FLAG_ENVELOPE_FD,
} from '@mailsubmit/shared';
import type { HelperBuild } from './harness.ts';
import { childOutput } from '../../../test/support/child-output.ts';
import { FakeDaemon, buildHelper, identity, runHelper, writeAuthList } from './harness.ts';

let build: HelperBuild;
let daemon: FakeDaemon;
let message: string;
const opened: number[] = [];

beforeAll(() => {
  build = buildHelper();
  writeAuthList(build, 'root\n');
  message = join(build.dir, 'message');
  writeFileSync(message, 'sender: <a@example.org>\nrecipient: <b@example.org>\n\nSubject: hi\n\nbody\n');
});

afterAll(() => build.cleanup());

beforeEach(() => {
  daemon = new FakeDaemon(build.socket);
});

afterEach(() => {
  daemon.close();
  for (const fd of opened.splice(0)) closeSync(fd);
});

function openRead(path: string): number {
  const fd = openSync(path, 'r');
  opened.push(fd);
  return fd;
}

/**
 * Starts the helper straight from here, argv[0] as given: the launcher takes
 * its plan as one argument, which a command line near ARG_MAX outgrows.
 */
async function runDirectly(argv: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(build.binary, argv.slice(1), { argv0: argv[0], stdio: [openRead(message), 'ignore', 'pipe'], env: {} });
  const { code, stderr } = await childOutput(child);
  return { code, stderr };
}

// Includes what a caller might try to redirect the helper with: it must change nothing.
const env = {
  TCPREMOTEIP: '192.0.2.7',
  TCPREMOTEHOST: 'client.example',
  TCPREMOTEPORT: '4711',
  PATH: '/evil',
  MAILSUBMIT_SOCKET: '/tmp/elsewhere.sock',
  MAILSUBMIT_AUTH_LIST: '/tmp/elsewhere',
};

describe('the request frame', () => {
  it('is version 2, native mode, with argv as given and no environment', async () => {
    const run = await runHelper(build.binary, { argv: ['mailsubmit', '-x', 'two words', ''], env, stdin: openRead(message) });
    expect(run).toEqual({ code: 0, stderr: '' });
    const [captured] = daemon.captured;
    expect(captured?.request.mode).toBe(MODE_NATIVE);
    expect(captured?.request.flags).toBe(0);
    expect(captured?.argv).toEqual(['mailsubmit', '-x', 'two words', '']);
    expect(captured?.request.env).toEqual([]);
  });

  it('carries the caller\'s own stdin as its one fd', async () => {
    await runHelper(build.binary, { argv: ['mailsubmit'], stdin: openRead(message) });
    const [captured] = daemon.captured;
    expect(captured?.fds).toEqual([{ kind: 'file', access: 'read-only' }]);
    expect(captured?.identities).toEqual([identity(statSync(message))]);
    expect(captured?.contents[0]).toContain('Subject: hi');
  });

  it('hands over stdin unread, from where the caller left it', async () => {
    const fd = openRead(message);
    const skipped = Buffer.alloc('sender: <a@example.org>\n'.length);
    readSync(fd, skipped);
    await runHelper(build.binary, { argv: ['mailsubmit'], stdin: fd });
    expect(daemon.captured[0]?.contents[0]).toBe('recipient: <b@example.org>\n\nSubject: hi\n\nbody\n');
  });

  it.each([
    ['sendmail', MODE_SENDMAIL],
    ['mailsubmit-sendmail', MODE_SENDMAIL],
    ['/usr/sbin/sendmail', MODE_SENDMAIL],
    ['qmail-queue', MODE_QMAIL_QUEUE],
    ['/var/qmail/bin/mailsubmit-qmail-queue', MODE_QMAIL_QUEUE],
    ['mailsubmit', MODE_NATIVE],
    ['/usr/bin/mailsubmit', MODE_NATIVE],
    ['sendmail.postfix', MODE_NATIVE],
    ['', MODE_NATIVE],
  ])('takes its mode from argv[0] %j', async (argv0, mode) => {
    const envelope = openRead(message);
    await runHelper(build.binary, { argv: [argv0, '-f', 'a@example.org'], stdin: openRead(message), stdout: envelope });
    expect(daemon.captured[0]?.request.mode).toBe(mode);
    expect(daemon.captured[0]?.argv).toEqual([argv0, '-f', 'a@example.org']);
  });

  it('in qmail-queue mode passes fd 1 too and copies only the TCPREMOTE* values', async () => {
    const envelopeFile = join(build.dir, 'envelope');
    writeFileSync(envelopeFile, 'Fa@example.org\0Tb@example.org\0\0');
    const long = 'h'.repeat(MAX_ENV_VALUE_OCTETS + 1);
    const run = await runHelper(build.binary, {
      argv: ['qmail-queue'],
      env: { ...env, TCPREMOTEHOST: long },
      stdin: openRead(message),
      stdout: openRead(envelopeFile),
    });
    expect(run.code).toBe(0);
    const [captured] = daemon.captured;
    expect(captured?.request.flags).toBe(REQUEST_FLAG_ENVELOPE_FD);
    expect(captured?.identities).toEqual([identity(statSync(message)), identity(statSync(envelopeFile))]);
    expect(captured?.contents[1]).toBe('Fa@example.org\0Tb@example.org\0\0');
    // The over-long host name is dropped, not cut.
    expect(captured?.request.env.map((e) => [e.name, Buffer.from(e.value).toString()])).toEqual([
      ['TCPREMOTEIP', '192.0.2.7'],
      ['TCPREMOTEPORT', '4711'],
    ]);
  });

  it('carries a command line as long as exec(2) allows, one 128 KiB argument included, in full packets', async () => {
    // ARG_MAX counts each argument with its NUL and an 8-octet pointer; keep 16 KiB for the name and the environment.
    const argMax = Number(execFileSync('getconf', ['ARG_MAX'], { encoding: 'utf8' }));
    const longest = 'L'.repeat(128 * 1024 - 1); // MAX_ARG_STRLEN, its NUL included
    const argv = ['sendmail', '-i', longest];
    let used = argv.reduce((sum, arg) => sum + arg.length + 1 + 8, 0);
    for (let i = 0; used < argMax - 16 * 1024; i++) {
      const recipient = `recipient-${i}@example.org`;
      argv.push(recipient);
      used += recipient.length + 1 + 8;
    }
    expect(await runDirectly(argv)).toEqual({ code: 0, stderr: '' });
    const [captured] = daemon.captured;
    expect(captured?.request.mode).toBe(MODE_SENDMAIL);
    expect(captured?.argv.length).toBe(argv.length);
    expect(captured?.argv).toEqual(argv);
    expect(captured?.raw.byteLength).toBeGreaterThan(argMax - 32 * 1024 - 8 * argv.length);
    // Every packet full but the last, and the fds with the first (the harness closes any on later ones).
    const packets = captured?.packets as number[];
    expect(packets.length).toBe(Math.ceil((captured?.raw.byteLength as number) / MAX_PACKET_OCTETS));
    expect(packets.slice(0, -1).every((n) => n === MAX_PACKET_OCTETS)).toBe(true);
    expect(captured?.identities[0]).toBe(identity(statSync(message)));
  });

  it('stops sending and reports the daemon\'s answer when it refuses after the first packet', async () => {
    daemon.answerEarly = () => encodeReply({ status: 64, outcome: 'usage', text: 'the command line is too long' });
    const argv = Array.from({ length: 20_000 }, (_, i) => `recipient-${i}@example.org`);
    expect(await runDirectly(['sendmail', ...argv])).toEqual({ code: 64, stderr: 'mailsubmit-sendmail: the command line is too long\n' });
  });

  it('starts with the magic, version 2 and the request kind, read without the codec', async () => {
    await runHelper(build.binary, { argv: ['mailsubmit'], stdin: openRead(message) });
    const raw = daemon.captured[0]?.raw as Buffer;
    expect(raw.subarray(0, 4).toString('latin1')).toBe('MSUB');
    expect(FRAME_VERSION).toBe(2);
    expect(raw.readUInt16LE(4)).toBe(2);
    expect([raw[6], raw[7]]).toEqual([KIND_REQUEST, 0]);
    expect(raw.readUInt32LE(8)).toBe(raw.byteLength);
    expect([raw[12], raw[13]]).toEqual([MODE_NATIVE, 0]);
    expect(raw.readUInt16LE(14)).toBe(0);
    expect(raw.readUInt32LE(16)).toBe(1);
    expect(raw.readUInt32LE(20)).toBe('mailsubmit'.length);
    expect(raw.byteLength).toBe(REQUEST_FIXED_OCTETS + 4 + 'mailsubmit'.length);
    expect(daemon.captured[0]?.packets).toEqual([raw.byteLength]);
  });
});
