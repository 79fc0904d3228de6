/** Grammars of size, the XFORWARD facts and the logged-only facts, at and beyond their edges. */
import { describe, expect, it } from 'vitest';
import { withLimits } from '../../src/limits.ts';
import {
  parseClientName,
  parseClientPort,
  parseEncryptionCipher,
  parseEncryptionProtocol,
  parseFingerprint,
  parseFreeText,
  parseHeloName,
  parseKeysize,
  parseProtocolName,
  parseSaslMethod,
  parseSize,
} from '../../src/envelope/value-grammars.ts';
import { DEFAULT_LIMITS } from '../../src/limits.ts';
import { expectSubmissionError } from './expect-submission-error.ts';

const at = { line: 3, attribute: 'x' };

function refused(run: () => unknown, detail?: RegExp): void {
  expectSubmissionError(run, { outcome: 'envelope-syntax', line: 3, attribute: 'x', ...(detail ? { detail } : {}) });
}

describe('used on their own, every grammar refuses an empty value', () => {
  it.each([
    ['protocol_name', parseProtocolName],
    ['sasl_method', parseSaslMethod],
    ['helo_name', parseHeloName],
    ['client_name', parseClientName],
    ['free text', parseFreeText],
    ['ccert_fingerprint', parseFingerprint],
    ['encryption_protocol', parseEncryptionProtocol],
    ['encryption_cipher', parseEncryptionCipher],
    ['client_port', parseClientPort],
    ['encryption_keysize', parseKeysize],
  ])('%s', (_, parse) => {
    refused(() => parse('', at));
  });
});

describe('size', () => {
  it('takes decimal digits', () => {
    expect(parseSize('0', DEFAULT_LIMITS, at)).toBe(0);
    expect(parseSize('12345', DEFAULT_LIMITS, at)).toBe(12345);
    expect(parseSize('00020', DEFAULT_LIMITS, at)).toBe(20);
  });

  it.each(['+1', '-1', '1e3', '0x10', '1.5', '1 2', ' 1', 'twelve', ''])('refuses %j', (value) => {
    refused(() => parseSize(value, DEFAULT_LIMITS, at), /decimal/);
  });

  it('refuses a number beyond a safe integer', () => {
    refused(() => parseSize('9007199254740993', withLimits({ maxMessageOctets: Number.MAX_SAFE_INTEGER }), at), /too large/);
  });

  it('refuses a size over the message limit as over-limit', () => {
    const limits = withLimits({ maxMessageOctets: 1000 });
    expect(parseSize('1000', limits, at)).toBe(1000);
    expectSubmissionError(() => parseSize('1001', limits, at), {
      outcome: 'over-limit',
      line: 3,
      detail: /1001 octets, more than the limit of 1000/,
    });
  });
});

describe('client_port and encryption_keysize', () => {
  it('port: 0..65535', () => {
    expect(parseClientPort('0', at)).toBe(0);
    expect(parseClientPort('25', at)).toBe(25);
    expect(parseClientPort('65535', at)).toBe(65535);
    refused(() => parseClientPort('65536', at), /between 0 and 65535/);
    refused(() => parseClientPort('-1', at), /decimal/);
    refused(() => parseClientPort('+25', at), /decimal/);
    refused(() => parseClientPort('25x', at), /decimal/);
  });

  it('keysize: 1..65535', () => {
    expect(parseKeysize('256', at)).toBe(256);
    expect(parseKeysize('1', at)).toBe(1);
    refused(() => parseKeysize('0', at), /between 1 and 65535/);
    refused(() => parseKeysize('70000', at), /between 1 and 65535/);
    refused(() => parseKeysize('256bit', at), /decimal/);
  });
});

