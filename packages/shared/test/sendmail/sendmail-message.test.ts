import { describe, expect, it } from 'vitest';
import { withLimits } from '../../src/limits.ts';
import { HeaderSectionReader, type HeaderSection } from '../../src/sendmail/header-section.ts';
import { parseSendmailCommand } from '../../src/sendmail/sendmail-command.ts';
import { buildSendmailEnvelope, displayName, fromValue, gecosFullName, headerRecipients, postfixDate, rewriteHeader, rfc5322Date } from '../../src/sendmail/sendmail-message.ts';
import { expectSubmissionError } from '../envelope/expect-submission-error.ts';

function section(text: string): HeaderSection {
  const reader = new HeaderSectionReader({ dotEnds: true });
  return reader.write(Buffer.from(text, 'utf8')) !== null ? (reader.section as HeaderSection) : reader.end();
}

const caller = { userName: 'alice', uid: 1000 };
const facts = { now: new Date(Date.UTC(2026, 10, 24, 12, 0, 0)), hostName: 'host.example', unique: 'abc123' };

describe('headerRecipients (-t)', () => {
  it('takes To, Cc and Bcc, naming each line', () => {
    const found = headerRecipients(section('To: a@x.example, B <b@x.example>\nSubject: s\nCc: c@x.example\nBcc: d@x.example,\n e@x.example\n\n'));
    expect(found.map((r) => [r.address.text, r.line])).toEqual([
      ['a@x.example', 1],
      ['b@x.example', 1],
      ['c@x.example', 3],
      ['d@x.example', 4],
      ['e@x.example', 4],
    ]);
  });

  it('keeps To, Cc and Bcc when the Resent- fields name no recipient field, as Postfix does', () => {
    const found = headerRecipients(section('To: old@x.example\nResent-From: r@x.example\nResent-Date: now\n\n'));
    expect(found.map((f) => f.address.text)).toEqual(['old@x.example']);
    const none = headerRecipients(section('To: old@x.example\nResent-To: undisclosed:;\n\n'));
    expect(none).toEqual([]);
  });

  it('takes only the Resent- recipient fields once a Resent- recipient field is there', () => {
    const found = headerRecipients(section('To: old@x.example\nResent-Date: now\nResent-Cc: new@x.example\nResent-Bcc: hidden@x.example\n\n'));
    expect(found.map((r) => r.address.text)).toEqual(['new@x.example', 'hidden@x.example']);
  });

  it('refuses a bad address naming its line, and a field that is not UTF-8', () => {
    expectSubmissionError(() => headerRecipients(section('Subject: s\nTo: a b c\n\n')), { outcome: 'recipient-syntax', line: 2, attribute: 'recipient' });
    const reader = new HeaderSectionReader({ dotEnds: true });
    reader.write(Buffer.concat([Buffer.from('To: a'), Buffer.from([0xff]), Buffer.from('@x.example\n\n')]));
    expectSubmissionError(() => headerRecipients(reader.section as HeaderSection), { outcome: 'message-syntax', line: 1, detail: /not valid UTF-8/ });
  });
});

describe('buildSendmailEnvelope', () => {
  it('puts the command line first, adds -t recipients, drops repeats, and applies -N to every recipient', () => {
    const command = parseSendmailCommand(['-t', '-N', 'failure', '-V', 'env1', '-R', 'full', 'a@x.example', 'b@x.example']);
    const envelope = buildSendmailEnvelope(command, section('To: b@x.example, c@x.example\n\n'), caller);
    expect(envelope.sender.text).toBe('alice');
    expect(envelope.sender.unqualified).toBe(true);
    expect(envelope.recipients.map((r) => r.address.text)).toEqual(['a@x.example', 'b@x.example', 'c@x.example']);
    expect(envelope.recipients.every((r) => r.notify?.join() === 'FAILURE')).toBe(true);
    expect(envelope).toMatchObject({ envelopeId: 'env1', returnOption: 'FULL' });
    expect(envelope.asserted).toEqual(['sender', 'recipient', 'dsn-notify-options', 'dsn-envelope-id', 'dsn-return-option']);
  });

  it('ignores the header recipients without -t', () => {
    const envelope = buildSendmailEnvelope(parseSendmailCommand(['a@x.example']), section('To: b@x.example\n\n'), caller);
    expect(envelope.recipients.map((r) => r.address.text)).toEqual(['a@x.example']);
  });

  it('takes -f over the login name, and needs -f when the caller has no login name', () => {
    expect(buildSendmailEnvelope(parseSendmailCommand(['-f', '<>', 'a@x.example']), section('\n'), caller).sender.text).toBe('');
    expectSubmissionError(() => buildSendmailEnvelope(parseSendmailCommand(['a@x.example']), section('\n'), { userName: null, uid: 4242 }), {
      outcome: 'usage',
      detail: /uid 4242 has no login name.*-f/,
    });
  });

  it('refuses no recipients at all as a bad command line, groups giving none', () => {
    expectSubmissionError(() => buildSendmailEnvelope(parseSendmailCommand([]), section('\n'), caller), { outcome: 'usage', detail: /no recipients/ });
    expectSubmissionError(() => buildSendmailEnvelope(parseSendmailCommand(['-t']), section('To: undisclosed-recipients:;\n\n'), caller), {
      outcome: 'usage',
      detail: /no recipients.*-t/,
    });
  });

  it('applies the recipient limit', () => {
    const to = Array.from({ length: 4 }, (_, i) => `r${i}@x.example`).join(', ');
    expectSubmissionError(() => buildSendmailEnvelope(parseSendmailCommand(['-t']), section(`To: ${to}\n\n`), caller, withLimits({ maxRecipients: 3 })), {
      outcome: 'over-limit',
      line: 1,
    });
  });
});

