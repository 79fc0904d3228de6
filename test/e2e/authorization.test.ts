/**
 * Who may submit, end to end, with the real set-gid helper and real users:
 * the helper's early check, the daemon's own check from SO_PEERCRED (which
 * is what counts: a direct client that bypasses the helper gains nothing),
 * principals by name, uid and group, edits of the list taking effect without
 * a restart, a list that cannot be parsed failing closed (75 for everyone
 * until it is fixed), capabilities for asserted attributes, and the daemon's answers
 * to malformed requests (wrong version, missing or extra fds, fds that are
 * no message), none of which may leak a file descriptor.
 */
import { chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directRequest, type DirectResult, type PassedFd } from '../support/direct-client.ts';
import { tearDown } from '../support/tear-down.ts';
import { startMailPath } from '../support/mail-path.ts';
import { MailsubmitUnderTest, type SubmitResult } from '../support/mailsubmit-under-test.ts';
import { PrivatePostfix } from '../support/private-postfix.ts';
import { nativeRequest } from '../support/request-frames.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import { ensureGroup, ensureUser, type TestUser } from '../support/test-accounts.ts';
import { fdCount } from '../support/daemon-footprint.ts';
import { heldWithin } from '../support/until.ts';
import { ctl } from '../../packages/admin-cli/test/run-ctl.ts';

const FRAME = nativeRequest('-v');

function input(tag: string, envelope: readonly string[] = []): Buffer {
  return Buffer.from(
    [
      ...envelope,
      `sender: ${tag}@example.net`,
      'recipient: rcpt@example.org',
      '',
      `From: ${tag}@example.net`,
      'Date: Tue, 24 Nov 2026 09:30:00 +0000',
      `Message-ID: <${tag}@example.net>`,
      `Subject: ${tag}`,
      '',
      'body',
      '',
    ].join('\n'),
  );
}

const queueIdOf = (result: SubmitResult | DirectResult): string => {
  const text = 'stderr' in result ? result.stderr : (result.reply?.text ?? '');
  return /queued as ([0-9A-F]+)/.exec(text)?.[1] ?? 'none';
};