describe('tokens', () => {
  it('protocol_name and sasl_method: [A-Za-z0-9_-]{1,64}', () => {
    for (const value of ['SMTP', 'ESMTPSA', 'lmtp', 'X_PROTO-2']) expect(parseProtocolName(value, at)).toBe(value);
    for (const value of ['PLAIN', 'CRAM-MD5', 'SCRAM-SHA-256', 'x_oauth']) expect(parseSaslMethod(value, at)).toBe(value);
    expect(parseProtocolName('P'.repeat(64), at)).toHaveLength(64);
    refused(() => parseProtocolName('P'.repeat(65), at), /longer than 64/);
    refused(() => parseProtocolName('SMTP ADDR=1.2.3.4', at), /a space/);
    refused(() => parseProtocolName('E.SMTP', at), /character "\."/);
    refused(() => parseSaslMethod('PLAIN LOGIN', at), /a space/);
    refused(() => parseSaslMethod('a=b', at), /"="/);
  });

  it('helo_name: visible US-ASCII, at most 255', () => {
    for (const value of ['mail.example', '[192.0.2.1]', 'localhost', 'a=b+c\\d']) expect(parseHeloName(value, at)).toBe(value);
    expect(parseHeloName('h'.repeat(255), at)).toHaveLength(255);
    refused(() => parseHeloName('h'.repeat(256), at), /longer than 255/);
    refused(() => parseHeloName('my host', at), /a space/);
    refused(() => parseHeloName('x NAME=evil', at), /a space/);
  });

  it('encryption_protocol and encryption_cipher', () => {
    for (const value of ['TLSv1.3', 'TLSv1/SSLv3', 'SSL_3-0']) expect(parseEncryptionProtocol(value, at)).toBe(value);
    for (const value of ['DHE-RSA-AES256-SHA', 'TLS_AES_256_GCM_SHA384', 'a+b=c/d.e']) {
      expect(parseEncryptionCipher(value, at)).toBe(value);
    }
    expect(parseEncryptionCipher('c'.repeat(128), at)).toHaveLength(128);
    refused(() => parseEncryptionCipher('c'.repeat(129), at), /longer than 128/);
    refused(() => parseEncryptionProtocol('p'.repeat(65), at), /longer than 64/);
    refused(() => parseEncryptionProtocol('TLS v1', at), /a space/);
    refused(() => parseEncryptionProtocol('TLSv1+', at), /"\+"/);
    refused(() => parseEncryptionCipher('AES:SHA', at), /":"/);
  });
});

describe('client_name', () => {
  it('takes unknown and host names, underscores included, and strips one trailing dot', () => {
    expect(parseClientName('unknown', at)).toBe('unknown');
    expect(parseClientName('mail.example.org', at)).toBe('mail.example.org');
    expect(parseClientName('Mail.Example.ORG.', at)).toBe('Mail.Example.ORG');
    expect(parseClientName('_dmarc-host.example', at)).toBe('_dmarc-host.example');
    expect(parseClientName('localhost', at)).toBe('localhost');
    const long = Array.from({ length: 4 }, () => 'a'.repeat(63)).join('.');
    expect(parseClientName(long, at)).toBe(long);
  });

  it.each([
    ['a..b', /empty label/],
    ['.a', /empty label/],
    ['a..', /empty label/],
    ['.', /empty label/],
    [`${'a'.repeat(64)}.example`, /longer than 63/],
    [Array.from({ length: 5 }, () => 'a'.repeat(63)).join('.'), /longer than 255/],
    ['host name', /a space/],
    ['host/name', /"\/"/],
    ['[192.0.2.1]', /"\["/],
  ])('refuses %j', (value, detail) => {
    refused(() => parseClientName(value, at), detail);
  });
});

describe('free text', () => {
  it('takes printable text with UTF-8, up to 1024 octets', () => {
    for (const value of ['Wietse Venema', 'CN=mail.example, O=Example', 'jösé', 'ü'.repeat(512)]) {
      expect(parseFreeText(value, at)).toBe(value);
    }
  });

  it('refuses controls and more than 1024 octets', () => {
    refused(() => parseFreeText('a\tb', at), /tab/);
    refused(() => parseFreeText('a\u0085b', at), /U\+0085/);
    refused(() => parseFreeText('a\u007fb', at), /DEL/);
    refused(() => parseFreeText('ü'.repeat(513), at), /longer than 1024 octets \(1026\)/);
  });
});

describe('ccert_fingerprint', () => {
  const pairs = (n: number): string => Array.from({ length: n }, (_, i) => (i * 7).toString(16).padStart(2, '0').slice(-2)).join(':');

  it('takes 16 to 64 hex pairs with colons, in any case, as written', () => {
    expect(parseFingerprint('C2:9D:F4:87:71:73:73:D9:18:E7:C2:F3:C1:DA:6E:04', at)).toBe(
      'C2:9D:F4:87:71:73:73:D9:18:E7:C2:F3:C1:DA:6E:04',
    );
    expect(parseFingerprint(pairs(16).toLowerCase(), at)).toBe(pairs(16).toLowerCase());
    expect(parseFingerprint(pairs(20), at)).toBe(pairs(20));
    expect(parseFingerprint(pairs(64), at)).toBe(pairs(64));
  });

  it.each([
    ['15 pairs', pairs(15)],
    ['65 pairs', pairs(65)],
    ['no colons', pairs(16).replaceAll(':', '')],
    ['odd digit', `${pairs(16)}0`],
    ['trailing colon', `${pairs(16)}:`],
    ['not hex', pairs(16).replace(/^../, 'ZZ')],
    ['dashes', pairs(16).replaceAll(':', '-')],
  ])('refuses %s', (_, value) => {
    refused(() => parseFingerprint(value, at), /fingerprint/);
  });
});
