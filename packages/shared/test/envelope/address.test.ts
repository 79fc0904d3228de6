/** The address grammar: every accepted form, and every refusal with its outcome and words. */
import { describe, expect, it } from 'vitest';
import { MAX_ADDRESS_OCTETS, parseAddress, type AddressRole } from '../../src/envelope/address.ts';
import { expectSubmissionError } from './expect-submission-error.ts';

const at = { line: 7, attribute: 'recipient' };

describe('parseAddress: valid mailboxes', () => {
  it.each([
    ['a@b.example', 'a@b.example'],
    ['<a@b.example>', 'a@b.example'],
    ['First.Last@Example.COM', 'First.Last@Example.COM'],
    ["!#$%&'*+-/=?^_`{|}~@x.example", "!#$%&'*+-/=?^_`{|}~@x.example"],
    ['"a b"@x.example', '"a b"@x.example'],
    ['"a\\"b"@x.example', '"a\\"b"@x.example'],
    ['"a\\\\b"@x.example', '"a\\\\b"@x.example'],
    ['"a@b"@x.example', '"a@b"@x.example'],
    ['"a;b,c"@x.example', '"a;b,c"@x.example'],
    ['""@x.example', '""@x.example'],
    ['u@[192.0.2.1]', 'u@[192.0.2.1]'],
    ['<u@[IPv6:2001:db8::1]>', 'u@[IPv6:2001:db8::1]'],
    ['u@[ipv6:::ffff:192.0.2.1]', 'u@[ipv6:::ffff:192.0.2.1]'],
    ['user@xn--bcher-kva.example', 'user@xn--bcher-kva.example'],
    ['a-b@c-d.e-f', 'a-b@c-d.e-f'],
  ])('%s', (written, text) => {
    const address = parseAddress(written, 'recipient', at);
    expect(address).toEqual({ text, utf8: false, unqualified: false });
    expect(Object.isFrozen(address)).toBe(true);
  });

  it('takes an unqualified local part as is, for the MTA to qualify', () => {
    expect(parseAddress('postmaster', 'recipient')).toEqual({ text: 'postmaster', utf8: false, unqualified: true });
    expect(parseAddress('<root>', 'sender')).toEqual({ text: 'root', utf8: false, unqualified: true });
    expect(parseAddress('"a b"', 'recipient')).toEqual({ text: '"a b"', utf8: false, unqualified: true });
  });

  it('marks UTF-8 addresses (RFC 6531) in local part, quoted part and domain', () => {
    expect(parseAddress('jösé@bücher.example', 'recipient')).toEqual({
      text: 'jösé@bücher.example',
      utf8: true,
      unqualified: false,
    });
    expect(parseAddress('"日本 語"@x.example', 'recipient').utf8).toBe(true);
    expect(parseAddress('a@例え.テスト', 'recipient').utf8).toBe(true);
    expect(parseAddress('😀@x.example', 'recipient').utf8).toBe(true);
  });

  it('takes the null sender <> only as sender', () => {
    expect(parseAddress('<>', 'sender')).toEqual({ text: '', utf8: false, unqualified: false });
  });

  it('takes a local part with a misplaced dot, as Postfix does, written as the equivalent quoted string', () => {
    expect(parseAddress('python-dev-bounces+python=david...@python.org', 'recipient').text).toBe('"python-dev-bounces+python=david..."@python.org');
    expect(parseAddress('<.a@c.example>', 'sender').text).toBe('".a"@c.example');
    expect(parseAddress('a.', 'recipient')).toEqual({ text: '"a."', utf8: false, unqualified: true });
    expect(parseAddress('a.b@c.example', 'recipient').text).toBe('a.b@c.example');
    expect(() => parseAddress(`${'a'.repeat(243)}..@c.example`, 'recipient')).toThrow(/once its local part is quoted/);
  });

  it('does not enforce the 64-octet local-part limit (SRS and VERP pass it)', () => {
    const srs = `SRS0=HHH=TT=example.org=${'x'.repeat(80)}@forwarder.example`;
    expect(parseAddress(srs, 'sender').text).toBe(srs);
  });

  it('accepts exactly 256 octets and 63-octet labels', () => {
    const label = 'd'.repeat(63);
    const domain = `${label}.${label}.${label}`;
    const local = 'l'.repeat(MAX_ADDRESS_OCTETS - domain.length - 1);
    const address = `${local}@${domain}`;
    expect(Buffer.byteLength(address)).toBe(256);
    expect(parseAddress(`<${address}>`, 'recipient').text).toBe(address);
  });
});

