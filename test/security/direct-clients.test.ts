/**
 * Hostile direct clients of mailsubmitd's socket, bypassing the set-gid
 * helper: whatever frame and whatever fds a local user hands over, the
 * answer is one documented outcome (docs/submission-interface.md, "Every
 * outcome") and the daemon's fd table ends where it started. The fd count
 * is read from /proc/<daemon>/fd around every probe and around the whole set;
 * a leak of one fd per hostile request would let any caller exhaust the
 * daemon's fd limit and stop all mail.
 *
 * The daemon's downstream is a RecordingSink directly: none of these
 * requests may reach it, which is checked as well.
 */
import { chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_FRAME_OCTETS, MAX_PACKET_OCTETS, requestPackets, statusOf } from '@mailsubmit/shared';
import { directRequest, type DirectResult, type PassedFd } from '../support/direct-client.ts';
import { MailsubmitUnderTest } from '../support/mailsubmit-under-test.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import { nativeRequest, nativeRequestOfLength, qmailQueueRequest } from '../support/request-frames.ts';
import { tearDown } from '../support/tear-down.ts';
import { ensureGroup, ensureUser, type TestUser } from '../support/test-accounts.ts';
import { fdCount } from '../support/daemon-footprint.ts';
import { heldWithin } from '../support/until.ts';

const FRAME = nativeRequest();

const SUBMISSION = 'sender: probe@example.net\nrecipient: rcpt@example.org\n\nSubject: probe\n\nbody\n';

function withVersion(version: number): Buffer {
  const frame = Buffer.from(FRAME);
  frame.writeUInt16LE(version, 4);
  return frame;
}

/** A well-formed request one octet longer than a packet may be, sent as one packet. */
function oversizedPacket(): Uint8Array {
  const frame = nativeRequestOfLength(MAX_PACKET_OCTETS + 1);
  expect(frame.byteLength).toBe(MAX_PACKET_OCTETS + 1);
  return frame;
}

/** The first packet of a request whose length field says it is one octet longer than a request may be. */
function oversizedRequest(): Uint8Array {
  const packet = Buffer.from(nativeRequest('x'.repeat(MAX_PACKET_OCTETS - 100)));
  packet.writeUInt32LE(MAX_FRAME_OCTETS + 1, 8);
  return packet;
}

interface Probe {
  readonly name: string;
  readonly frame: Uint8Array | null;
  readonly fds: readonly PassedFd[];
  readonly outcome: string;
  readonly text: RegExp;
  /** Run as the user not on the list. */
  readonly outsider?: boolean;
  /** A qmail-queue frame: the status is qmail-queue(8)'s code. */
  readonly qmail?: boolean;
  readonly skip?: boolean;
}

const devnull: PassedFd = { open: '/dev/null', flags: 'read' };

