import { describe, expect, it } from 'vitest';
import { SubmissionError } from '../../src/errors.ts';
import { mailFromCommand, needsSmtpUtf8, rcptToCommand } from '../../src/smtp/mail-command.ts';
import { address, ALL_CAPABILITIES, capabilities, envelope, recipient } from './envelope-builders.ts';

const SEVEN_BIT = { eightBit: false };

function thrown(fn: () => unknown): SubmissionError {
  try {
    fn();
  } catch (err) {
    if (err instanceof SubmissionError) return err;
    throw err;
  }
  throw new Error('expected a SubmissionError');
}

describe('mailFromCommand', () => {
  it('builds the bare command when nothing optional is given', () => {
    expect(mailFromCommand(envelope(), SEVEN_BIT, ALL_CAPABILITIES)).toEqual({
      line: 'MAIL FROM:<sender@example.org>',
      omitted: [],
    });
  });

  it('sends the null sender as <>', () => {
    const env = envelope({ sender: address('') });
    expect(mailFromCommand(env, SEVEN_BIT, ALL_CAPABILITIES).line).toBe('MAIL FROM:<>');
  });

  it('adds every parameter, in order, when the server announced them all', () => {
    const env = envelope({
      sender: address('j\u00f6rg@example.org'),
      size: 2154,
      returnOption: 'HDRS',
      envelopeId: 'id+1=x y',
    });
    expect(mailFromCommand(env, { eightBit: true }, ALL_CAPABILITIES)).toEqual({
      line: 'MAIL FROM:<j\u00f6rg@example.org> SIZE=2154 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=id+2B1+3Dx+20y',
      omitted: [],
    });
  });

  it('prefers the size estimate over the declared size', () => {
    const env = envelope({ size: 100 });
    expect(mailFromCommand(env, { eightBit: false, sizeEstimate: 104 }, ALL_CAPABILITIES).line).toBe(
      'MAIL FROM:<sender@example.org> SIZE=104',
    );
  });

  it('lists what the server did not announce instead of sending it', () => {
    const env = envelope({
      sender: address('j\u00f6rg@example.org'),
      size: 10,
      returnOption: 'FULL',
      envelopeId: 'abc',
    });
    expect(mailFromCommand(env, { eightBit: true }, capabilities())).toEqual({
      line: 'MAIL FROM:<j\u00f6rg@example.org>',
      omitted: ['SIZE (no SIZE)', 'BODY=8BITMIME (no 8BITMIME)', 'SMTPUTF8 (no SMTPUTF8)', 'RET (no DSN)', 'ENVID (no DSN)'],
    });
  });

  it('sends SIZE when the server announced SIZE without a limit', () => {
    expect(mailFromCommand(envelope({ size: 5 }), SEVEN_BIT, capabilities({ size: 0 })).line).toBe(
      'MAIL FROM:<sender@example.org> SIZE=5',
    );
  });

  it('refuses a sender whose text would leave the angle brackets', () => {
    const err = thrown(() => mailFromCommand(envelope({ sender: address('a@b> RET=FULL') }), SEVEN_BIT, ALL_CAPABILITIES));
    expect(err.outcome).toBe('sender-syntax');
    expect(err.message).toMatch(/^attribute "sender": /);
  });

  it('accepts a quoted local part with a space and a >', () => {
    const env = envelope({ sender: address('"a b>c"@example.org') });
    expect(mailFromCommand(env, SEVEN_BIT, ALL_CAPABILITIES).line).toBe('MAIL FROM:<"a b>c"@example.org>');
  });

  it('refuses a negative or fractional size', () => {
    expect(thrown(() => mailFromCommand(envelope({ size: -1 }), SEVEN_BIT, ALL_CAPABILITIES)).outcome).toBe('envelope-syntax');
    expect(thrown(() => mailFromCommand(envelope(), { eightBit: false, sizeEstimate: 1.5 }, ALL_CAPABILITIES)).outcome).toBe(
      'envelope-syntax',
    );
  });

  it('refuses a return option that is not FULL or HDRS', () => {
    const env = envelope({ returnOption: 'FULL ENVID=x' as 'FULL' });
    expect(thrown(() => mailFromCommand(env, SEVEN_BIT, ALL_CAPABILITIES)).position.attribute).toBe('dsn-return-option');
  });

  it('lets the line-safety guard catch a CR that slipped past everything else', () => {
    const env = envelope({ sender: address('a\r\nDATA@x') });
    expect(() => mailFromCommand(env, SEVEN_BIT, ALL_CAPABILITIES)).toThrow(
      expect.objectContaining({ code: 'ERR_UNSAFE_COMMAND' }),
    );
  });
});

