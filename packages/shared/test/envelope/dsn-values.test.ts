/** Grammars of the DSN attributes: NOTIFY, ORCPT, ENVID and RET. */
import { describe, expect, it } from 'vitest';
import {
  parseEnvelopeId,
  parseNotify,
  parseOriginalRecipient,
  parseReturnOption,
} from '../../src/envelope/dsn-values.ts';
import { expectSubmissionError } from './expect-submission-error.ts';

const at = { line: 5, attribute: 'dsn-x' };

function refused(run: () => unknown, detail: RegExp): void {
  expectSubmissionError(run, { outcome: 'envelope-syntax', line: 5, attribute: 'dsn-x', detail });
}

describe('dsn-notify-options', () => {
  it.each([
    ['never', ['NEVER']],
    ['NEVER', ['NEVER']],
    ['never,never', ['NEVER']],
    ['success', ['SUCCESS']],
    ['fail', ['FAILURE']],
    ['failure', ['FAILURE']],
    ['fail,failure', ['FAILURE']],
    ['delay,failure', ['DELAY', 'FAILURE']],
    ['Success , Delay ,FAIL', ['DELAY', 'FAILURE', 'SUCCESS']],
    ['success,delay,success', ['DELAY', 'SUCCESS']],
  ])('%j', (value, keywords) => {
    const parsed = parseNotify(value, at);
    expect(parsed).toEqual(keywords);
    expect(Object.isFrozen(parsed)).toBe(true);
  });

  it.each([
    ['', /empty item/],
    ['never,success', /never cannot be combined/],
    ['delay, NEVER', /never cannot be combined/],
    ['success,,delay', /empty item/],
    ['success,', /empty item/],
    [',delay', /empty item/],
    ['sucess', /unknown keyword "sucess"/],
    ['success delay', /unknown keyword/],
    ['success;delay', /unknown keyword/],
    ['NOTIFY=NEVER', /unknown keyword/],
    ['toString', /unknown keyword/],
    ['__proto__', /unknown keyword/],
  ])('refuses %j', (value, detail) => {
    refused(() => parseNotify(value, at), detail);
  });
});

describe('dsn-orig-rcpt', () => {
  it.each([
    ['rfc822;a@b.example', 'rfc822', 'a@b.example'],
    ['RFC822;A@B.example', 'rfc822', 'A@B.example'],
    ['utf-8;jösé@x.example', 'utf-8', 'jösé@x.example'],
    ['x-local;anything goes here', 'x-local', 'anything goes here'],
    ['rfc822;a+b=c\\d@e.example', 'rfc822', 'a+b=c\\d@e.example'],
    ['rfc822;"a b"@c.example', 'rfc822', '"a b"@c.example'],
    ['a@b.example', 'rfc822', 'a@b.example'],
    ['<a@b.example>', 'rfc822', 'a@b.example'],
    ['"a;b"@c.example', 'rfc822', '"a;b"@c.example'],
    ['jösé@x.example', 'utf-8', 'jösé@x.example'],
    ['postmaster', 'rfc822', 'postmaster'],
  ])('%j', (value, type, original) => {
    const parsed = parseOriginalRecipient(value, at);
    expect(parsed).toEqual({ type, value: original });
    expect(Object.isFrozen(parsed)).toBe(true);
  });

  it('keeps values up to 500 octets', () => {
    const value = `rfc822;${'x'.repeat(493)}`;
    expect(parseOriginalRecipient(value, at).value).toHaveLength(493);
  });

  it.each([
    [`rfc822;${'x'.repeat(494)}`, /longer than 500 octets/],
    ['', /empty/],
    ['rfc822;', /no original recipient after "rfc822;"/],
    [';a@b.example', /no address type/],
    ['rfc 822;a@b.example', /"rfc 822" is not an address type/],
    ['rfc822;jösé@x.example', /needs type utf-8/],
    ['x-other;ü', /needs type utf-8/],
    ['rfc822;a\tb', /tab/],
    ['rfc822;a\u0085b', /U\+0085/],
    ['a b@c.example', /space outside quotes/],
    ['a@b.example NOTIFY=NEVER', /space outside quotes/],
    ['<a@b.example> NOTIFY=NEVER', /after the closing angle bracket/],
    ['<>', /null/],
  ])('refuses %j', (value, detail) => {
    refused(() => parseOriginalRecipient(value, at), detail);
  });

  it('refuses a bare address over 256 octets as address-too-long', () => {
    expectSubmissionError(() => parseOriginalRecipient(`${'x'.repeat(250)}@b.example`, at), {
      outcome: 'address-too-long',
    });
  });
});

describe('dsn-envelope-id', () => {
  it('takes 1..100 visible US-ASCII characters, xtext specials included', () => {
    for (const value of ['abc', 'a+b', 'a=b', 'a\\b', '+2B', '<id@host>', '!~', 'x'.repeat(100)]) {
      expect(parseEnvelopeId(value, at)).toBe(value);
    }
  });

  it.each([
    ['', /empty/],
    ['x'.repeat(101), /longer than 100/],
    ['a b', /a space/],
    ['idé', /"é"/],
    ['a\tb', /tab/],
  ])('refuses %j', (value, detail) => {
    refused(() => parseEnvelopeId(value, at), detail);
  });
});

describe('dsn-return-option', () => {
  it.each([
    ['full', 'FULL'],
    ['FULL', 'FULL'],
    ['Full', 'FULL'],
    ['headers', 'HDRS'],
    ['HEADERS', 'HDRS'],
    ['hdrs', 'HDRS'],
    ['HDRS', 'HDRS'],
  ])('%s => %s', (value, option) => {
    expect(parseReturnOption(value, at)).toBe(option);
  });

  it.each(['', 'header', 'full,hdrs', 'RET=FULL', 'constructor', 'none'])('refuses %j', (value) => {
    refused(() => parseReturnOption(value, at), /not full or headers/);
  });
});
