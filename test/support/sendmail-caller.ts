/**
 * A caller of the sendmail front door as cron, a backup script or a PHP
 * site is one: the helper started under the name mailsubmit-sendmail (a
 * link beside the test's own helper, as install.sh links it), run as a
 * real unprivileged user, the message on its standard input.
 *
 *   sendmailName(ms);
 *   const result = await sendmail(ms, user, ['-i', '-f', 'cron@example.org', 'ops@example.org'], message);
 */
import { spawn } from 'node:child_process';
import { existsSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { childOutput, type ChildOutput } from './child-output.ts';
import type { MailsubmitUnderTest } from './mailsubmit-under-test.ts';
import type { TestUser } from './test-accounts.ts';

/** The path of mailsubmit-sendmail beside the instance's helper, linked on first use. */
export function sendmailName(ms: MailsubmitUnderTest): string {
  const path = join(dirname(ms.helperPath), 'mailsubmit-sendmail');
  if (!existsSync(path)) symlinkSync(ms.helperPath, path);
  return path;
}

/** Runs mailsubmit-sendmail as `who` with `input` on stdin; the caller's exit code (or signal), stdout and stderr. */
export function sendmail(ms: MailsubmitUnderTest, who: Pick<TestUser, 'uid' | 'gid'>, args: readonly string[], input: string | Buffer): Promise<ChildOutput> {
  const child = spawn(sendmailName(ms), args, { uid: who.uid, gid: who.gid, stdio: ['pipe', 'pipe', 'pipe'], env: {} });
  // A caller the daemon answered before it read all of stdin sees EPIPE: its exit code says what happened.
  child.stdin.on('error', () => undefined);
  const output = childOutput(child).finally(() => child.stdin.destroy());
  child.stdin.end(input);
  return output;
}