describe('rcptToCommand', () => {
  it('builds the bare command', () => {
    expect(rcptToCommand(recipient('rcpt@example.com'), ALL_CAPABILITIES)).toEqual({
      line: 'RCPT TO:<rcpt@example.com>',
      omitted: [],
    });
  });

  it('adds NOTIFY then ORCPT in xtext', () => {
    const r = recipient('rcpt@example.com', {
      notify: ['SUCCESS', 'FAILURE'],
      orcpt: { type: 'rfc822', value: 'a+b=c@example.com' },
    });
    expect(rcptToCommand(r, ALL_CAPABILITIES).line).toBe(
      'RCPT TO:<rcpt@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+2Bb+3Dc@example.com',
    );
  });

  it('sends NOTIFY=NEVER', () => {
    expect(rcptToCommand(recipient('r@x', { notify: ['NEVER'] }), ALL_CAPABILITIES).line).toBe('RCPT TO:<r@x> NOTIFY=NEVER');
  });

  it('encodes a utf-8 ORCPT as utf-8-addr-xtext', () => {
    const r = recipient('r@x', { orcpt: { type: 'utf-8', value: 'j\u00f6rg+1@example.org' } });
    expect(rcptToCommand(r, ALL_CAPABILITIES).line).toBe('RCPT TO:<r@x> ORCPT=utf-8;j\\x{F6}rg\\x{2B}1@example.org');
  });

  it('sends a non-ASCII rfc822 ORCPT as type utf-8', () => {
    const r = recipient('r@x', { orcpt: { type: 'rfc822', value: '\u00e9@x' } });
    expect(rcptToCommand(r, ALL_CAPABILITIES).line).toBe('RCPT TO:<r@x> ORCPT=utf-8;\\x{E9}@x');
  });

  it('lists NOTIFY and ORCPT as omitted without DSN', () => {
    const r = recipient('r@x', { notify: ['DELAY'], orcpt: { type: 'rfc822', value: 'r@x' } });
    expect(rcptToCommand(r, capabilities())).toEqual({
      line: 'RCPT TO:<r@x>',
      omitted: ['NOTIFY (no DSN)', 'ORCPT (no DSN)'],
    });
  });

  it('accepts an ORCPT of exactly 500 characters and refuses 501', () => {
    const ok = recipient('r@x', { orcpt: { type: 'rfc822', value: 'a'.repeat(500 - 'rfc822;'.length) } });
    expect(rcptToCommand(ok, ALL_CAPABILITIES).line).toHaveLength('RCPT TO:<r@x> ORCPT='.length + 500);
    const long = recipient('r@x', { orcpt: { type: 'rfc822', value: 'a'.repeat(501 - 'rfc822;'.length) } });
    const err = thrown(() => rcptToCommand(long, ALL_CAPABILITIES));
    expect(err.outcome).toBe('envelope-syntax');
    expect(err.position.attribute).toBe('dsn-orig-rcpt');
    expect(err.message).toContain('recipient on line 2');
  });

  it('counts the ORCPT limit after encoding', () => {
    // 200 '+' are 600 characters once encoded.
    const r = recipient('r@x', { orcpt: { type: 'rfc822', value: '+'.repeat(200) } });
    expect(thrown(() => rcptToCommand(r, ALL_CAPABILITIES)).outcome).toBe('envelope-syntax');
  });

  it('refuses the null recipient and a hostile address, naming the line', () => {
    const empty = thrown(() => rcptToCommand(recipient(''), ALL_CAPABILITIES));
    expect(empty.outcome).toBe('recipient-syntax');
    expect(empty.message).toMatch(/^line 2: attribute "recipient": /);
    expect(thrown(() => rcptToCommand(recipient('a@b> NOTIFY=NEVER'), ALL_CAPABILITIES)).outcome).toBe('recipient-syntax');
    expect(thrown(() => rcptToCommand(recipient('"unbalanced@b'), ALL_CAPABILITIES)).outcome).toBe('recipient-syntax');
  });

  it('refuses bad NOTIFY lists', () => {
    const bad = [['NEVER', 'SUCCESS'], ['SUCCESS', 'SUCCESS'], [], ['SUCCESS ORCPT=x']];
    for (const notify of bad) {
      const r = recipient('r@x', { notify: notify as never });
      expect(thrown(() => rcptToCommand(r, ALL_CAPABILITIES)).position.attribute).toBe('dsn-notify-options');
    }
  });

  it('refuses an ORCPT type that is not an atom', () => {
    const r = recipient('r@x', { orcpt: { type: 'rfc822 NOTIFY=NEVER', value: 'x' } });
    expect(thrown(() => rcptToCommand(r, ALL_CAPABILITIES)).position.attribute).toBe('dsn-orig-rcpt');
  });
});

describe('needsSmtpUtf8', () => {
  it('is false for an all-ASCII envelope', () => {
    expect(needsSmtpUtf8(envelope())).toBe(false);
  });

  it('is true for a non-ASCII sender, recipient or ORCPT', () => {
    expect(needsSmtpUtf8(envelope({ sender: address('\u00e9@x') }))).toBe(true);
    expect(needsSmtpUtf8(envelope({ recipients: [recipient('a@x'), recipient('\u00e9@x')] }))).toBe(true);
    const orcpt = recipient('a@x', { orcpt: { type: 'utf-8', value: '\u00e9@x' } });
    expect(needsSmtpUtf8(envelope({ recipients: [orcpt] }))).toBe(true);
  });
});
