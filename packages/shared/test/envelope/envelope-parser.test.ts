/** The block parser: structure rules, required attributes, limits, and line-by-line use. */
import { describe, expect, it } from 'vitest';
import { EnvelopeParser, parseEnvelopeBlock } from '../../src/envelope/envelope-parser.ts';
import { SubmissionError } from '../../src/errors.ts';
import { withLimits } from '../../src/limits.ts';
import { expectSubmissionError } from './expect-submission-error.ts';

/** A block from lines, LF-terminated, with the empty line. */
function block(...lines: string[]): string {
  return `${lines.join('\n')}\n\n`;
}

const SEED_BLOCK = block(
  'protocol_name: SMTP',
  'helo_name: client.example',
  'client_name: client.example',
  'client_address: [192.0.2.7]',
  'client_port: 54321',
  'sasl_method: plain',
  'sasl_username: you',
  'sasl_sender:',
  'size: 12345',
  'ccert_subject: solaris9.porcupine.org',
  'ccert_issuer: Wietse Venema',
  'ccert_fingerprint: C2:9D:F4:87:71:73:73:D9:18:E7:C2:F3:C1:DA:6E:04',
  'encryption_protocol: TLSv1/SSLv3',
  'encryption_cipher: DHE-RSA-AES256-SHA',
  'encryption_keysize: 256',
  'sender: <>',
  'dsn-envelope-id:',
  'dsn-return-option: full',
  'recipient: a@b.example',
  'dsn-notify-options: fail,delay',
  'dsn-orig-rcpt: rfc822;a@b.example',
  'recipient: <c@d.example>',
);

describe('parseEnvelopeBlock: the seed example', () => {
  const envelope = parseEnvelopeBlock(SEED_BLOCK);

  it('reads every attribute', () => {
    expect(envelope).toEqual({
      sender: { text: '', utf8: false, unqualified: false },
      recipients: [
        {
          address: { text: 'a@b.example', utf8: false, unqualified: false },
          notify: ['DELAY', 'FAILURE'],
          orcpt: { type: 'rfc822', value: 'a@b.example' },
          line: 19,
        },
        { address: { text: 'c@d.example', utf8: false, unqualified: false }, line: 22 },
      ],
      returnOption: 'FULL',
      size: 12345,
      client: {
        protocolName: 'SMTP',
        heloName: 'client.example',
        clientName: 'client.example',
        clientAddress: { family: 4, address: '192.0.2.7' },
        clientPort: 54321,
      },
      sasl: { method: 'plain', username: 'you' },
      tls: {
        ccertSubject: 'solaris9.porcupine.org',
        ccertIssuer: 'Wietse Venema',
        ccertFingerprint: 'C2:9D:F4:87:71:73:73:D9:18:E7:C2:F3:C1:DA:6E:04',
        encryptionProtocol: 'TLSv1/SSLv3',
        encryptionCipher: 'DHE-RSA-AES256-SHA',
        encryptionKeysize: 256,
      },
      asserted: [
        'protocol_name',
        'helo_name',
        'client_name',
        'client_address',
        'client_port',
        'sasl_method',
        'sasl_username',
        'size',
        'ccert_subject',
        'ccert_issuer',
        'ccert_fingerprint',
        'encryption_protocol',
        'encryption_cipher',
        'encryption_keysize',
        'sender',
        'dsn-return-option',
        'recipient',
        'dsn-notify-options',
        'dsn-orig-rcpt',
      ],
    });
  });

  it('leaves empty optional attributes out, as not given', () => {
    expect('envelopeId' in envelope).toBe(false);
    expect('sender' in envelope.sasl).toBe(false);
    expect(envelope.asserted).not.toContain('sasl_sender');
    expect(envelope.asserted).not.toContain('dsn-envelope-id');
  });

  it('freezes everything it returns', () => {
    expect(Object.isFrozen(envelope)).toBe(true);
    expect(Object.isFrozen(envelope.recipients)).toBe(true);
    expect(Object.isFrozen(envelope.recipients[0])).toBe(true);
    expect(Object.isFrozen(envelope.recipients[0]?.notify)).toBe(true);
    expect(Object.isFrozen(envelope.recipients[0]?.orcpt)).toBe(true);
    expect(Object.isFrozen(envelope.sender)).toBe(true);
    expect(Object.isFrozen(envelope.client)).toBe(true);
    expect(Object.isFrozen(envelope.client.clientAddress)).toBe(true);
    expect(Object.isFrozen(envelope.sasl)).toBe(true);
    expect(Object.isFrozen(envelope.tls)).toBe(true);
    expect(Object.isFrozen(envelope.asserted)).toBe(true);
  });
});