const PROBES: readonly Probe[] = [
  { name: 'a request from a uid not on the list (with the helper\'s group)', frame: FRAME, fds: [{ stdin: true }], outsider: true, outcome: 'not-authorized', text: /is not on the authorization list/ },
  { name: 'a frame of protocol version 3', frame: withVersion(3), fds: [{ stdin: true }], outcome: 'config', text: /frame version 3, this side speaks version 2/ },
  { name: 'a frame of protocol version 1', frame: withVersion(1), fds: [{ stdin: true }], outcome: 'config', text: /frame version 1, this side speaks version 2/ },
  { name: 'a frame of protocol version 0', frame: withVersion(0), fds: [{ stdin: true }], outcome: 'config', text: /frame version 0/ },
  { name: 'a frame that is not a frame', frame: Buffer.from('EHLO x\r\n'), fds: [{ stdin: true }], outcome: 'usage', text: /malformed request/ },
  // SOCK_SEQPACKET cannot tell an empty message from the peer's end: it is taken as the caller going away.
  { name: 'an empty frame', frame: new Uint8Array(0), fds: [], outcome: 'caller-gone', text: /closed the connection without a request/ },
  { name: 'an empty frame carrying an fd', frame: new Uint8Array(0), fds: [{ stdin: true }], outcome: 'caller-gone', text: /closed the connection without a request/ },
  { name: 'a packet one octet over the limit', frame: oversizedPacket(), fds: [{ stdin: true }], outcome: 'usage', text: /request frame is too large/ },
  { name: 'a packet over the limit carrying two fds', frame: oversizedPacket(), fds: [{ stdin: true }, devnull], outcome: 'usage', text: /request frame is too large/ },
  { name: 'a request announcing one octet over the limit', frame: oversizedRequest(), fds: [{ stdin: true }], outcome: 'usage', text: /command line is too long: a request of 8388609 octets, mailsubmit takes at most 8388608/ },
  { name: 'a request that never comes whole', frame: requestPackets(nativeRequest('x'.repeat(3 * MAX_PACKET_OCTETS)))[0] as Uint8Array, fds: [{ stdin: true }], outcome: 'usage', text: /did not arrive whole within 10 s/ },
  { name: 'a frame with no fd', frame: FRAME, fds: [], outcome: 'no-input', text: /no standard input was passed/ },
  { name: 'a frame with two fds', frame: FRAME, fds: [{ stdin: true }, devnull], outcome: 'usage', text: /carried 2 file descriptors, this front door passes one/ },
  { name: 'a frame with three fds', frame: FRAME, fds: [{ stdin: true }, devnull, devnull], outcome: 'usage', text: /too many file descriptors/ },
  { name: 'a frame with ten fds', frame: FRAME, fds: [{ stdin: true }, ...Array<PassedFd>(9).fill(devnull)], outcome: 'usage', text: /too many file descriptors/ },
  {
    name: 'a qmail-queue frame with three fds',
    frame: qmailQueueRequest(),
    fds: [{ stdin: true }, devnull, devnull],
    qmail: true,
    outcome: 'usage',
    text: /too many file descriptors/,
  },
  { name: 'a terminal', frame: FRAME, fds: [{ pty: true }], outcome: 'no-input', text: /standard input is a terminal/, skip: !existsSync('/dev/ptmx') },
  { name: 'a directory', frame: FRAME, fds: [{ open: '/', flags: 'directory' }], outcome: 'no-input', text: /standard input is a directory/ },
  { name: 'an eventfd', frame: FRAME, fds: [{ eventfd: true }], outcome: 'no-input', text: /standard input is not a pipe, socket or file/ },
  { name: 'a file open only for writing', frame: FRAME, fds: [{ open: '<write-only>', flags: 'write' }], outcome: 'no-input', text: /not open for reading/ },
  { name: 'the write end of a pipe', frame: FRAME, fds: [{ pipeWriteEnd: true }], outcome: 'no-input', text: /not open for reading/ },
  { name: '/dev/zero', frame: FRAME, fds: [{ open: '/dev/zero', flags: 'read' }], outcome: 'no-input', text: /standard input is a device/ },
  { name: '/dev/null', frame: FRAME, fds: [devnull], outcome: 'no-input', text: /standard input is a device/ },
  // A socket is read like a pipe (documented); what it carries is then checked like any input.
  { name: 'a connected socket carrying a bad envelope', frame: FRAME, fds: [{ socketpair: 'RCPT TO:<evil@example.org>\r\n' }], outcome: 'envelope-syntax', text: /line 1: "RCPT TO" is not an attribute name/ },
  { name: 'a socket connected to nothing', frame: FRAME, fds: [{ unconnectedSocket: true }], outcome: 'input-error', text: /reading standard input failed/ },
];

