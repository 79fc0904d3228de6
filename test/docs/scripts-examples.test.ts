/**
 * docs/scripts.md runs as written: every block marked `<!-- example: NAME -->`
 * is extracted and run as a test user with the helper (and its
 * mailsubmit-sendmail link) first on PATH, against a test daemon whose
 * downstream is a recording sink. The retry example is made to meet a
 * temporary failure (the sink answers MAIL with 451) and must retry until
 * the message is accepted, and give up at once on a permanent one.
 */
import { spawn } from 'node:child_process';
import { readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MailsubmitUnderTest } from '../support/mailsubmit-under-test.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import { tearDown } from '../support/tear-down.ts';
import { ensureUser, type TestUser } from '../support/test-accounts.ts';

const DOC = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'scripts.md'), 'utf8');

/** The marked examples: name -> script text. */
function examples(markdown: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const match of markdown.matchAll(/<!-- example: ([\w-]+) -->\n```sh\n([\s\S]*?)\n```\n/g)) {
    found.set(match[1] as string, `${match[2] as string}\n`);
  }
  return found;
}

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

const isRoot = process.getuid?.() === 0;

describe('the examples in docs/scripts.md', () => {
  const scripts = examples(DOC);

  it('are all found: the reports, the retry loop and the exit-code check', () => {
    expect([...scripts.keys()].sort()).toEqual(['exit-codes', 'report-native', 'report-sendmail', 'send-with-retry']);
  });

  describe.skipIf(!isRoot && !process.env.CI)('run against a test daemon', () => {
    const sink = new RecordingSink();
    let ms: MailsubmitUnderTest;
    let user: TestUser;
    let bin: string;

    beforeAll(async () => {
      ms = await MailsubmitUnderTest.start({ downstreamPort: await sink.listen() });
      bin = dirname(ms.helperPath);
      symlinkSync(ms.helperPath, join(bin, 'mailsubmit-sendmail'));
      for (const [name, text] of scripts) writeFileSync(join(ms.dir, `${name}.sh`), text, { mode: 0o755 });
      writeFileSync(join(ms.dir, 'note.txt'), 'Subject: retried note\n\nThis one had to wait.\n.\nThe dot above is data (-i).\n', { mode: 0o644 });
      user = ensureUser('mstscripts');
      ms.setAuthorizations(['mstscripts']);
    }, 30_000);

    afterAll(() => tearDown(ms, undefined, sink));

    /** Starts an example as the test user, as cron would: a plain PATH with the helper's directory first. */
    function start(name: string, args: readonly string[] = [], env: Record<string, string> = {}) {
      const child = spawn('/bin/sh', [join(ms.dir, `${name}.sh`), ...args], {
        uid: user.uid,
        gid: user.gid,
        cwd: ms.dir,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { PATH: `${bin}:/usr/bin:/bin`, ...env },
      });
      let stdout = '';
      let stderr = '';
      const stderrWaiters: (() => void)[] = [];
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => {
        stderr += c.toString();
        for (const wake of stderrWaiters.splice(0)) wake();
      });
      const done = new Promise<Run>((resolve, reject) => {
        child.once('error', reject);
        child.once('close', (code) => resolve({ code, stdout, stderr }));
      });
      /** Resolves once standard error matches (or the script ends). */
      const stderrMatching = async (re: RegExp) => {
        let ended = false;
        void done.then(() => {
          ended = true;
          for (const wake of stderrWaiters.splice(0)) wake();
        });
        while (!re.test(stderr) && !ended) await new Promise<void>((resolve) => stderrWaiters.push(resolve));
        return stderr;
      };
      return { done, stderrMatching };
    }

    it('report-native: mails the report through mailsubmit, exit 0', async () => {
      const result = await start('report-native').done;
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      const message = await sink.waitForMessage((m) => m.mailFrom.startsWith('MAIL FROM:<mstscripts@example.org>'));
      expect(message.rcptTo[0]).toMatch(/^RCPT TO:<ops@example\.org>/);
      expect(message.data.toString()).toMatch(/\r\nSubject: disk usage on [^\r]+\r\nDate: [^\r]+\r\n\r\nFilesystem/);
    });

    it('report-sendmail: takes the recipient from To: (-t), exit 0', async () => {
      const before = sink.messages.length;
      const result = await start('report-sendmail').done;
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      const message = await sink.waitForMessage((m) => sink.messages.indexOf(m) >= before && m.mailFrom.startsWith('MAIL FROM:<mstscripts>'));
      expect(message.rcptTo[0]).toMatch(/^RCPT TO:<ops@example\.org>/);
      // This downstream is a recording SMTP server, not Postfix: it takes no XFORWARD SOURCE=LOCAL, so nothing adds the
      // Message-Id, Date and From Postfix's cleanup would add (the daemon adds only a From with a full name; this user has none).
      expect(message.data.toString()).toMatch(/^To: ops@example\.org\r\nSubject: disk usage on [^\r]+\r\n(\r\n)?Filesystem/);
    });

    it('send-with-retry: retries a temporary failure (75: the daemon not running) until the message is taken', async () => {
      // The MTA's own 4xx no longer reaches a sendmail caller (the local queue takes the message); the daemon's absence does.
      await ms.stopDaemon();
      const run = start('send-with-retry', ['note.txt', 'retry@example.org'], { RETRY_DELAY: '1', RETRY_TRIES: '20' });
      try {
        await run.stderrMatching(/temporary failure, retrying in 1s/);
      } finally {
        await ms.startDaemon();
      }
      const result = await run.done;
      expect(result.code).toBe(0);
      expect(result.stderr).toMatch(/^(mailsubmit-sendmail: the mailsubmit daemon is not running[^\n]*\nsend-with-retry: temporary failure, retrying in \d+s\n)+$/);
      const message = await sink.waitForMessage((m) => m.rcptTo.some((r) => r.startsWith('RCPT TO:<retry@example.org>')));
      expect(message.data.toString()).toContain('This one had to wait.\r\n.\r\nThe dot above is data (-i).\r\n');
    });

    it('send-with-retry: gives up at once on a permanent failure', async () => {
      const attempts = sink.commandLog.length;
      const result = await start('send-with-retry', ['note.txt', 'two words@example.org'], { RETRY_DELAY: '1' }).done;
      expect(result.code).toBe(65);
      expect(result.stderr).toMatch(/malformed recipient address[^\n]*\nsend-with-retry: failed with exit 65, not retried\n$/);
      expect(sink.commandLog.length).toBe(attempts);
    });

    it('exit-codes: names what each status means', async () => {
      const sent = await start('exit-codes', ['note.txt', 'checked@example.org']).done;
      expect([sent.code, sent.stdout]).toEqual([0, "sent: on stable storage, the MTA's queue or mailsubmit's\n"]);
      await ms.stopDaemon();
      try {
        const later = await start('exit-codes', ['note.txt', 'busy@example.org']).done;
        expect([later.code, later.stdout]).toEqual([75, 'temporary failure: keep the message and retry later\n']);
      } finally {
        await ms.startDaemon();
      }
      const bad = await start('exit-codes', ['note.txt', 'a b@example.org']).done;
      expect([bad.code, bad.stdout]).toEqual([65, 'malformed message or address: do not retry unchanged\n']);
    });
  });
});
