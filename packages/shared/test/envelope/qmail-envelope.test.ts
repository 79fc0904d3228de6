/** The qmail-queue envelope: accepted envelopes, and every refusal with its outcome. */
import { describe, expect, it } from 'vitest';
import { MAX_QMAIL_ENVELOPE_OCTETS, parseQmailEnvelope } from '../../src/envelope/qmail-envelope.ts';
import { statusOf } from '../../src/status/outcomes.ts';
import { withLimits } from '../../src/limits.ts';
import { SubmissionReader } from '../../src/submission/submission-reader.ts';
import { expectSubmissionError } from './expect-submission-error.ts';

const bytes = (text: string) => Buffer.from(text, 'latin1');

describe('parseQmailEnvelope: valid envelopes', () => {
  it('reads the sender and recipients in order', () => {
    const envelope = parseQmailEnvelope(bytes('Falice@example.net\0Tbob@example.org\0Tcarol@example.org\0\0'));
    expect(envelope.sender.text).toBe('alice@example.net');
    expect(envelope.recipients.map((r) => r.address.text)).toEqual(['bob@example.org', 'carol@example.org']);
    expect(envelope.recipients.map((r) => r.line)).toEqual([2, 3]);
    expect(envelope.asserted).toEqual(['sender', 'recipient']);
    expect(envelope.client).toEqual({});
    expect(Object.isFrozen(envelope)).toBe(true);
  });

  it('takes an empty F as the null sender', () => {
    const envelope = parseQmailEnvelope(bytes('F\0Tbob@example.org\0\0'));
    expect(envelope.sender).toEqual({ text: '', utf8: false, unqualified: false });
  });

  it('takes UTF-8 and unqualified addresses as the native parser does', () => {
    const envelope = parseQmailEnvelope(Buffer.from('Fjörg@example.net\0Tpostmaster\0\0', 'utf8'));
    expect(envelope.sender.utf8).toBe(true);
    expect(envelope.recipients[0]?.address).toEqual({ text: 'postmaster', utf8: false, unqualified: true });
  });

  it('turns the tcpserver facts into asserted client attributes', () => {
    const envelope = parseQmailEnvelope(bytes('Fa@b.example\0Tc@d.example\0\0'), {
      client: { address: '192.0.2.25', name: 'mx.example.net', port: '25025' },
    });
    expect(envelope.client).toEqual({ clientName: 'mx.example.net', clientAddress: { family: 4, address: '192.0.2.25' }, clientPort: 25025 });
    expect(envelope.asserted).toEqual(['sender', 'recipient', 'client_name', 'client_address', 'client_port']);
  });

  it('reads qpsmtpd\'s "Unknown" host name as no reverse name', () => {
    const envelope = parseQmailEnvelope(bytes('Fa@b.example\0Tc@d.example\0\0'), { client: { address: '192.0.2.25', name: 'Unknown' } });
    expect(envelope.client.clientName).toBe('unknown');
  });
});

describe('parseQmailEnvelope: refusals', () => {
  it.each([
    ['empty input', ''],
    ['no NUL at all', 'Fa@b.example'],
    ['a missing final NUL', 'Fa@b.example\0Tc@d.example\0'],
    ['no recipients', 'Fa@b.example\0\0'],
    ['only the final NUL', '\0'],
    ['no F first', 'Tc@d.example\0Fa@b.example\0\0'],
    ['a second F', 'Fa@b.example\0Fc@d.example\0\0'],
    ['garbage', 'hello world\nthis is not an envelope\n'],
    ['octets after the final NUL', 'Fa@b.example\0Tc@d.example\0\0Tx@y.example\0'],
    ['an address that is not UTF-8', 'Fa@b.example\0T\xff@d.example\0\0'],
  ])('%s is envelope-syntax (qmail 91)', (_name, input) => {
    const error = expectSubmissionError(() => parseQmailEnvelope(bytes(input)), { outcome: 'envelope-syntax' });
    expect(statusOf(error.outcome).qmailCode).toBe(91);
  });

  it.each([
    ['CR', 'Tc@d.example\r\0'],
    ['LF', 'Tc@d.example\nRCPT TO:<x@y>\0'],
    ['a space', 'Tc@d.example NOTIFY=NEVER\0'],
  ])('a recipient with %s is refused by the address validator', (_name, entry) => {
    expectSubmissionError(() => parseQmailEnvelope(bytes(`Fa@b.example\0${entry}\0`)), { outcome: 'recipient-syntax', attribute: 'recipient' });
  });

  it('a sender with a space is sender-syntax', () => {
    expectSubmissionError(() => parseQmailEnvelope(bytes('Fa b@c.example\0Tc@d.example\0\0')), { outcome: 'sender-syntax', attribute: 'sender' });
  });

  it('an address over 256 octets is address-too-long (qmail 11)', () => {
    const long = `${'a'.repeat(250)}@example.org`;
    const error = expectSubmissionError(() => parseQmailEnvelope(bytes(`Fa@b.example\0T${long}\0\0`)), { outcome: 'address-too-long' });
    expect(statusOf(error.outcome).qmailCode).toBe(11);
  });

  it('over the byte cap is over-limit, before anything is parsed', () => {
    const input = Buffer.alloc(MAX_QMAIL_ENVELOPE_OCTETS + 1, 0x54);
    expectSubmissionError(() => parseQmailEnvelope(input), { outcome: 'over-limit', detail: /longer than 1048576 octets/ });
    expectSubmissionError(() => parseQmailEnvelope(bytes('Fa@b.example\0Tc@d.example\0\0'), { maxOctets: 10 }), { outcome: 'over-limit' });
  });

  it('more recipients than the limit is over-limit', () => {
    const input = bytes(`Fa@b.example\0${'Tc@d.example\0'.repeat(3)}\0`);
    expectSubmissionError(() => parseQmailEnvelope(input, { limits: withLimits({ maxRecipients: 2 }) }), { outcome: 'over-limit', attribute: 'recipient' });
  });

  it.each([
    ['address', { address: '192.0.2.999' }, 'client_address'],
    ['name', { name: 'host name\r\n' }, 'client_name'],
    ['port', { port: '70000' }, 'client_port'],
  ])('a bad TCPREMOTE %s is envelope-syntax naming the attribute', (_name, client, attribute) => {
    expectSubmissionError(() => parseQmailEnvelope(bytes('Fa@b.example\0Tc@d.example\0\0'), { client }), { outcome: 'envelope-syntax', attribute });
  });
});

describe('SubmissionReader with an envelope given up front', () => {
  it('reads the input as the message alone', () => {
    const envelope = parseQmailEnvelope(bytes('Fa@b.example\0Tc@d.example\0\0'));
    const reader = new SubmissionReader(undefined, { envelope });
    expect(reader.envelope).toBe(envelope);
    const out = Buffer.concat([reader.write(bytes('Subject: hi\n\nbody\n')), reader.end()]).toString('latin1');
    expect(out).toBe('Subject: hi\r\n\r\nbody\r\n');
  });

  it('still reads an envelope block first without one', () => {
    expectSubmissionError(() => new SubmissionReader().write(bytes('Subject: hi\n\nbody\n')), { outcome: 'envelope-syntax', line: 1 });
  });
});
