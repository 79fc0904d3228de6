/**
 * The daemon's standard output (its log) closed under it, as when whoever
 * read it goes away: the log lines are lost, the mail is not. The daemon
 * must go on serving, not die of EPIPE on its next log line.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAEMON_BUNDLE, MailsubmitUnderTest } from '../support/mailsubmit-under-test.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import { tearDown } from '../support/tear-down.ts';
import { ensureUser, type TestUser } from '../support/test-accounts.ts';
import { sleep } from '../support/until.ts';

describe('the log output gone', () => {
  const sink = new RecordingSink();
  let ms: MailsubmitUnderTest;
  let user: TestUser;

  beforeAll(async () => {
    const port = await sink.listen();
    ms = await MailsubmitUnderTest.start({ downstreamPort: port, downstream: `target = "127.0.0.1:${port}"` });
    user = ensureUser('mstlogless');
    ms.setAuthorizations([user.name]);
  }, 30_000);

  afterAll(() => tearDown(ms, undefined, sink));

  it('keeps delivering, says so once on standard error, and stays the same process', async () => {
    await ms.stopDaemon();
    rmSync(ms.socketPath, { force: true });
    rmSync(ms.controlSocketPath, { force: true });
    const daemon = spawn(process.execPath, [DAEMON_BUNDLE, '-c', ms.configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    daemon.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      await ms.waitForSockets(daemon, () => `mailsubmitd did not start: ${stderr}`);
      // The reading end closed: every write to the daemon's standard output now fails with EPIPE.
      daemon.stdout.destroy();
      const results = [];
      for (let i = 0; i < 3; i++) {
        results.push(await ms.submit(user, `sender: a@example.org\nrecipient: b@example.org\n\nSubject: ${i}\n\nbody ${i}\n`));
        await sleep(300);
      }
      expect(results.map((r) => r.code)).toEqual([0, 0, 0]);
      await sink.waitForMessages(3);
      expect(daemon.exitCode).toBeNull();
      expect(daemon.signalCode).toBeNull();
      expect(stderr.match(/cannot write the log to standard output \(EPIPE\)/g)).toHaveLength(1);
    } finally {
      daemon.kill('SIGTERM');
    }
  }, 60_000);
});
