/**
 * The privileged path end to end, in its simplest form: a non-root user
 * pipes the contract's example into the set-gid helper; the daemon streams
 * it into a private Postfix; the recording sink gets it byte for byte.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tearDown } from '../support/tear-down.ts';
import { startMailPath } from '../support/mail-path.ts';
import { MailsubmitUnderTest } from '../support/mailsubmit-under-test.ts';
import { PrivatePostfix } from '../support/private-postfix.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import { ensureUser, type TestUser } from '../support/test-accounts.ts';

const EXAMPLE = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'examples', 'submission.txt'));

describe.skipIf(!PrivatePostfix.isAvailable())('mailsubmit end to end', () => {
  const sink = new RecordingSink();
  let postfix: PrivatePostfix;
  let ms: MailsubmitUnderTest;
  let alice: TestUser;

  beforeAll(async () => {
    ({ postfix, ms } = await startMailPath(sink));
    alice = ensureUser('mstalice');
    ms.setAuthorizations(['mstalice client sasl']);
  });

  afterAll(() => tearDown(ms, postfix, sink));

  it('delivers the contract example, exit 0 only after Postfix queued it', async () => {
    const result = await ms.submit(alice, EXAMPLE, ['-v']);
    expect(result.stderr).toMatch(/^mailsubmit: queued as [0-9A-F]+\n$/);
    expect(result.code).toBe(0);
    const queueId = /queued as ([0-9A-F]+)/.exec(result.stderr)?.[1] ?? '';
    await postfix.waitForLog(new RegExp(`${queueId}: from=<alice@example.net>`));
    const [message] = await sink.waitForMessages(1);
    expect(message?.mailFrom).toMatch(/^MAIL FROM:<alice@example\.net> SIZE=\d+ ENVID=20261124-42 RET=HDRS$/);
    expect(message?.rcptTo).toEqual([
      'RCPT TO:<bob@example.org> ORCPT=rfc822;bob@example.org NOTIFY=FAILURE,DELAY',
      'RCPT TO:<carol@example.org> ORCPT=rfc822;carol@example.org',
    ]);
    const body = EXAMPLE.toString('latin1').split('\n\n').slice(1).join('\n\n').replace(/\n/g, '\r\n');
    const delivered = message?.data.toString('latin1') ?? '';
    expect(delivered.endsWith(body)).toBe(true);
    // XFORWARD is for logging: Postfix's Received header names the re-injection hop,
    // its log names the original client.
    expect(delivered).toMatch(/^Received: from localhost \(localhost \[127\.0\.0\.1\]\)/);
    expect(postfix.log()).toContain(`${queueId}: client=localhost[127.0.0.1], orig_client=mx.example.net[192.0.2.25]`);
  });

  it('refuses a user who is not on the list with 77, from the helper, before any mail is read', async () => {
    const bob = ensureUser('mstbob');
    const result = await ms.submit(bob, EXAMPLE);
    expect(result.stderr).toMatch(/not authorized/);
    expect(result.code).toBe(77);
  });
});
