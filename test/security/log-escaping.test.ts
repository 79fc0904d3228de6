/**
 * The daemon's log reads as what it says: a caller's bidi override and
 * other invisible characters in the sender, the SASL user name or a
 * certificate subject appear in the log line as visible escapes (\u202e),
 * never as the characters themselves; values with ESC or another control are
 * refused and described, never echoed; the caller's reply line carries no
 * format character either. Real set-gid helper, real user, private Postfix.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tearDown } from '../support/tear-down.ts';
import { startMailPath } from '../support/mail-path.ts';
import { MailsubmitUnderTest } from '../support/mailsubmit-under-test.ts';
import { PrivatePostfix } from '../support/private-postfix.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import { ensureUser, type TestUser } from '../support/test-accounts.ts';

// Raw in a value the log carried: controls, format characters, separators, lone surrogates.
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;

function input(envelope: readonly string[], tag: string): Buffer {
  return Buffer.from([...envelope, 'recipient: rcpt@example.org', '', `Subject: ${tag}`, `Message-ID: <${tag}@example.net>`, '', 'body', ''].join('\n'), 'utf8');
}

/** Every string in a parsed log line, at any depth. */
function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (value !== null && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => [k, ...strings(v)]);
  return [];
}

describe.skipIf(!PrivatePostfix.isAvailable())('caller text in the log and the reply', () => {
  const sink = new RecordingSink();
  let postfix: PrivatePostfix;
  let ms: MailsubmitUnderTest;
  let user: TestUser;

  beforeAll(async () => {
    ({ postfix, ms } = await startMailPath(sink));
    user = ensureUser('mstlogesc');
    ms.setAuthorizations([`${user.name} client sasl tls`]);
  }, 30_000);

  afterAll(() => tearDown(ms, postfix, sink));

  it('logs a delivered sender, SASL user name and certificate subject with format characters as escapes', async () => {
    const sender = 'gro.elpmaxe\u202e@example.net';
    const envelope = [`sender: <${sender}>`, 'sasl_method: PLAIN', 'sasl_username: bob\u202e\u2066admin\u2069', 'ccert_subject: CN=a\u200bb\ufeff\u2028'];
    const result = await ms.submit(user, input(envelope, 'bidi-sender'), ['-v']);
    expect(result.code).toBe(0);
    const queueId = /queued as ([0-9A-F]+)/.exec(result.stderr)?.[1];
    const line = await ms.waitForSubmission((l) => l.queue_id === queueId);
    expect(line.sender).toBe('gro.elpmaxe\\u202e@example.net');
    expect(line.sasl).toMatchObject({ username: 'bob\\u202e\\u2066admin\\u2069' });
    expect(line.tls).toMatchObject({ ccertSubject: 'CN=a\\u200bb\\ufeff\\u2028' });
    for (const text of strings(line)) expect(text).not.toMatch(UNSAFE);
  });

  it('replies to a refused bidi sender without the raw character', async () => {
    ms.setAuthorizations([`${user.name} client sasl tls sender=*@example.org`]);
    try {
      const result = await ms.submit(user, input(['sender: <gro.elpmaxe\u202e@evil.example>'], 'bidi-refused'));
      expect(result.code).toBe(77);
      expect(result.stderr).toBe('mailsubmit: not permitted to assert this attribute: attribute "sender": may not use the envelope sender <gro.elpmaxe\\u202e@evil.example>\n');
      const line = await ms.waitForSubmission((l) => l.uid === user.uid && l.exit === 77);
      expect(line.reason).toBe('not permitted to assert this attribute: attribute "sender": may not use the envelope sender <gro.elpmaxe\\u202e@evil.example>');
      for (const text of strings(line)) expect(text).not.toMatch(UNSAFE);
    } finally {
      ms.setAuthorizations([`${user.name} client sasl tls`]);
    }
  });

  it.each([
    ['a client name with U+202E', ['sender: <a@example.net>', 'client_name: evil\u202eexample.com'], /client_name\\": non-ASCII characters are not allowed/],
    ['an attribute name with ESC', ['sender: <a@example.net>', 'x\u001b[2J: 1'], /an escape character \(0x1B\) in the attribute name/],
    ['a sender with U+202E and ESC', ['sender: <a\u202e\u001b[31m@example.net>'], /the value has an escape character \(0x1B\)/],
  ])('refuses %s and logs the reason escaped, replying without the raw character', async (_name, envelope, shown) => {
    const tag = `escape-${Math.random().toString(36).slice(2)}`;
    const result = await ms.submit(user, input(envelope, tag));
    expect(result.code).toBe(65);
    expect(result.stderr).not.toMatch(/[\p{Cf}\u001b]/u);
    const line = await ms.waitForSubmission((l) => l.uid === user.uid && l.exit === 65 && !('seen' in l));
    line.seen = true;
    expect(JSON.stringify(line)).toMatch(shown);
    for (const text of strings(line)) expect(text).not.toMatch(UNSAFE);
  });
});