describe('parseEnvelopeBlock: lines and structure', () => {
  it('accepts CRLF, LF and both mixed, and stops at the first empty line', () => {
    const crlf = parseEnvelopeBlock('sender: <>\r\nrecipient: a@b.example\r\n\r\nSubject: x\r\n');
    const mixed = parseEnvelopeBlock('sender: <>\r\nrecipient: a@b.example\n\r\nnot: looked at\n');
    expect(crlf).toEqual(mixed);
    expect(crlf.recipients[0]?.line).toBe(2);
  });

  it('accepts a Buffer', () => {
    expect(parseEnvelopeBlock(Buffer.from(block('sender: <>', 'recipient: jösé@x.example'))).recipients[0]?.address.utf8).toBe(
      true,
    );
  });

  it('records asserted names once, in first-seen order, with names as canonical', () => {
    const envelope = parseEnvelopeBlock(
      block('Recipient: a@b.example', 'SIZE: 10', 'Sender: <>', 'recipient: c@d.example', 'dsn_notify_options: never', 'client-port: 25'),
    );
    expect(envelope.asserted).toEqual(['recipient', 'size', 'sender', 'dsn-notify-options', 'client_port']);
  });

  it('attaches per-recipient attributes to the nearest recipient above, across other lines', () => {
    const envelope = parseEnvelopeBlock(
      block(
        'sender: <>',
        'recipient: a@b.example',
        'recipient: c@d.example',
        'size: 5',
        'dsn-notify-options: success',
        'recipient: e@f.example',
        'dsn-orig-rcpt: rfc822;orig@f.example',
        'dsn-notify-options: never',
      ),
    );
    expect(envelope.recipients.map((r) => [r.notify, r.orcpt?.value])).toEqual([
      [undefined, undefined],
      [['SUCCESS'], undefined],
      [['NEVER'], 'orig@f.example'],
    ]);
    expect('notify' in (envelope.recipients[0] ?? {})).toBe(false);
  });

  it('allows the same recipient twice (the MTA decides about duplicates)', () => {
    expect(parseEnvelopeBlock(block('sender: <>', 'recipient: a@b.example', 'recipient: a@b.example')).recipients).toHaveLength(2);
  });

  it('treats an empty per-recipient attribute as not given, but as a copy', () => {
    const envelope = parseEnvelopeBlock(block('sender: <>', 'recipient: a@b.example', 'dsn-orig-rcpt:'));
    expect(envelope.recipients[0]?.orcpt).toBeUndefined();
    expect(envelope.asserted).toEqual(['sender', 'recipient']);
    expectSubmissionError(
      () => parseEnvelopeBlock(block('sender: <>', 'recipient: a@b.example', 'dsn-orig-rcpt:', 'dsn-orig-rcpt: a@b.example')),
      { outcome: 'envelope-syntax', line: 4, attribute: 'dsn-orig-rcpt', detail: /given twice for the recipient on line 2 \(first on line 3\)/ },
    );
  });

  it.each([
    ['sender', ['sender: <>', 'recipient: a@b.example', 'sender: <x@y.example>'], 3, /given twice \(first on line 1\)/],
    ['sender', ['sender: <>', 'recipient: a@b.example', 'Sender: <>'], 3, /given twice/],
    ['size', ['sender: <>', 'size:', 'recipient: a@b.example', 'size: 10'], 4, /given twice \(first on line 2\)/],
    ['size', ['sender: <>', 'size: 10', 'recipient: a@b.example', 'size:'], 4, /given twice/],
    ['client_address', ['sender: <>', 'client_address: 1.2.3.4', 'client-address: 1.2.3.4', 'recipient: a@b.example'], 3, /given twice/],
    ['dsn-envelope-id', ['dsn_envelope_id:', 'dsn-envelope-id:', 'sender: <>', 'recipient: a@b.example'], 2, /given twice/],
    ['dsn-notify-options', ['sender: <>', 'recipient: a@b.example', 'dsn-notify-options: never', 'dsn-notify-options: never'], 4, /given twice for the recipient on line 2/],
  ])('refuses a second %s', (attribute, lines, line, detail) => {
    expectSubmissionError(() => parseEnvelopeBlock(block(...lines)), { outcome: 'envelope-syntax', line, attribute, detail });
  });

  it.each(['dsn-notify-options: never', 'dsn-orig-rcpt: rfc822;a@b.example', 'dsn-orig-rcpt:'])(
    'refuses %j before the first recipient',
    (text) => {
      expectSubmissionError(() => parseEnvelopeBlock(block('sender: <>', text, 'recipient: a@b.example')), {
        outcome: 'envelope-syntax',
        line: 2,
        detail: /belongs to the recipient line above it/,
      });
    },
  );

  it('refuses an empty sender or recipient', () => {
    expectSubmissionError(() => parseEnvelopeBlock(block('sender:', 'recipient: a@b.example')), {
      outcome: 'sender-syntax',
      line: 1,
      attribute: 'sender',
      detail: /null sender is written <>/,
    });
    expectSubmissionError(() => parseEnvelopeBlock(block('sender: <>', 'recipient:   ')), {
      outcome: 'recipient-syntax',
      line: 2,
      attribute: 'recipient',
      detail: /empty/,
    });
  });

  it('requires a sender and a recipient by the empty line', () => {
    expectSubmissionError(() => parseEnvelopeBlock(block('recipient: a@b.example')), {
      outcome: 'envelope-syntax',
      line: 2,
      attribute: 'sender',
      detail: /missing/,
    });
    expectSubmissionError(() => parseEnvelopeBlock(block('sender: <>', 'size: 3')), {
      outcome: 'envelope-syntax',
      line: 3,
      attribute: 'recipient',
      detail: /at least one recipient/,
    });
    expectSubmissionError(() => parseEnvelopeBlock('\nSubject: x\n'), { outcome: 'envelope-syntax', line: 1, attribute: 'sender' });
  });

  it('refuses a block with no empty line', () => {
    expectSubmissionError(() => parseEnvelopeBlock('sender: <>\nrecipient: a@b.example\n'), {
      outcome: 'envelope-syntax',
      line: 3,
      detail: /does not end with an empty line/,
    });
    expectSubmissionError(() => parseEnvelopeBlock('sender: <>\nrecipient: a@b.example'), { outcome: 'envelope-syntax', line: 2 });
    expectSubmissionError(() => parseEnvelopeBlock(''), { outcome: 'envelope-syntax', line: 1 });
  });

  it('takes a CR before the LF as the line end, but not a second one', () => {
    expectSubmissionError(() => parseEnvelopeBlock('sender: <>\r\r\nrecipient: a@b.example\n\n'), {
      outcome: 'sender-syntax',
      line: 1,
      detail: /lone carriage return/,
    });
    expectSubmissionError(() => parseEnvelopeBlock('sender: <>\nrecipient: a@b.example\n\r\r\n'), {
      outcome: 'envelope-syntax',
      line: 3,
    });
  });

  it('names the line and the canonical attribute in an error message', () => {
    const error = expectSubmissionError(
      () => parseEnvelopeBlock(block('sender: <>', 'recipient: a@b.example', 'DSN_Orig_Rcpt: rfc822;')),
      { outcome: 'envelope-syntax' },
    );
    expect(error.message).toMatch(/^line 3: attribute "dsn-orig-rcpt": /);
  });
});

