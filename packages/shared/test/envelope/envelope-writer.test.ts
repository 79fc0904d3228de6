/** The writer: canonical output, round trips (asserted order included), and refusal of unsafe values. */
import { describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/envelope/envelope.ts';
import { parseEnvelopeBlock } from '../../src/envelope/envelope-parser.ts';
import { writeEnvelopeBlock } from '../../src/envelope/envelope-writer.ts';
import { expectSubmissionError } from './expect-submission-error.ts';

/** The envelope without the `line` of each recipient: the one field a round trip may change. */
function withoutLines(envelope: Envelope): unknown {
  return { ...envelope, recipients: envelope.recipients.map(({ line: _line, ...rest }) => rest) };
}

function roundTrip(text: string): void {
  const envelope = parseEnvelopeBlock(text);
  const written = writeEnvelopeBlock(envelope);
  expect(withoutLines(parseEnvelopeBlock(written))).toEqual(withoutLines(envelope));
  expect(parseEnvelopeBlock(written).asserted).toEqual(envelope.asserted);
}

describe('writeEnvelopeBlock', () => {
  it('writes canonical names, bracketed addresses and the empty line', () => {
    const text = writeEnvelopeBlock(
      parseEnvelopeBlock(
        'Sender: a@b.example\nRECIPIENT: c@d.example\nDSN_Notify_Options: delay , success\nclient-address: 2001:DB8::1\ndsn-return-option: headers\n\n',
      ),
    );
    expect(text).toBe(
      [
        'sender: <a@b.example>',
        'recipient: <c@d.example>',
        'dsn-notify-options: DELAY,SUCCESS',
        'client_address: [ipv6:2001:db8::1]',
        'dsn-return-option: HDRS',
        '',
        '',
      ].join('\n'),
    );
  });

  it('writes an IPv4 client address in brackets and the null sender as <>', () => {
    const text = writeEnvelopeBlock(parseEnvelopeBlock('client_address: 192.0.2.1\nsender: <>\nrecipient: x\n\n'));
    expect(text).toBe('client_address: [192.0.2.1]\nsender: <>\nrecipient: <x>\n\n');
  });

  it.each([
    ['every attribute', 'protocol_name: ESMTPSA\nhelo_name: [192.0.2.1]\nclient_name: unknown\nclient_address: [ipv6:::1]\nclient_port: 0\nsasl_method: PLAIN\nsasl_username: jösé\nsasl_sender: <auth@x.example>\nccert_subject: CN=x\nccert_issuer: CN=Zürich CA\nccert_fingerprint: 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\nencryption_protocol: TLSv1.3\nencryption_cipher: TLS_AES_256_GCM_SHA384\nencryption_keysize: 256\nsender: <>\ndsn-envelope-id: id+1=2\\3\ndsn-return-option: full\nsize: 20\nrecipient: "a b"@[IPv6:::1]\ndsn-notify-options: never\ndsn-orig-rcpt: utf-8;jösé@x.example\n\n'],
    ['DSN lines before their recipient in asserted order', 'sender: <>\nrecipient: a@b.example\ndsn-orig-rcpt: a@b.example\nsize: 3\nrecipient: c@d.example\ndsn-orig-rcpt: rfc822;x\ndsn-notify-options: success\n\n'],
    ['notify before orcpt on one recipient', 'sender: <>\nrecipient: a@b.example\ndsn-notify-options: delay\ndsn-orig-rcpt: x;y\n\n'],
    ['orcpt before notify on one recipient', 'sender: <>\nrecipient: a@b.example\ndsn-orig-rcpt: x;y\ndsn-notify-options: delay\n\n'],
    ['a single attribute between a recipient and its DSN line', 'recipient: a@b.example\nsize: 9\ndsn-notify-options: never\nsender: <>\n\n'],
    ['the first notify on a later recipient', 'sender: <>\nrecipient: a\nrecipient: b\nhelo_name: h\nrecipient: c\ndsn-notify-options: success\n\n'],
    ['unqualified and UTF-8 addresses', 'sender: <jösé>\nrecipient: postmaster\nrecipient: ü@例え.テスト\n\n'],
    ['orcpt values with a semicolon and spaces', 'sender: <>\nrecipient: a@b\ndsn-orig-rcpt: x-t;a; b ;c\n\n'],
  ])('round-trips %s', (_, text) => {
    roundTrip(text);
  });

  it('refuses a hand-built envelope whose value would break the line', () => {
    const good = parseEnvelopeBlock('sender: <>\nrecipient: a@b.example\n\n');
    const cases: Envelope[] = [
      { ...good, envelopeId: 'a\nrecipient: evil@x' },
      { ...good, tls: { ccertSubject: 'x\r' } },
      { ...good, sasl: { username: ' leading' } },
      { ...good, client: { heloName: '' } },
    ];
    for (const envelope of cases) {
      expectSubmissionError(() => writeEnvelopeBlock(envelope), { outcome: 'internal' });
    }
  });

  it('writes values missing from asserted after the rest, so nothing is dropped', () => {
    const parsed = parseEnvelopeBlock('sender: <>\nrecipient: a@b.example\n\n');
    const envelope: Envelope = { ...parsed, size: 42, asserted: [] };
    const reread = parseEnvelopeBlock(writeEnvelopeBlock(envelope));
    expect(reread.size).toBe(42);
    expect(reread.recipients).toHaveLength(1);
  });
});
