/**
 * Every kind of fd a caller can make its standard input, through every
 * front door, with the real set-gid helper run by a real listed user: each
 * gets its documented exit code, and after the whole matrix the daemon is
 * the same process with the fd table it started with. A kind that leaked
 * one fd per submission (a datagram socket did, two per call) would let any
 * listed user exhaust the daemon's fd limit and stop everyone's mail.
 *
 * The table (exit code native and sendmail / qmail-queue):
 *
 *   read as the message, 0 / 0:
 *     regular file, file opened O_NOATIME, file on a read-only file system,
 *     memfd, sealed memfd, pipe, FIFO, connected TCP stream socket,
 *     connected Unix stream socket
 *   refused, 66 / 54 (no-input, "standard input ..."):
 *     terminal (pty) "is a terminal", /dev/null "is a device",
 *     directory "is a directory", eventfd "is not a pipe, socket or file",
 *     O_PATH fd and write-only file "is not open for reading",
 *     UDP and Unix datagram sockets "is a datagram socket",
 *     Unix seqpacket sockets "is a seqpacket socket" (connected or not),
 *     listening TCP socket "is a listening socket"
 *   failed read, 75 / 54 (input-error): a stream socket connected to
 *     nothing (TCP or Unix): it is the right kind, but reading it fails.
 *
 * Each fd is made by the user itself (test/security/fd-kind-caller.py),
 * which then starts the helper with it as fd 0.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statusOf } from '@mailsubmit/shared';
import { childOutput } from '../support/child-output.ts';
import { MailsubmitUnderTest } from '../support/mailsubmit-under-test.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import { tearDown } from '../support/tear-down.ts';
import { ensureUser, type TestUser } from '../support/test-accounts.ts';
import { fdCount } from '../support/daemon-footprint.ts';
import { heldWithin } from '../support/until.ts';

const CALLER = join(import.meta.dirname, 'fd-kind-caller.py');
const MESSAGE = 'Subject: fd kinds\n\nbody\n';
const SENDER = 'fdkind@example.net';
const RECIPIENT = 'rcpt@example.org';

type Verdict = { outcome: 'ok' } | { outcome: 'no-input'; text: RegExp } | { outcome: 'input-error'; text: RegExp };

const ACCEPTED: Verdict = { outcome: 'ok' };
const refused = (text: RegExp): Verdict => ({ outcome: 'no-input', text });

export const FD_KINDS: ReadonlyArray<readonly [string, Verdict]> = [
  ['file', ACCEPTED],
  ['noatime-file', ACCEPTED],
  ['readonly-fs-file', ACCEPTED],
  ['memfd', ACCEPTED],
  ['sealed-memfd', ACCEPTED],
  ['pipe', ACCEPTED],
  ['fifo', ACCEPTED],
  ['tcp-stream', ACCEPTED],
  ['unix-stream', ACCEPTED],
  ['pty', refused(/standard input is a terminal/)],
  ['dev-null', refused(/standard input is a device/)],
  ['directory', refused(/standard input is a directory/)],
  ['eventfd', refused(/standard input is not a pipe, socket or file/)],
  ['o-path', refused(/standard input is not open for reading/)],
  ['write-only-file', refused(/standard input is not open for reading/)],
  ['udp', refused(/standard input is a datagram socket/)],
  ['unix-dgram', refused(/standard input is a datagram socket/)],
  ['unix-dgram-unconnected', refused(/standard input is a datagram socket/)],
  ['unix-seqpacket', refused(/standard input is a seqpacket socket/)],
  ['unix-seqpacket-unconnected', refused(/standard input is a seqpacket socket/)],
  ['tcp-listening', refused(/standard input is a listening socket/)],
  ['tcp-unconnected', { outcome: 'input-error', text: /reading standard input failed/ }],
  ['unix-stream-unconnected', { outcome: 'input-error', text: /reading standard input failed/ }],
];

interface Door {
  readonly name: string;
  readonly link: string | null;
  readonly args: readonly string[];
  readonly input: string;
  readonly envelope?: string;
  readonly qmail: boolean;
}

const DOORS: readonly Door[] = [
  { name: 'mailsubmit', link: null, args: [], input: `sender: ${SENDER}\nrecipient: ${RECIPIENT}\n\n${MESSAGE}`, qmail: false },
  { name: 'mailsubmit-sendmail', link: 'mailsubmit-sendmail', args: ['-f', SENDER, RECIPIENT], input: MESSAGE, qmail: false },
  { name: 'mailsubmit-qmail-queue', link: 'mailsubmit-qmail-queue', args: [], input: MESSAGE, envelope: `F${SENDER}\0T${RECIPIENT}\0\0`, qmail: true },
];

describe('every fd kind through every front door', () => {
  const sink = new RecordingSink();
  let ms: MailsubmitUnderTest;
  let user: TestUser;
  let scratch: string;
  let readOnly: string | undefined;
  let pid: number | undefined;
  let baseline: number;

  const openFds = (): number => fdCount(Number(ms.daemonPid));

  beforeAll(async () => {
    ms = await MailsubmitUnderTest.start({ downstreamPort: await sink.listen() });
    user = ensureUser('mstfdkind');
    ms.setAuthorizations(['mstfdkind']);
    for (const door of DOORS) if (door.link !== null) symlinkSync(ms.helperPath, join(dirname(ms.helperPath), door.link));
    scratch = mkdtempSync('/tmp/mailsubmit-fdkinds-');
    chownSync(scratch, user.uid, user.gid);
    chmodSync(scratch, 0o700);
    // A file on a read-only file system: a small tmpfs, filled and then remounted read-only.
    readOnly = join(scratch, 'ro');
    mkdirSync(readOnly);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0755', 'tmpfs', readOnly]);
    pid = ms.daemonPid;
    // One submission first: what a daemon sets up once (pool, lazily loaded modules) is not a leak.
    const warmUp = await run(DOORS[0] as Door, 'pipe');
    expect(warmUp.code).toBe(0);
    await sink.waitForMessages(1);
    baseline = openFds();
  }, 60_000);

  afterAll(async () => {
    if (readOnly !== undefined) execFileSync('umount', [readOnly], { stdio: 'ignore' });
    await tearDown(ms, undefined, sink);
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  });

  async function run(door: Door, kind: string): Promise<{ code: number; stderr: string }> {
    const files = mkdtempSync('/tmp/mailsubmit-fdkind-input-');
    try {
      const messageFile = join(files, 'message');
      writeFileSync(messageFile, door.input);
      if (readOnly !== undefined) {
        execFileSync('mount', ['-o', 'remount,rw', readOnly]);
        writeFileSync(join(readOnly, 'message'), door.input, { mode: 0o644 });
        execFileSync('mount', ['-o', 'remount,ro', readOnly]);
      }
      const env: Record<string, string> = {};
      if (door.envelope !== undefined) {
        const envelopeFile = join(files, 'envelope');
        writeFileSync(envelopeFile, door.envelope);
        env.ENVELOPE_FILE = envelopeFile;
      }
      const helper = door.link === null ? ms.helperPath : join(dirname(ms.helperPath), door.link);
      const child = spawn('/usr/bin/python3', [CALLER, kind, String(user.uid), String(user.gid), helper, messageFile, scratch, ...door.args], { stdio: ['ignore', 'pipe', 'pipe'], env });
      const output = await childOutput(child);
      expect(output.stderr).toBe('');
      return JSON.parse(output.stdout) as { code: number; stderr: string };
    } finally {
      rmSync(files, { recursive: true, force: true });
    }
  }

  let delivered = 1;
  for (const door of DOORS) {
    for (const [kind, verdict] of FD_KINDS) {
      const row = statusOf(verdict.outcome);
      const code = door.qmail ? row.qmailCode : row.exitCode;
      it(`${door.name} with ${kind} as standard input: ${code} (${verdict.outcome})`, async () => {
        const result = await run(door, kind);
        expect(result.code).toBe(code);
        if (verdict.outcome === 'ok') {
          delivered++;
          const messages = await sink.waitForMessages(delivered);
          expect(messages.at(-1)?.data.toString()).toContain('Subject: fd kinds');
        } else {
          expect(result.stderr).toMatch(verdict.text);
        }
        expect(ms.daemonPid).toBe(pid);
      }, 30_000);
    }
  }

  it('is served by the same daemon, with its starting fd table, after the whole matrix, and delivered each accepted kind exactly once', async () => {
    expect(ms.daemonPid).toBe(pid);
    expect(() => process.kill(pid as number, 0)).not.toThrow();
    await heldWithin(5000, () => openFds() === baseline);
    expect(openFds()).toBe(baseline);
    const accepted = FD_KINDS.filter(([, verdict]) => verdict.outcome === 'ok').length;
    expect(sink.messages).toHaveLength(1 + accepted * DOORS.length);
  });
});
