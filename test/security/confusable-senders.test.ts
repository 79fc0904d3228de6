/**
 * A listed user with a narrow sender pattern, through the real set-gid
 * helper, the daemon and a private Postfix: senders that only look like an
 * allowed domain (a Kelvin sign, dotted or dotless i, long s, fullwidth
 * letters, a ligature, Cyrillic or Greek letters, an invisible character
 * IDNA would drop) are refused with 77 and never reach the MTA; the same
 * domain written as a U-label or an A-label, in any ASCII case, is the
 * allowed domain and is delivered.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tearDown } from '../support/tear-down.ts';
import { startMailPath } from '../support/mail-path.ts';
import { MailsubmitUnderTest } from '../support/mailsubmit-under-test.ts';
import { PrivatePostfix } from '../support/private-postfix.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import { ensureUser, type TestUser } from '../support/test-accounts.ts';

function input(sender: string, tag: string): Buffer {
  return Buffer.from(
    [`sender: <${sender}>`, 'recipient: rcpt@example.org', '', `From: ${tag}@example.net`, `Subject: ${tag}`, `Message-ID: <${tag}@example.net>`, '', 'body', ''].join('\n'),
    'utf8',
  );
}

describe.skipIf(!PrivatePostfix.isAvailable())('sender patterns against confusable senders, end to end', () => {
  const sink = new RecordingSink();
  let postfix: PrivatePostfix;
  let ms: MailsubmitUnderTest;
  let user: TestUser;

  beforeAll(async () => {
    ({ postfix, ms } = await startMailPath(sink));
    user = ensureUser('mstconfus');
  }, 30_000);

  afterAll(() => tearDown(ms, postfix, sink));

  describe('with sender=*@example.com,*@xn--bcher-kva.example', () => {
    beforeAll(() => ms.setAuthorizations([`${user.name} sender=*@example.com,*@xn--bcher-kva.example`]));

    it.each([
      ['KELVIN SIGN', 'user@exampl\u212a.com'],
      ['KELVIN SIGN, upper-case rest', 'user@EXAMPL\u212a.COM'],
      ['dotted capital I (U+0130)', 'user@\u0130example.com'],
      ['dotless i (U+0131)', 'user@examp\u0131e.com'],
      ['long s (U+017F)', 'user@\u017fub.example.com'],
      ['fullwidth letters', 'user@\uff45\uff58ample.com'],
      ['the ff ligature (U+FB00)', 'user@o\ufb00ice.example.com'],
      ['Cyrillic e', 'user@\u0435xample.com'],
      ['Greek omicron', 'user@examp\u03bfle.com'],
      ['a zero-width space IDNA would drop', 'user@exam\u200bple.com'],
      ['a soft hyphen IDNA would drop', 'user@exam\u00adple.com'],
      ['dotless i in the IDN label', 'user@b\u00fccher.exampl\u0131e'],
      ['the A-label of a Cyrillic look-alike', 'user@xn--xample-2of.com'],
    ])('refuses %s with 77 attribute-not-permitted, and nothing reaches the MTA', async (_name, sender) => {
      const before = sink.messages.length;
      const result = await ms.submit(user, input(sender, 'confusable'));
      expect(result.stderr).toMatch(/^mailsubmit: not permitted to assert this attribute: attribute "sender": may not use the envelope sender </);
      expect(result.code).toBe(77);
      const line = await ms.waitForSubmission((l) => l.status === 'attribute-not-permitted' && l.uid === user.uid && !('seen' in l));
      line.seen = true;
      expect(line).toMatchObject({ exit: 77 });
      expect(line).not.toHaveProperty('queue_id');
      expect(sink.messages.length).toBe(before);
    });

    it.each([
      ['the ASCII domain', 'user@example.com'],
      ['the ASCII domain in upper case', 'User@EXAMPLE.COM'],
      ['the IDN domain as its U-label', 'user@b\u00fccher.example'],
      ['the IDN domain as an upper-case U-label', 'user@B\u00dcCHER.example'],
      ['the IDN domain as its A-label', 'user@xn--bcher-kva.example'],
      ['the IDN domain as a mixed-case A-label', 'user@Xn--BCHER-kva.EXAMPLE'],
    ])('delivers %s', async (_name, sender) => {
      const result = await ms.submit(user, input(sender, 'allowed'), ['-v']);
      expect(result.stderr).toMatch(/^mailsubmit: queued as [0-9A-F]+\n$/);
      expect(result.code).toBe(0);
      const queueId = /queued as ([0-9A-F]+)/.exec(result.stderr)?.[1] as string;
      const arrived = await sink.waitForMessage((m) => m.data.subarray(0, 400).toString('latin1').includes(` id ${queueId}`));
      // The sink keeps the command's octets as latin1.
      expect(Buffer.from(arrived.mailFrom, 'latin1').toString('utf8')).toContain(`<${sender}>`);
    });
  });

  describe('with the IDN domain written as a U-label on the list', () => {
    beforeAll(() => ms.setAuthorizations([`${user.name} sender=*@b\u00fccher.example`]));

    it('takes the A-label as the same domain, and refuses a homoglyph of it', async () => {
      const same = await ms.submit(user, input('user@XN--BCHER-KVA.example', 'a-label'));
      expect(same.code).toBe(0);
      const other = await ms.submit(user, input('user@b\u00fcch\u0435r.example', 'homoglyph'));
      expect(other.code).toBe(77);
    });
  });
});
