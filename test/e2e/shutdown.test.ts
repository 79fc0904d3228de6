/**
 * SIGTERM with submissions in flight: the daemon stops accepting, lets the
 * submissions that finish within `timeouts.shutdown` complete, aborts the
 * rest without the final dot (their callers get 75, nothing is delivered),
 * and exits 0.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tearDown } from '../support/tear-down.ts';
import { startMailPath } from '../support/mail-path.ts';
import { MailsubmitUnderTest } from '../support/mailsubmit-under-test.ts';
import { PrivatePostfix } from '../support/private-postfix.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import { ensureUser, type TestUser } from '../support/test-accounts.ts';

const HOOK_TIMEOUT_MS = 60_000;
const head = (tag: string) =>
  `sender: <s@example.net>\nrecipient: r@example.org\n\nFrom: s@example.net\nTo: r@example.org\nDate: Tue, 24 Nov 2026 10:00:00 +0000\nMessage-ID: <${tag}@example.net>\nSubject: ${tag}\n\n`;

describe.skipIf(!PrivatePostfix.isAvailable())('orderly stop with submissions in flight', () => {
  const sink = new RecordingSink();
  let postfix: PrivatePostfix;
  let ms: MailsubmitUnderTest;
  let user: TestUser;

  beforeAll(async () => {
    ({ postfix, ms } = await startMailPath(sink, { mailsubmit: { group: `mststop${process.pid}`, timeouts: 'shutdown = 3' } }));
    user = ensureUser(`mststop${process.pid}u`);
    ms.setAuthorizations([user.name]);
  }, HOOK_TIMEOUT_MS);

  afterAll(() => tearDown(ms, postfix, sink), HOOK_TIMEOUT_MS);

  it('finishes what finishes in time, aborts the rest with 75, refuses newcomers, exits 0', async () => {
    const finishing = ms.startSubmission(user, ['-v']);
    finishing.write(head('finishing'));
    const stalled = ms.startSubmission(user);
    stalled.write(`${head('stalled')}${'a line of the stalled message\n'.repeat(20_000)}`);
    // Both must be in the daemon (admitted, reading) before it is told to stop.
    await new Promise((resolve) => setTimeout(resolve, 700));

    const exitCode = ms.stopDaemon('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const late = await ms.submit(user, `${head('late')}body\n`);
    expect(late.code).toBe(75);

    const finished = await finishing.end('the body of the finishing message\n');
    expect(finished.stderr).toMatch(/^mailsubmit: queued as [0-9A-F]+\n$/);
    expect(finished.code).toBe(0);

    const aborted = await stalled.result;
    expect(aborted.stderr).toMatch(/^mailsubmit: .*shutting down.*\n$/);
    expect(aborted.code).toBe(75);
    expect(await exitCode).toBe(0);

    await postfix.flush();
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const subjects = sink.messages.map((m) => /Subject: (\S+)/.exec(m.data.toString('latin1'))?.[1]);
    expect(subjects).toEqual(['finishing']);
    expect(await postfix.queueSize()).toBe(0);
  }, 60_000);
});