describe.skipIf(!PrivatePostfix.isAvailable())('authorization end to end', () => {
  const sink = new RecordingSink();
  let postfix: PrivatePostfix;
  let ms: MailsubmitUnderTest;
  let helperGid: number;
  let listed: TestUser; // on the list by name, no capabilities
  let outsider: TestUser; // never on the list
  let byUid: TestUser;
  let byGroup: TestUser;
  let helperGroupMember: TestUser; // on the list, and a supplementary member of the helper's group
  let capable: TestUser; // on the list with the client capability
  let latecomer: TestUser;
  let baseline: string[];

  beforeAll(async () => {
    ({ postfix, ms } = await startMailPath(sink));
    helperGid = ensureGroup(ms.group);
    ensureGroup('mstauthgroup');
    listed = ensureUser('mstauthok');
    outsider = ensureUser('mstauthno');
    byUid = ensureUser('mstauthuid');
    byGroup = ensureUser('mstauthgrp', ['mstauthgroup']);
    helperGroupMember = ensureUser('mstauthsup', [ms.group]);
    capable = ensureUser('mstauthcap');
    latecomer = ensureUser('mstauthnew');
    baseline = ['mstauthok', 'mstauthsup', 'mstauthcap client', `uid:${byUid.uid}`, '@mstauthgroup'];
    ms.setAuthorizations(baseline);
  }, 30_000);

  afterAll(() => tearDown(ms, postfix, sink));

  /** The sink's copy of what Postfix queued as `queueId`. */
  const arrival = (queueId: string) => sink.waitForMessage((m) => m.data.subarray(0, 400).toString('latin1').includes(` id ${queueId}`));

  it('refuses a user who is not on the list in the helper, with 77 naming the user, before connecting', async () => {
    const result = await ms.submit(outsider, input('outsider'));
    expect(result.stderr).toBe(
      `mailsubmit: user mstauthno (uid ${outsider.uid}) is not authorized to submit mail; ask the administrator to run: mailsubmitctl allow mstauthno\n`,
    );
    expect(result.code).toBe(77);
    // The daemon logs in order: once a later submission is logged, an earlier one would be too.
    const later = await ms.submit(listed, input('after-outsider'), ['-v']);
    expect(later.code).toBe(0);
    await ms.waitForSubmission((l) => l.queue_id === queueIdOf(later));
    expect(ms.logLines.filter((l) => l.uid === outsider.uid)).toEqual([]);
  });

  it('is served like the helper when a direct client holds the helper\'s group (the client works)', async () => {
    const result = await directRequest({
      socketPath: ms.socketPath,
      uid: listed.uid,
      gid: helperGid,
      frame: FRAME,
      fds: [{ stdin: true }],
      input: input('direct-ok'),
    });
    expect(result.reply).toMatchObject({ status: 0, outcome: 'ok' });
    expect(result.reply?.text).toMatch(/^queued as [0-9A-F]+$/);
    await arrival(queueIdOf(result));
  });

  it('refuses the same outsider bypassing the helper: 77 from the daemon at connect, before any frame', async () => {
    // Without the helper's group the socket's permissions keep the outsider out altogether.
    const locked = await directRequest({ socketPath: ms.socketPath, uid: outsider.uid, gid: outsider.gid, frame: null });
    expect(locked.connectError).toBe('EACCES');
    // With the group (as if the outsider had it), the daemon answers without being sent anything.
    const result = await directRequest({ socketPath: ms.socketPath, uid: outsider.uid, gid: helperGid, frame: null });
    expect(result.connectError).toBeNull();
    expect(result.timedOut).toBe(false);
    expect(result.reply).toEqual({
      status: 77,
      outcome: 'not-authorized',
      text: `not authorized to submit mail: user mstauthno (uid ${outsider.uid}) is not on the authorization list; the administrator can run: mailsubmitctl allow mstauthno`,
    });
    const line = await ms.waitForSubmission((l) => l.uid === outsider.uid);
    expect(line).toMatchObject({ status: 'not-authorized', exit: 77 });
  });

  it('refuses an authorized user who bypasses the set-gid helper: 77, did not come through the helper', async () => {
    const sinkCount = sink.messages.length;
    const result = await directRequest({
      socketPath: ms.socketPath,
      uid: helperGroupMember.uid,
      gid: helperGroupMember.gid,
      initGroups: true, // reaches the 0660 socket through the supplementary group; SO_PEERCRED shows the primary gid
      frame: FRAME,
      fds: [{ stdin: true }],
      input: input('bypass'),
    });
    expect(result.connectError).toBeNull();
    expect(result.reply?.status).toBe(77);
    expect(result.reply?.outcome).toBe('not-authorized');
    expect(result.reply?.text).toBe(
      `not authorized to submit mail: user mstauthsup (uid ${helperGroupMember.uid}) did not connect through the mailsubmit helper (set-gid install)`,
    );
    const line = await ms.waitForSubmission((l) => l.uid === helperGroupMember.uid);
    expect(line).not.toHaveProperty('queue_id');
    expect(sink.messages.length).toBe(sinkCount);
  });

  it('authorizes by uid:N', async () => {
    const result = await ms.submit(byUid, input('by-uid'), ['-v']);
    expect(result.stderr).toMatch(/^mailsubmit: queued as [0-9A-F]+\n$/);
    expect(result.code).toBe(0);
    await arrival(queueIdOf(result));
    expect(await ms.waitForSubmission((l) => l.queue_id === queueIdOf(result))).toMatchObject({ uid: byUid.uid, user: 'mstauthuid' });
  });

  it('authorizes by @group through a supplementary group', async () => {
    // Without the group line the same user is refused: the group is what authorizes.
    ms.setAuthorizations(baseline.filter((line) => line !== '@mstauthgroup'));
    try {
      const refused = await ms.submit(byGroup, input('by-group-refused'), ['-v'], { initGroups: true });
      expect(refused.code).toBe(77);
    } finally {
      ms.setAuthorizations(baseline);
    }
    const result = await ms.submit(byGroup, input('by-group'), ['-v'], { initGroups: true });
    expect(result.stderr).toMatch(/^mailsubmit: queued as [0-9A-F]+\n$/);
    expect(result.code).toBe(0);
    await arrival(queueIdOf(result));
    expect(await ms.waitForSubmission((l) => l.queue_id === queueIdOf(result))).toMatchObject({ uid: byGroup.uid, user: 'mstauthgrp' });
  });

  it('takes an edit of the list into account for the next submission, without a restart', async () => {
    const pid = ms.daemonPid;
    expect((await ms.submit(latecomer, input('latecomer-before'))).code).toBe(77);
    // The daemon's own view, without the helper's early check in front of it.
    const before = await directRequest({ socketPath: ms.socketPath, uid: latecomer.uid, gid: helperGid, frame: null });
    expect(before.reply?.status).toBe(77);

    ms.setAuthorizations([...baseline, 'mstauthnew']);
    try {
      const result = await ms.submit(latecomer, input('latecomer'), ['-v']);
      expect(result.stderr).toMatch(/^mailsubmit: queued as [0-9A-F]+\n$/);
      expect(result.code).toBe(0);
      await arrival(queueIdOf(result));
    } finally {
      ms.setAuthorizations(baseline);
    }
    // Taken away again: the daemon refuses at once as well.
    const after = await directRequest({ socketPath: ms.socketPath, uid: latecomer.uid, gid: helperGid, frame: null });
    expect(after.reply?.status).toBe(77);
    expect(ms.daemonPid).toBe(pid);
  });

  it('fails closed on a hand edit it cannot parse: 75 for a listed user (never 0 or 77), one log line with file:line, status names it, the fix is used at once', async () => {
    const logged = () => ms.logLines.filter((l) => l.msg === 'authorization list INVALID: every submission gets 75 (temporary) until it is fixed');
    expect(logged()).toEqual([]);
    // A typo in a capability word on someone else's line: the older list would have kept mstauthok in, and
    // mstauthnew out, however the administrator meant to change them.
    ms.setAuthorizations([...baseline, 'mstauthnew sender=own', 'mstauthbad clinet']);
    try {
      for (const user of [listed, latecomer, listed]) {
        // The daemon answers at connect and closes with the helper's request unread: the helper must still read the reply.
        const result = await ms.submit(user, input('invalid-list'));
        expect(result.stderr).toBe(
          'mailsubmit: the authorization list cannot be used until it is fixed: mailsubmitctl status names the problem; keep the message and try again later\n',
        );
        expect(result.code).toBe(75);
      }
      const direct = await directRequest({ socketPath: ms.socketPath, uid: listed.uid, gid: helperGid, frame: null });
      expect(direct.reply).toMatchObject({ status: 75, outcome: 'authorization-list-invalid' });
      const problem = `${ms.authorizationList}:7: unknown capability "clinet" (known: client, sasl, tls, queue, sender=any|own|PATTERNS)`;
      await ms.waitForSubmission((l) => l.status === 'authorization-list-invalid' && l.uid === listed.uid);
      expect(logged()).toEqual([expect.objectContaining({ err: problem, path: ms.authorizationList, level: 50 })]);
      const status = ctl(['-c', ms.configPath, 'status']);
      expect(status.stdout).toContain(`authorization list: INVALID: ${problem} (fix it; submissions get 75 until then)\n`);
      expect((JSON.parse(ctl(['-c', ms.configPath, 'status', '--json']).stdout) as { authorization_list: { invalid: string } }).authorization_list.invalid).toBe(problem);
      expect(sink.messages.some((m) => m.data.includes('invalid-list'))).toBe(false);
    } finally {
      ms.setAuthorizations(baseline);
    }
    const fixed = await ms.submit(listed, input('list-fixed'), ['-v']);
    expect(fixed.code).toBe(0);
    await arrival(queueIdOf(fixed));
    await ms.waitForLog((l) => l.msg === 'authorization list fixed: in force again');
    expect(logged()).toHaveLength(1);
  });

  it('lets the daemon answer, not the helper, when a line\'s principal cannot be parsed: 75, not 77', async () => {
    // "mstauthn3w!" may have been meant for the outsider; neither side can know, so nobody is refused for good.
    ms.setAuthorizations([...baseline, 'mstauthn3w!']);
    try {
      const result = await ms.submit(outsider, input('unparsable-principal'));
      expect(result.stderr).toMatch(/^mailsubmit: the authorization list cannot be used until it is fixed: /);
      expect(result.code).toBe(75);
      const status = ctl(['-c', ms.configPath, 'status']).stdout;
      expect(status).toContain(`authorization list: INVALID: ${ms.authorizationList}:6: "mstauthn3w!" is not a user name, uid:N or @group`);
    } finally {
      ms.setAuthorizations(baseline);
    }
    // With a list both can parse, the helper refuses the outsider itself again.
    expect((await ms.submit(outsider, input('outsider-again'))).code).toBe(77);
  });

  it('refuses client_address from a user without the client capability (77, naming it) and delivers nothing', async () => {
    const refused = await ms.submit(listed, input('no-capability', ['client_address: [192.0.2.25]']));
    expect(refused.stderr).toMatch(/^mailsubmit: not permitted to assert this attribute: .*client_address.*"client" capability/);
    expect(refused.code).toBe(77);
    const line = await ms.waitForSubmission((l) => l.status === 'attribute-not-permitted' && l.sender === 'no-capability@example.net');
    expect(line).toMatchObject({ uid: listed.uid, exit: 77 });
    expect(line).not.toHaveProperty('queue_id');

    // The same submission from a user with the capability is delivered; the refused one never reached Postfix.
    const allowed = await ms.submit(capable, input('with-capability', ['client_address: [192.0.2.25]']), ['-v']);
    expect(allowed.code).toBe(0);
    const queueId = queueIdOf(allowed);
    await arrival(queueId);
    expect(postfix.log()).toMatch(new RegExp(`${queueId}: client=localhost\\[127\\.0\\.0\\.1\\], orig_client=unknown\\[192\\.0\\.2\\.25\\]`));
    expect(postfix.log()).not.toContain('no-capability@example.net');
    expect(sink.messages.some((m) => m.mailFrom.includes('no-capability@'))).toBe(false);
  });

  describe('malformed requests from a direct client', () => {
    // A daemon of its own that never delivers: its fd table changes only through these probes.
    let probed: MailsubmitUnderTest;
    let scratch: string;
    let writeOnlyFile: string;

    beforeAll(async () => {
      probed = await MailsubmitUnderTest.start({ downstreamPort: postfix.port });
      probed.setAuthorizations(['mstauthok']);
      scratch = mkdtempSync('/tmp/mailsubmit-auth-');
      writeOnlyFile = join(scratch, 'write-only');
      writeFileSync(writeOnlyFile, '', { mode: 0o600 });
      chownSync(writeOnlyFile, listed.uid, listed.gid);
      chownSync(scratch, listed.uid, listed.gid);
      // The first request sets up what a daemon keeps for its lifetime.
      await probe(FRAME, []);
    }, 30_000);

    afterAll(async () => {
      await probed?.stop();
      rmSync(scratch, { recursive: true, force: true });
    });

    const openFds = (): number => fdCount(Number(probed.daemonPid));

    /** Sends a request as the listed user with the helper's group, and waits until the daemon's fd table is back where it was. */
    async function probe(frame: Uint8Array, fds: readonly PassedFd[]): Promise<{ result: DirectResult; leaked: number }> {
      const before = openFds();
      const result = await directRequest({ socketPath: probed.socketPath, uid: listed.uid, gid: helperGid, frame, fds, input: input('probe') });
      // The connection is closed just after the reply is sent; give that a moment.
      await heldWithin(2000, () => openFds() <= before, 10);
      return { result, leaked: openFds() - before };
    }

    const wrongVersion = Buffer.from(FRAME);
    wrongVersion.writeUInt16LE(3, 4);

    const cases: readonly { name: string; frame: Uint8Array; fds: readonly PassedFd[]; status: number; outcome: string; text: RegExp; skip?: boolean }[] = [
      { name: 'a frame of another protocol version', frame: wrongVersion, fds: [{ stdin: true }], status: 78, outcome: 'config', text: /frame version 3, this side speaks version 2/ },
      { name: 'a frame with no fd', frame: FRAME, fds: [], status: 66, outcome: 'no-input', text: /no standard input was passed/ },
      { name: 'a frame with two fds', frame: FRAME, fds: [{ stdin: true }, { open: '/dev/null', flags: 'read' }], status: 64, outcome: 'usage', text: /carried 2 file descriptors/ },
      { name: 'a directory', frame: FRAME, fds: [{ open: '/', flags: 'directory' }], status: 66, outcome: 'no-input', text: /standard input is a directory/ },
      { name: '/dev/zero', frame: FRAME, fds: [{ open: '/dev/zero', flags: 'read' }], status: 66, outcome: 'no-input', text: /standard input is a device/ },
      { name: 'a file open only for writing', frame: FRAME, fds: [{ open: '<write-only>', flags: 'write' }], status: 66, outcome: 'no-input', text: /not open for reading/ },
      { name: 'the write end of a pipe', frame: FRAME, fds: [{ pipeWriteEnd: true }], status: 66, outcome: 'no-input', text: /not open for reading/ },
      // A pseudo-terminal needs no controlling terminal, so this runs in CI too.
      { name: 'a terminal', frame: FRAME, fds: [{ pty: true }], status: 66, outcome: 'no-input', text: /standard input is a terminal/, skip: !existsSync('/dev/ptmx') },
    ];

    for (const c of cases) {
      it.skipIf(c.skip === true)(`answers ${c.status} (${c.outcome}) to ${c.name}, and leaks no fd`, async () => {
        const fds = c.fds.map((fd) => ('open' in fd && fd.open === '<write-only>' ? { ...fd, open: writeOnlyFile } : fd));
        const { result, leaked } = await probe(c.frame, fds);
        expect(result.connectError).toBeNull();
        expect(result.reply?.status).toBe(c.status);
        expect(result.reply?.outcome).toBe(c.outcome);
        expect(result.reply?.text).toMatch(c.text);
        expect(leaked).toBe(0);
      });
    }

    it('leaks no fd over many malformed requests', async () => {
      const before = openFds();
      for (let round = 0; round < 3; round++) {
        for (const c of cases.filter((x) => x.skip !== true)) {
          const fds = c.fds.map((fd) => ('open' in fd && fd.open === '<write-only>' ? { ...fd, open: writeOnlyFile } : fd));
          expect((await probe(c.frame, fds)).result.reply?.status).toBe(c.status);
        }
      }
      expect(openFds()).toBe(before);
    }, 60_000);
  });
});
