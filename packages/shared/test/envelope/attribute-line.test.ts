/** One attribute line: name lookup, spaces, controls, trailing spaces and 8-bit text. */
import { describe, expect, it } from 'vitest';
import { splitAttributeLine } from '../../src/envelope/attribute-line.ts';
import { expectSubmissionError } from './expect-submission-error.ts';

function split(text: string | Buffer, lineNumber = 2) {
  return splitAttributeLine(typeof text === 'string' ? Buffer.from(text, 'utf8') : text, lineNumber);
}

describe('splitAttributeLine: accepted', () => {
  it('finds the attribute by any spelling of its name and skips spaces after the colon', () => {
    expect(split('sender: <>')).toMatchObject({ spec: { name: 'sender' }, value: '<>' });
    expect(split('SENDER:<>')).toMatchObject({ spec: { name: 'sender' }, value: '<>' });
    expect(split('Dsn_Envelope-ID:     abc')).toMatchObject({ spec: { name: 'dsn-envelope-id' }, value: 'abc' });
    expect(split('client-address: [192.0.2.1]')).toMatchObject({ spec: { name: 'client_address' } });
  });

  it('keeps spaces inside the value', () => {
    expect(split('sasl_username: Wietse  Venema').value).toBe('Wietse  Venema');
  });

  it('reads an empty value, or only spaces after the colon, as empty', () => {
    expect(split('sasl_sender:').value).toBe('');
    expect(split('dsn-envelope-id:    ').value).toBe('');
  });

  it('decodes UTF-8 where the attribute allows 8-bit text', () => {
    expect(split('recipient: jösé@bücher.example').value).toBe('jösé@bücher.example');
    expect(split('ccert_subject: CN=Zürich').value).toBe('CN=Zürich');
  });

  it('keeps a byte order mark inside a value as a character', () => {
    expect(split(Buffer.from('sasl_username: \u{feff}x', 'utf8')).value).toBe('\u{feff}x');
  });
});

describe('splitAttributeLine: refused', () => {
  it.each([
    ['sender <>', /not an attribute line/],
    ['', /not an attribute line/],
    [': value', /no attribute name/],
    ['sender : <>', /is not an attribute name/],
    [' sender: <>', /is not an attribute name/],
    ['MAIL FROM:<a@b>', /"MAIL FROM" is not an attribute name/],
    ['séndér: <>', /is not an attribute name/],
    ['x-mailer: foo', /unknown attribute "x-mailer"/],
    ['rcpt: a@b', /unknown attribute "rcpt"/],
    ['sender\t: <>', /tab character in the attribute name/],
    ['send\u0000er: <>', /NUL byte in the attribute name/],
    ['sender\r', /lone carriage return.* in the attribute name/],
  ])('%j', (text, detail) => {
    const error = expectSubmissionError(() => split(text, 9), { outcome: 'envelope-syntax', line: 9, detail });
    expect(error.position.attribute).toBeUndefined();
  });

  it('does not echo a long unknown name in full', () => {
    const error = expectSubmissionError(() => split(`${'x'.repeat(5000)}: y`), { outcome: 'envelope-syntax' });
    expect(error.message.length).toBeLessThan(200);
  });

  it.each([
    ['sender: a@b\r', 'sender', 'sender-syntax', /lone carriage return/],
    ['recipient: a@b\rRCPT TO:<c@d>', 'recipient', 'recipient-syntax', /lone carriage return/],
    ['recipient: a\u0000@b', 'recipient', 'recipient-syntax', /NUL byte/],
    ['recipient:\ta@b', 'recipient', 'recipient-syntax', /tab character/],
    ['dsn-envelope-id: a\u001b[31m', 'dsn-envelope-id', 'envelope-syntax', /escape character/],
    ['helo_name: a\u007f', 'helo_name', 'envelope-syntax', /DEL/],
    ['sasl_username: a\u0001', 'sasl_username', 'envelope-syntax', /0x01/],
    ['ccert_subject: a\u0085b', 'ccert_subject', 'envelope-syntax', /U\+0085/],
    ['sender: <> ', 'sender', 'sender-syntax', /trailing space/],
    ['size: 12  ', 'size', 'envelope-syntax', /trailing space/],
    ['helo_name: host\t', 'helo_name', 'envelope-syntax', /tab character/],
    ['dsn-envelope-id: idé', 'dsn-envelope-id', 'envelope-syntax', /non-ASCII/],
    ['helo_name: hôte', 'helo_name', 'envelope-syntax', /non-ASCII/],
    ['client_name: bücher.example', 'client_name', 'envelope-syntax', /non-ASCII/],
  ])('%j', (text, attribute, outcome, detail) => {
    expectSubmissionError(() => split(text, 4), { outcome: outcome as 'envelope-syntax', line: 4, attribute, detail });
  });

  it.each([
    ['truncated sequence', [0xc3]],
    ['lone continuation byte', [0x80]],
    ['overlong slash', [0xc0, 0xaf]],
    ['surrogate half', [0xed, 0xa0, 0x80]],
    ['beyond U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
    ['latin-1 e acute', [0xe9]],
  ])('refuses invalid UTF-8: %s', (_, bytes) => {
    const line = Buffer.concat([Buffer.from('recipient: a'), Buffer.from(bytes), Buffer.from('@b.example')]);
    expectSubmissionError(() => split(line, 3), {
      outcome: 'recipient-syntax',
      line: 3,
      attribute: 'recipient',
      detail: /not valid UTF-8/,
    });
  });
});
