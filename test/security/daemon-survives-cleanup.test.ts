/**
 * A listed caller must not be able to crash the daemon through what happens
 * after its message was accepted. The daemon puts the caller's O_NONBLOCK
 * back before it closes the caller's stdin; a caller that changes other
 * flags on the shared open file description meanwhile (O_NOATIME, which only
 * the owner of the pipe may set) used to make that restore fail with EPERM,
 * uncaught: the daemon died after the MTA had said 250, the caller got 75,
 * retried, and the message was delivered twice.
 *
 * The daemon runs as its own unprivileged user, as installed (root may set
 * O_NOATIME on anything, so the attack needs the real setting).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childOutput } from '../support/child-output.ts';
import { MailsubmitUnderTest } from '../support/mailsubmit-under-test.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import { tearDown } from '../support/tear-down.ts';
import { ensureGroup, ensureUser, type TestUser } from '../support/test-accounts.ts';
import { restartAsUser, type UserDaemon } from '../support/daemon-as-user.ts';

const CALLER = join(import.meta.dirname, 'noatime-caller.py');

describe('a caller that changes its stdin flags while the daemon reads', () => {
  const sink = new RecordingSink();
  let ms: MailsubmitUnderTest;
  let daemon: UserDaemon | undefined;
  let caller: TestUser;
  let files: string;

  beforeAll(async () => {
    ms = await MailsubmitUnderTest.start({ downstreamPort: await sink.listen() });
    caller = ensureUser('mstnoatime');
    const daemonUser = ensureUser('mstnoatimed');
    ms.setAuthorizations(['mstnoatime']);
    daemon = await restartAsUser(ms, daemonUser, ensureGroup(ms.group));
    files = mkdtempSync('/tmp/mailsubmit-noatime-');
  }, 30_000);

  afterAll(async () => {
    await daemon?.stop();
    await tearDown(ms, undefined, sink);
    if (files !== undefined) rmSync(files, { recursive: true, force: true });
  });

  async function submit(subject: string): Promise<{ code: number; stderr: string; nonblock: boolean }> {
    const messageFile = join(files, subject);
    writeFileSync(messageFile, `sender: noatime@example.net\nrecipient: rcpt@example.org\n\nSubject: ${subject}\n\n${'body line\n'.repeat(200)}`);
    const child = spawn('/usr/bin/python3', [CALLER, String(caller.uid), String(caller.gid), ms.helperPath, messageFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    const output = await childOutput(child);
    expect(output.stderr).toBe('');
    return JSON.parse(output.stdout) as { code: number; stderr: string; nonblock: boolean };
  }

  it('answers 0 for a message the MTA accepted, delivers it once, and keeps running', async () => {
    const pid = daemon?.pid;
    const result = await submit('first');
    expect(result).toMatchObject({ code: 0, stderr: '' });
    // The caller's own copy of the description is blocking again.
    expect(result.nonblock).toBe(false);
    const [message] = await sink.waitForMessages(1);
    expect(message?.data.toString()).toContain('Subject: first');
    expect(daemon?.alive()).toBe(true);
    expect(daemon?.pid).toBe(pid);
    expect(daemon?.logLines.filter((line) => line.msg === 'uncaught exception')).toEqual([]);
  });

  it('serves the next caller from the same process, and the first message was not delivered again', async () => {
    const pid = daemon?.pid;
    const result = await submit('second');
    expect(result.code).toBe(0);
    await sink.waitForMessages(2);
    expect(sink.messages.map((m) => /Subject: (\w+)/.exec(m.data.toString())?.[1])).toEqual(['first', 'second']);
    expect(daemon?.alive()).toBe(true);
    expect(daemon?.pid).toBe(pid);
  });
});