describe('rewriteHeader', () => {
  const sender = { text: 'alice@x.example', utf8: false, unqualified: false };
  const nullSender = { text: '', utf8: false, unqualified: false };
  const mta = { ...facts, completion: 'mta' as const };

  it('removes Bcc, Resent-Bcc, Content-Length and Return-Path with their continuation lines, keeping every other byte', () => {
    const text = 'To: a@x.example\r\nBcc: b@x.example,\n\tc@x.example\nReturn-Path: <r@x>\nFrom: f@x.example\nContent-length: 12\nDate: d\nMessage-ID: <m@x>\n\n';
    const header = rewriteHeader(section(text), parseSendmailCommand(['-t']), sender, facts);
    expect(header.bytes.toString()).toBe('To: a@x.example\r\nFrom: f@x.example\nDate: d\nMessage-ID: <m@x>\n\n');
    expect(header).toMatchObject({ added: [], addedOctets: 0, removedLines: 4, lineCount: 5 });
  });

  it('daemon completion: adds Message-Id, Date and From at the end, in Postfix\'s order and forms', () => {
    const header = rewriteHeader(section('Subject: s\n\n'), parseSendmailCommand(['-F', 'Ann Example', 'a@x.example']), sender, facts);
    const lines = header.bytes.toString().split('\n');
    expect(lines[0]).toBe('Subject: s');
    expect(lines[1]).toBe('Message-Id: <20261124120000.ABC123@host.example>');
    expect(lines[2]).toMatch(/^Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), [ \d]\d Nov 2026 \d\d:\d\d:00 [+-]\d{4}( \([A-Z]+\))?$/);
    expect(lines[3]).toBe('From: Ann Example <alice@x.example>');
    expect(header.lineCount).toBe(5);
    expect(header.addedOctets).toBe(header.bytes.length - 'Subject: s\n\n'.length);
  });

  it('daemon completion: the bare address without a full name, MAILER-DAEMON for the null sender', () => {
    expect(rewriteHeader(section('Subject: s\n\n'), parseSendmailCommand(['a@x.example']), sender, facts).added[2]).toBe('From: alice@x.example');
    const bounce = rewriteHeader(section('Subject: s\n\n'), parseSendmailCommand(['-F', 'Name', 'a@x.example']), nullSender, facts);
    expect(bounce.added[2]).toBe('From: MAILER-DAEMON');
  });

  it('mta completion: adds nothing without a full name, and nothing for the null sender', () => {
    expect(rewriteHeader(section('Subject: s\n\n'), parseSendmailCommand(['a@x.example']), sender, mta).added).toEqual([]);
    expect(rewriteHeader(section('Subject: s\n\n'), parseSendmailCommand(['-F', 'Name', 'a@x.example']), nullSender, mta).added).toEqual([]);
    expect(rewriteHeader(section('Subject: s\n\n'), parseSendmailCommand(['-F', '', 'a@x.example']), sender, { ...mta, fullName: 'Gecos Name' }).added).toEqual([]);
  });

  it('mta completion: with a full name adds the From, and the Message-Id and Date that Postfix puts before it', () => {
    const header = rewriteHeader(section('Subject: s\nDate: d\n\n'), parseSendmailCommand(['a@x.example']), sender, { ...mta, fullName: 'Gecos Name' });
    expect(header.added).toEqual(['Message-Id: <20261124120000.ABC123@host.example>', 'From: Gecos Name <alice@x.example>']);
    expect(rewriteHeader(section('From: me\n\n'), parseSendmailCommand(['a@x.example']), sender, { ...mta, fullName: 'Gecos Name' }).added).toEqual([]);
    // -F wins over the user database.
    expect(rewriteHeader(section('\n'), parseSendmailCommand(['-F', 'Given', 'a@x.example']), sender, { ...mta, fullName: 'Gecos' }).added[2]).toBe('From: Given <alice@x.example>');
  });

  it('adds the Resent- fields when the message has a Resent- field', () => {
    const header = rewriteHeader(section('From: a@x\nDate: d\nResent-To: c\n\n'), parseSendmailCommand(['c@x']), sender, { ...mta, fullName: 'N' });
    expect(header.added.map((l) => l.split(':')[0])).toEqual(['Resent-Message-Id', 'Resent-Date', 'Resent-From']);
    expect(header.added[2]).toBe('Resent-From: N <alice@x.example>');
  });

  it('mta completion: a message whose only Resent- field was a removed Resent-Bcc still gets the Resent- fields', () => {
    const header = rewriteHeader(section('From: a@x\nResent-Bcc: h@x\n\n'), parseSendmailCommand(['c@x']), sender, mta);
    expect(header.added.map((l) => l.split(':')[0])).toEqual(['Resent-Message-Id', 'Resent-Date', 'Resent-From']);
    expect(header.added[2]).toBe('Resent-From: alice@x.example');
  });

  it('ends a last line written without a line end before adding fields', () => {
    const header = rewriteHeader(section('Subject: s'), parseSendmailCommand(['a@x.example']), sender, facts);
    expect(header.bytes.toString()).toMatch(/^Subject: s\nMessage-Id: /);
  });

  it('recognizes the fields whatever their case', () => {
    const header = rewriteHeader(section('FROM: x@x.example\ndate: d\nmessage-id: <m@x>\n\n'), parseSendmailCommand(['a@x.example']), sender, facts);
    expect(header.added).toEqual([]);
  });
});

