import { describe, expect, it } from 'vitest';
import { describeReply, enhancedStatusOf, makeReply, parseReplyLine, queueIdOf } from '../../src/smtp/reply.ts';

describe('parseReplyLine', () => {
  it('reads continuation and last lines', () => {
    expect(parseReplyLine('250-PIPELINING')).toEqual({ code: 250, last: false, text: 'PIPELINING' });
    expect(parseReplyLine('250 OK')).toEqual({ code: 250, last: true, text: 'OK' });
    expect(parseReplyLine('250')).toEqual({ code: 250, last: true, text: '' });
  });

  it('rejects lines that are not replies', () => {
    for (const line of ['', '25 OK', '2500 OK', 'abc OK', '250_OK', ' 250 OK']) expect(parseReplyLine(line)).toBeNull();
  });

  it('replaces control characters in the text', () => {
    expect(parseReplyLine('550 bad\x1b[31m\tthing')?.text).toBe('bad?[31m?thing');
  });
});

describe('enhancedStatusOf', () => {
  it('takes the code when its class agrees with the reply', () => {
    expect(enhancedStatusOf(550, '5.1.1 <a@b>: unknown')).toBe('5.1.1');
    expect(enhancedStatusOf(250, '2.0.0 Ok: queued as 3CF6B2AAE8')).toBe('2.0.0');
    expect(enhancedStatusOf(451, '4.3.0 Error')).toBe('4.3.0');
  });

  it('ignores a mismatched class, a missing code or a code glued to text', () => {
    expect(enhancedStatusOf(550, '4.1.1 odd')).toBeNull();
    expect(enhancedStatusOf(550, 'Mailbox unavailable')).toBeNull();
    expect(enhancedStatusOf(550, '5.1.1x')).toBeNull();
    expect(enhancedStatusOf(250, '2.0.0')).toBe('2.0.0');
  });
});

describe('makeReply, describeReply and queueIdOf', () => {
  it('joins the lines and finds the Postfix queue id', () => {
    const reply = makeReply(250, ['2.0.0 Ok: queued as 3CF6B2AAE8']);
    expect(reply.enhanced).toBe('2.0.0');
    expect(describeReply(reply)).toBe('250 2.0.0 Ok: queued as 3CF6B2AAE8');
    expect(queueIdOf(reply)).toBe('3CF6B2AAE8');
  });

  it('finds long queue ids and none where there is none', () => {
    expect(queueIdOf(makeReply(250, ['2.0.0 Ok: queued as 4ZbCdEfGh1jKlMn']))).toBe('4ZbCdEfGh1jKlMn');
    expect(queueIdOf(makeReply(250, ['2.0.0 Ok']))).toBeUndefined();
  });

  it('finds the message id in OpenSMTPD\'s reply, and nothing in look-alikes', () => {
    expect(queueIdOf(makeReply(250, ['2.0.0 3c2f7f02 Message accepted for delivery']))).toBe('3c2f7f02');
    expect(queueIdOf(makeReply(250, ['3c2f7f02 Message accepted for delivery']))).toBe('3c2f7f02');
    expect(queueIdOf(makeReply(250, ['2.0.0 Message accepted for delivery']))).toBeUndefined();
    expect(queueIdOf(makeReply(250, ['2.0.0 3c2f7f02 Message accepted for delivery, maybe']))).toBeUndefined();
  });

  it('shortens long replies', () => {
    const text = describeReply(makeReply(550, ['x'.repeat(1000)]), 50);
    expect(text).toHaveLength(50);
    expect(text.endsWith('...')).toBe(true);
  });
});