describe('limits', () => {
  it('refuses more recipients than maxRecipients as over-limit', () => {
    const limits = withLimits({ maxRecipients: 2 });
    const two = ['sender: <>', 'recipient: a@b.example', 'recipient: c@d.example'];
    expect(parseEnvelopeBlock(block(...two), limits).recipients).toHaveLength(2);
    expectSubmissionError(() => parseEnvelopeBlock(block(...two, 'recipient: e@f.example'), limits), {
      outcome: 'over-limit',
      line: 4,
      attribute: 'recipient',
      detail: /more than 2 recipients/,
    });
  });

  it('applies the line and block limits in parseEnvelopeBlock', () => {
    const lines = block('sender: <>', 'recipient: a@b.example');
    expect(() => parseEnvelopeBlock(lines, withLimits({ maxEnvelopeLineOctets: 22 }))).not.toThrow();
    expectSubmissionError(() => parseEnvelopeBlock(lines, withLimits({ maxEnvelopeLineOctets: 21 })), {
      outcome: 'over-limit',
      line: 2,
    });
    expect(() => parseEnvelopeBlock(lines, withLimits({ maxEnvelopeOctets: lines.length }))).not.toThrow();
    expectSubmissionError(() => parseEnvelopeBlock(lines, withLimits({ maxEnvelopeOctets: lines.length - 1 })), {
      outcome: 'over-limit',
      line: 3,
    });
  });

  it('refuses a size over maxMessageOctets as over-limit', () => {
    expectSubmissionError(
      () => parseEnvelopeBlock(block('sender: <>', 'recipient: a@b.example', 'size: 1001'), withLimits({ maxMessageOctets: 1000 })),
      { outcome: 'over-limit', line: 3, attribute: 'size' },
    );
  });
});