describe('From, as added', () => {
  it('writes the full name as Postfix\'s cleanup does (header_from_format = standard)', () => {
    expect(displayName('Ann Example')).toBe('Ann Example');
    expect(displayName('Evil\r\nBcc: all@x.example\u0007')).toBe('"Evil  Bcc: all@x.example"');
    expect(displayName('  Ann \t  Example ')).toBe('Ann Example');
    expect(displayName('Example, Ann (ops)')).toBe('"Example, Ann (ops)"');
    expect(displayName('say "hi" \\ bye')).toBe('"say \\"hi\\" \\\\ bye"');
    expect(displayName('J. Doe')).toBe('"J. Doe"');
    expect(displayName('50% off')).toBe('"50% off"');
    expect(displayName('a | b')).toBe('a|b');
    expect(displayName('Jörg Müller')).toBe('Jörg Müller');
    expect(displayName('Müller, Jörg')).toBe('"Müller, Jörg"');
    expect(displayName('   ')).toBe('');
  });

  it('never writes a line break or another control character into the header', () => {
    expect(displayName('Ann\r\nBcc: x@y')).toBe('"Ann  Bcc: x@y"');
    expect(displayName('Ann\nEve')).toBe('Ann Eve');
    expect(displayName('a\x01b\x7fc d')).toBe('"abc" d');
    expect(displayName('a\x1b[31m, b')).toBe('"a[31m, b"');
    for (const name of ['\r\n\r\n', 'x\n.\n', '\u0085\u009b']) expect(fromValue(name, { text: 'a@x', utf8: false, unqualified: false })).not.toMatch(/[\x00-\x1f\x7f-\x9f]/);
  });

  it('takes the full name from GECOS as Postfix\'s sendmail does', () => {
    expect(gecosFullName('Full Name,room 1,555-1234,', 'ann')).toBe('Full Name');
    expect(gecosFullName('& Example;x', 'ann')).toBe('Ann Example');
    expect(gecosFullName('a%b', 'ann')).toBe('a');
    expect(gecosFullName('', 'ann')).toBe('');
    expect(gecosFullName('Jörg', 'j')).toBe('Jörg');
  });

  it('names MAILER-DAEMON alone for the null sender, the bare address without a name', () => {
    expect(fromValue(undefined, { text: '', utf8: false, unqualified: false })).toBe('MAILER-DAEMON');
    expect(fromValue('Bounce', { text: '', utf8: false, unqualified: false })).toBe('MAILER-DAEMON');
    expect(fromValue('', { text: 'a@x', utf8: false, unqualified: false })).toBe('a@x');
    expect(fromValue(' ', { text: 'a@x', utf8: false, unqualified: false })).toBe('<a@x>');
  });

  it('writes the date as RFC 5322 does, and as Postfix\'s mail_date() does', () => {
    expect(rfc5322Date(new Date(2026, 0, 5, 7, 8, 9))).toMatch(/^Mon, 5 Jan 2026 07:08:09 [+-]\d{4}$/);
    expect(postfixDate(new Date(2026, 0, 5, 7, 8, 9))).toMatch(/^Mon,  5 Jan 2026 07:08:09 [+-]\d{4}( \([A-Z]+\))?$/);
    expect(postfixDate(new Date(2026, 0, 15, 7, 8, 9))).toMatch(/^Thu, 15 Jan 2026 /);
  });
});