describe('parseAddress: refused', () => {
  it.each([
    ['', /empty/],
    ['a b@c.example', /space outside quotes/],
    ['a@b.example SIZE=1', /space outside quotes/],
    ['a@b.example NOTIFY=NEVER', /space outside quotes/],
    ['a@b> NOTIFY=NEVER', /angle bracket/],
    ['<a@b.example> NOTIFY=NEVER', /text after the closing angle bracket/],
    ['<a@b.example>ORCPT=rfc822;x', /text after the closing angle bracket/],
    ['<a@b.example', /no closing angle bracket/],
    ['a@b.example>', /closing angle bracket without an opening one/],
    ['Joe <a@b.example>', /display name/],
    ['<<a@b.example>>', /angle bracket inside the address/],
    ['a@b@c.example', /more than one @/],
    ['a@', /no domain after the @/],
    ['@b.example', /no local part/],
    ['<@a.example,@b.example:u@c.example>', /source routes/],
    ['<@a.example:u@c.example>', /source routes/],
    ['a@b..c', /empty label/],
    ['a@.b', /empty label/],
    ['a@b.example.', /ends with a dot/],
    ['a@-b.example', /hyphen/],
    ['a@b-.example', /hyphen/],
    ['a@b_c.example', /character "_" in the domain/],
    ['a@b.example=x', /character "=" in the domain/],
    [`a@${'d'.repeat(64)}.example`, /longer than 63 octets/],
    ['a@[1.2.3]', /not a valid address literal/],
    ['a@[01.2.3.4]', /not a valid address literal/],
    ['a@[::1]', /needs its prefix/],
    ['a@[IPv6:fe80::1%eth0]', /zone ids/],
    ['a@[IPv6:1.2.3.4]', /not a valid IPv6 address literal/],
    ['a@[x-tag:some content]', /general address literals/],
    ['a@[1.2.3.4', /no closing bracket/],
    ['"a<b"@c.example', /angle brackets are not accepted, even quoted/],
    ['"a>b"@c.example', /angle brackets are not accepted, even quoted/],
    ['"a\\<b"@c.example', /angle brackets are not accepted, even quoted or escaped/],
    ['"a\\>"@c.example', /angle brackets are not accepted, even quoted or escaped/],
    ['"abc@d.example', /no closing quote/],
    ['"a\\', /no closing quote/],
    ['"a"b@c.example', /after the quoted local part/],
    ['"a" @c.example', /a space after the quoted local part/],
    ['a"b"@c.example', /quote inside an unquoted local part/],
    ['"a\\é"@c.example', /backslash before/],
    ['a,b@c.example', /comma/],
    ['a(x)@c.example', /parenthesis/],
    ['a\tb@c.example', /tab character/],
    ['a\rb@c.example', /lone carriage return/],
    ['a\u0000b@c.example', /NUL byte/],
    ['a\u0085b@c.example', /control character \(U\+0085\)/],
    ['"a\u001bb"@c.example', /escape character/],
    ['a\ud800b@c.example', /unpaired surrogate/],
  ])('%j', (written, detail) => {
    expectSubmissionError(() => parseAddress(written, 'recipient', at), {
      outcome: 'recipient-syntax',
      line: 7,
      attribute: 'recipient',
      detail,
    });
  });

  it('refuses <> as recipient, authenticated sender and original recipient', () => {
    expectSubmissionError(() => parseAddress('<>', 'recipient'), { outcome: 'recipient-syntax', detail: /null address/ });
    expectSubmissionError(() => parseAddress('<>', 'sasl_sender'), { outcome: 'envelope-syntax', detail: /null address/ });
    expectSubmissionError(() => parseAddress('<>', 'dsn-orig-rcpt'), { outcome: 'envelope-syntax', detail: /null/ });
  });

  it('refuses an empty sender and says how the null sender is written', () => {
    expectSubmissionError(() => parseAddress('', 'sender'), { outcome: 'sender-syntax', detail: /null sender is written <>/ });
  });

  it.each<[AddressRole, string]>([
    ['sender', 'sender-syntax'],
    ['recipient', 'recipient-syntax'],
    ['sasl_sender', 'envelope-syntax'],
    ['dsn-orig-rcpt', 'envelope-syntax'],
  ])('a syntax error as %s has outcome %s', (role, outcome) => {
    expectSubmissionError(() => parseAddress('a b@c', role), { outcome: outcome as 'envelope-syntax' });
  });

  it('refuses more than 256 octets as address-too-long, counting UTF-8 octets', () => {
    const ascii = `${'l'.repeat(250)}@x.example`;
    expectSubmissionError(() => parseAddress(ascii, 'recipient'), { outcome: 'address-too-long', detail: /256/ });
    const utf8 = `${'é'.repeat(124)}@x.example`;
    expect(utf8.length).toBeLessThan(256);
    expectSubmissionError(() => parseAddress(`<${utf8}>`, 'sender'), { outcome: 'address-too-long' });
  });
});