describe('EnvelopeParser used line by line', () => {
  const line = (text: string): Buffer => Buffer.from(text, 'utf8');

  it('gives the same envelope as parseEnvelopeBlock', () => {
    const parser = new EnvelopeParser();
    parser.addLine(line('sender: <a@b.example>'), 1);
    parser.addLine(line('recipient: c@d.example'), 2);
    expect(parser.finish(3)).toEqual(parseEnvelopeBlock(block('sender: <a@b.example>', 'recipient: c@d.example')));
  });

  it('uses the line numbers it is given (the whole input counts)', () => {
    const parser = new EnvelopeParser();
    parser.addLine(line('sender: <>'), 10);
    parser.addLine(line('recipient: c@d.example'), 11);
    expectSubmissionError(() => parser.addLine(line('recipient: bad address'), 12), { outcome: 'recipient-syntax', line: 12 });
  });

  it('is unusable after an error, or after finish, and says so as an internal error', () => {
    const failed = new EnvelopeParser();
    expect(() => failed.addLine(line('bogus: x'), 1)).toThrow(SubmissionError);
    expectSubmissionError(() => failed.addLine(line('sender: <>'), 2), { outcome: 'internal' });
    expectSubmissionError(() => failed.finish(3), { outcome: 'internal' });

    const done = new EnvelopeParser();
    done.addLine(line('sender: <>'), 1);
    done.addLine(line('recipient: a@b.example'), 2);
    done.finish(3);
    expectSubmissionError(() => done.finish(3), { outcome: 'internal' });
    expectSubmissionError(() => done.addLine(line('recipient: a@b.example'), 4), { outcome: 'internal' });
  });

  it('does not depend on the buffer it was given after addLine returns', () => {
    const parser = new EnvelopeParser();
    const buffer = line('sender: <a@b.example>');
    parser.addLine(buffer, 1);
    buffer.fill(0x78);
    parser.addLine(line('recipient: c@d.example'), 2);
    expect(parser.finish(3).sender.text).toBe('a@b.example');
  });
});
