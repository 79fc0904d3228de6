import { describe, expect, it } from 'vitest';
import { makeReply } from '../../src/smtp/reply.ts';
import { replyOutcome, sendmailExitOutcome, type SmtpStage } from '../../src/smtp/reply-outcome.ts';

const reply = (code: number, text = '') => makeReply(code, [text]);

describe('replyOutcome', () => {
  it('maps 2xx to ok, except at DATA where 354 is the positive answer', () => {
    expect(replyOutcome(reply(250, '2.1.0 Ok'), 'mail')).toBe('ok');
    expect(replyOutcome(reply(354, 'End data with <CR><LF>.<CR><LF>'), 'data-init')).toBe('ok');
    expect(replyOutcome(reply(250, 'Ok'), 'data-init')).toBe('mta-protocol');
  });

  it('maps any 4xx to mta-tempfail', () => {
    const stages: SmtpStage[] = ['greeting', 'mail', 'rcpt', 'data-init', 'data-end', 'lmtp-data-end'];
    for (const stage of stages) expect(replyOutcome(reply(452, '4.5.3 Too many recipients'), stage)).toBe('mta-tempfail');
  });

  it('treats 5.1.x and bare 550/551/553 at RCPT as recipient refusals', () => {
    expect(replyOutcome(reply(550, '5.1.1 <a@b>: Recipient address rejected: User unknown'), 'rcpt')).toBe('recipient-refused');
    expect(replyOutcome(reply(554, '5.1.2 bad destination'), 'rcpt')).toBe('recipient-refused');
    expect(replyOutcome(reply(550, 'No such user'), 'rcpt')).toBe('recipient-refused');
    expect(replyOutcome(reply(551, 'User not local'), 'rcpt')).toBe('recipient-refused');
    expect(replyOutcome(reply(553, 'Mailbox name not allowed'), 'rcpt')).toBe('recipient-refused');
    expect(replyOutcome(reply(550, '5.1.1 no such mailbox'), 'lmtp-data-end')).toBe('recipient-refused');
  });

  it('treats other 5xx at RCPT, and 5xx at MAIL or end of data, as message refusals', () => {
    expect(replyOutcome(reply(554, '5.7.1 Relay access denied'), 'rcpt')).toBe('message-refused');
    expect(replyOutcome(reply(552, 'too big'), 'rcpt')).toBe('message-refused');
    expect(replyOutcome(reply(553, '5.1.8 Sender address rejected: Domain not found'), 'mail')).toBe('message-refused');
    expect(replyOutcome(reply(550, 'no'), 'mail')).toBe('message-refused');
    expect(replyOutcome(reply(554, '5.7.1 rejected by content filter'), 'data-end')).toBe('message-refused');
  });

  it('recognizes SMTPUTF8 refusals by 5.6.7 or by name', () => {
    expect(replyOutcome(reply(553, '5.6.7 Must declare SMTPUTF8 to send unicode address'), 'rcpt')).toBe('smtputf8-unsupported');
    expect(replyOutcome(reply(555, '5.5.4 Unsupported option: SMTPUTF8'), 'mail')).toBe('smtputf8-unsupported');
    expect(replyOutcome(reply(550, '5.6.7 non-ASCII not permitted'), 'mail')).toBe('smtputf8-unsupported');
  });

  it('never bounces a message for a 5xx that was not about the message', () => {
    expect(replyOutcome(reply(554, '5.7.1 Client host rejected'), 'greeting')).toBe('mta-tempfail');
    expect(replyOutcome(reply(502, '5.5.2 Error: command not recognized'), 'ehlo')).toBe('mta-tempfail');
    expect(replyOutcome(reply(550, '5.7.0 Error: insufficient authorization'), 'xforward')).toBe('config');
    expect(replyOutcome(reply(500, 'what'), 'rset')).toBe('mta-tempfail');
  });

  it('maps unexpected 1xx/3xx and out-of-range codes to mta-protocol', () => {
    expect(replyOutcome(reply(354, 'go ahead'), 'mail')).toBe('mta-protocol');
    expect(replyOutcome(reply(150, 'hm'), 'rcpt')).toBe('mta-protocol');
    expect(replyOutcome(reply(600, 'hm'), 'rcpt')).toBe('mta-protocol');
    expect(replyOutcome(reply(99, 'hm'), 'rcpt')).toBe('mta-protocol');
  });
});

describe('sendmailExitOutcome', () => {
  it.each([
    [0, 'ok'],
    [67, 'recipient-refused'],
    [65, 'message-refused'],
    [69, 'message-refused'],
    [75, 'mta-tempfail'],
    [71, 'mta-tempfail'],
    [78, 'mta-tempfail'],
    [1, 'mta-tempfail'],
    [64, 'internal'],
    [70, 'internal'],
  ] as const)('exit %i is %s', (code, outcome) => {
    expect(sendmailExitOutcome(code, null)).toBe(outcome);
  });

  it('treats a signal as temporary and a child that never ran as internal', () => {
    expect(sendmailExitOutcome(null, 'SIGKILL')).toBe('mta-tempfail');
    expect(sendmailExitOutcome(null, null)).toBe('internal');
  });
});