describe('direct clients of the daemon\'s socket', () => {
  const sink = new RecordingSink();
  let ms: MailsubmitUnderTest;
  let helperGid: number;
  let listed: TestUser;
  let outsider: TestUser;
  let member: TestUser;
  let scratch: string;
  let writeOnlyFile: string;

  beforeAll(async () => {
    ms = await MailsubmitUnderTest.start({ downstreamPort: await sink.listen() });
    helperGid = ensureGroup(ms.group);
    listed = ensureUser('mstdcok');
    outsider = ensureUser('mstdcno');
    member = ensureUser('mstdcsup', [ms.group]);
    ms.setAuthorizations(['mstdcok', 'mstdcsup']);
    scratch = mkdtempSync('/tmp/mailsubmit-direct-');
    chownSync(scratch, listed.uid, listed.gid);
    writeOnlyFile = join(scratch, 'write-only');
    writeFileSync(writeOnlyFile, SUBMISSION, { mode: 0o600 });
    chownSync(writeOnlyFile, listed.uid, listed.gid);
    // The first request sets up what a daemon keeps for its lifetime (the addon's buffers, lazily loaded modules).
    await send(PROBES.find((probe) => probe.name === 'an empty frame') as Probe);
  }, 30_000);

  afterAll(async () => {
    await tearDown(ms, undefined, sink);
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  });

  const openFds = (): number => fdCount(Number(ms.daemonPid));

  async function send(probe: Probe): Promise<DirectResult> {
    const fds = probe.fds.map((fd) => ('open' in fd && fd.open === '<write-only>' ? { ...fd, open: writeOnlyFile } : fd));
    const user = probe.outsider === true ? outsider : listed;
    return directRequest({ socketPath: ms.socketPath, uid: user.uid, gid: helperGid, frame: probe.frame, fds, input: SUBMISSION });
  }

  /** Waits until the daemon's fd table is back at `before` (the connection closes just after the reply), or gives up. */
  async function fdsSettle(before: number): Promise<number> {
    await heldWithin(5000, () => openFds() === before);
    return openFds() - before;
  }

  for (const probe of PROBES) {
    const row = statusOf(probe.outcome);
    const exitCode = probe.qmail === true ? row.qmailCode : row.exitCode;
    it.skipIf(probe.skip === true)(`answers ${exitCode} (${probe.outcome}) to ${probe.name}, and leaks no fd`, async () => {
      const before = openFds();
      const result = await send(probe);
      expect(result.connectError).toBeNull();
      expect(result.timedOut).toBe(false);
      expect(result.reply?.outcome).toBe(probe.outcome);
      expect(result.reply?.status).toBe(exitCode);
      expect(result.reply?.text).toMatch(probe.text);
      expect(await fdsSettle(before)).toBe(0);
      expect(sink.commandLog.filter((line) => /^(MAIL|RCPT|DATA)/i.test(line))).toEqual([]);
    });
  }

  it('keeps a uid without the helper\'s group out at the socket (EACCES), opening nothing', async () => {
    const before = openFds();
    const result = await directRequest({ socketPath: ms.socketPath, uid: outsider.uid, gid: outsider.gid, frame: FRAME, fds: [{ stdin: true }], input: SUBMISSION });
    expect(result.connectError).toBe('EACCES');
    expect(openFds()).toBe(before);
  });

  it('refuses a listed user who reaches the socket through a supplementary group, not the helper: 77', async () => {
    const before = openFds();
    const result = await directRequest({
      socketPath: ms.socketPath,
      uid: member.uid,
      gid: member.gid,
      initGroups: true,
      frame: FRAME,
      fds: [{ stdin: true }],
      input: SUBMISSION,
    });
    expect(result.connectError).toBeNull();
    expect(result.reply).toMatchObject({ status: 77, outcome: 'not-authorized' });
    expect(result.reply?.text).toMatch(/did not connect through the mailsubmit helper/);
    expect(await fdsSettle(before)).toBe(0);
  });

  it('closes the fds of frames sent after the request on the same connection (the daemon reads one)', async () => {
    const before = openFds();
    const result = await directRequest({
      socketPath: ms.socketPath,
      uid: listed.uid,
      gid: helperGid,
      frame: FRAME,
      fds: [{ stdin: true }, devnull],
      repeat: 5,
      input: 'RCPT TO:<evil@example.org>\n',
    });
    expect(result.reply).toMatchObject({ status: 64, outcome: 'usage' });
    expect(await fdsSettle(before)).toBe(0);
    const single = await directRequest({ socketPath: ms.socketPath, uid: listed.uid, gid: helperGid, frame: FRAME, fds: [{ stdin: true }], repeat: 5, input: 'RCPT TO:<evil@example.org>\n' });
    expect(single.reply).toMatchObject({ status: 65, outcome: 'envelope-syntax' });
    expect(await fdsSettle(before)).toBe(0);
  });

  it('ends the whole set, three times over, with the fd table it started with', async () => {
    const before = openFds();
    for (let round = 0; round < 3; round++) {
      for (const probe of PROBES.filter((p) => p.skip !== true)) {
        expect((await send(probe)).reply?.outcome).toBe(probe.outcome);
      }
    }
    expect(await fdsSettle(before)).toBe(0);
    expect(sink.messages).toEqual([]);
  }, 120_000);

  it('serves the same direct client with a well-formed request over a socket (the probes above are refused for what they are)', async () => {
    const result = await directRequest({ socketPath: ms.socketPath, uid: listed.uid, gid: helperGid, frame: nativeRequest('-v'), fds: [{ socketpair: SUBMISSION }] });
    expect(result.reply).toMatchObject({ status: 0, outcome: 'ok' });
    const [message] = await sink.waitForMessages(1);
    expect(message?.mailFrom).toMatch(/^MAIL FROM:<probe@example\.net>/);
  });
});
