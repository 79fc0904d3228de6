/**
 * The file-read slots (limits.max_file_reads) are the daemon's, and no
 * caller may hold a place for them for ever. With one slot, held by a
 * submission whose MTA never answers: a caller waiting for the slot gets 75
 * "busy" (overload) at its input deadline, not input-timeout (it did not
 * stall, the daemon did); a caller that goes away while waiting leaves the
 * line at once (its submission ends as caller-gone, not at the deadline).
 * Real set-gid helper, real users, regular files as standard input.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { status } from '../../packages/submit-daemon/test/control/ask-control.ts';
import { childOutput, type ChildOutput } from '../support/child-output.ts';
import { MailsubmitUnderTest } from '../support/mailsubmit-under-test.ts';
import { removeAll, ensureUser, type TestUser } from '../support/test-accounts.ts';
import { until } from '../support/until.ts';

const INPUT_DEADLINE_S = 3;

describe('waiting for a file-read slot', () => {
  // An MTA that accepts the connection and never says a word: the submission holding the slot stays in delivery.
  const stalled: Socket[] = [];
  let mta: Server;
  let ms: MailsubmitUnderTest;
  let holder: TestUser;
  let waiter: TestUser;
  let departed: TestUser;
  let files: string;
  let holding: Promise<ChildOutput> | undefined;

  beforeAll(async () => {
    mta = createServer((socket) => stalled.push(socket));
    await new Promise<void>((resolve) => mta.listen(0, '127.0.0.1', resolve));
    const port = (mta.address() as { port: number }).port;
    ms = await MailsubmitUnderTest.start({
      downstreamPort: port,
      limits: 'max_file_reads = 1',
      timeouts: `input = ${INPUT_DEADLINE_S}\ninput_idle = ${INPUT_DEADLINE_S}\ncommand = 300\nshutdown = 1`,
    });
    holder = ensureUser('mstslothold');
    waiter = ensureUser('mstslotwait');
    departed = ensureUser('mstslotgone');
    ms.setAuthorizations(['mstslothold', 'mstslotwait', 'mstslotgone']);
    files = mkdtempSync('/tmp/mailsubmit-slots-');
  }, 30_000);

  afterAll(async () => {
    // The MTA goes first: the holder's delivery then fails and the daemon can stop.
    for (const socket of stalled) socket.destroy();
    mta?.close();
    await holding;
    await ms?.stop();
    removeAll();
    if (files !== undefined) rmSync(files, { recursive: true, force: true });
  });

  /** The helper as `user`, its standard input a regular file. */
  function submitFile(user: TestUser, name: string): { child: ChildProcess; result: Promise<ChildOutput> } {
    const path = join(files, name);
    writeFileSync(path, `sender: slots@example.net\nrecipient: rcpt@example.org\n\nSubject: ${name}\n\nbody\n`);
    const fd = openSync(path, 'r');
    try {
      const child = spawn(ms.helperPath, [], { uid: user.uid, gid: user.gid, stdio: [fd, 'pipe', 'pipe'], env: {} });
      return { child, result: childOutput(child) };
    } finally {
      closeSync(fd);
    }
  }

  it('holds the one slot with a submission whose MTA does not answer', async () => {
    holding = submitFile(holder, 'holder').result;
    await until(() => stalled.length > 0, 'the holder to reach the MTA');
    expect((await status(ms.controlSocketPath)).in_flight).toBe(1);
  });

  it('answers a waiting caller 75 busy at its deadline, blaming the daemon, not the caller', async () => {
    const result = await submitFile(waiter, 'waiter').result;
    expect(result.code).toBe(75);
    expect(result.stderr).toMatch(/too many submissions at once: busy: no file-read slot came free within 3 s/);
    const line = await ms.waitForSubmission((l) => l.user === 'mstslotwait');
    expect(line.status).toBe('overload');
  }, 30_000);

  it('lets a caller that goes away while waiting leave the line at once', async () => {
    const { child, result } = submitFile(departed, 'departed');
    await until(async () => (await status(ms.controlSocketPath)).in_flight === 2, 'the second caller to be waiting');
    child.kill('SIGKILL');
    await result;
    const line = await ms.waitForSubmission((l) => l.user === 'mstslotgone');
    // Gone, not timed out: the wait ended with the caller, not at the deadline.
    expect(line.status).toBe('caller-gone');
    await until(async () => (await status(ms.controlSocketPath)).in_flight === 1, 'the departed caller to be gone');
    // The holder, still waiting for its MTA, is the only one left.
    expect((await status(ms.controlSocketPath)).in_flight).toBe(1);
  }, 30_000);
});
