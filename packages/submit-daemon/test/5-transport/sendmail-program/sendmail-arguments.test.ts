import { describe, expect, it } from 'vitest';
import { parseEnvelopeBlock, SubmissionError } from '@mailsubmit/shared';
import { notifyArgument, sendmailPlan, sendmailVerifyArguments } from '../../../src/5-transport/sendmail-program/sendmail-arguments.ts';
import { address, envelope, recipients } from '../smtp/test-envelopes.ts';

const block = (...lines: string[]) => parseEnvelopeBlock(`${lines.join('\n')}\n\n`);

function refusal(run: () => unknown): SubmissionError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(SubmissionError);
    return err as SubmissionError;
  }
  throw new Error('expected a SubmissionError');
}

describe('sendmailPlan', () => {
  it('builds one run for the common case, recipients after --', () => {
    const plan = sendmailPlan(block('sender: s@example.org', 'recipient: a@example.com', 'recipient: b@example.com'));
    expect(plan.runs).toHaveLength(1);
    expect(plan.runs[0]?.args).toEqual(['-G', '-i', '-f', '<s@example.org>', '--', 'a@example.com', 'b@example.com']);
    expect(plan.dropped).toEqual([]);
  });

  it('passes -C first, and NOTIFY, RET and ENVID as options', () => {
    const env = block(
      'sender: <s@example.org>',
      'dsn-envelope-id: id-1',
      'dsn-return-option: headers',
      'recipient: a@example.com',
      'dsn-notify-options: delay,success',
    );
    expect(sendmailPlan(env, { configDirectory: '/etc/postfix-out' }).runs[0]?.args).toEqual([
      '-C',
      '/etc/postfix-out',
      '-G',
      '-i',
      '-f',
      '<s@example.org>',
      '-N',
      'delay,success',
      '-R',
      'hdrs',
      '-iV',
      'id-1',
      '--',
      'a@example.com',
    ]);
  });

  it('writes the null sender as <>', () => {
    const args = sendmailPlan(block('sender: <>', 'recipient: a@example.com')).runs[0]?.args;
    expect(args?.slice(2, 4)).toEqual(['-f', '<>']);
  });

  it('passes unqualified and quoted addresses as they are', () => {
    const env = block('sender: "john doe"@example.org', 'recipient: postmaster', 'recipient: "a,b"@[192.0.2.1]');
    expect(sendmailPlan(env).runs[0]?.args).toEqual(['-G', '-i', '-f', '<"john doe"@example.org>', '--', 'postmaster', '"a,b"@[192.0.2.1]']);
  });

  it('groups recipients by NOTIFY, in the order of each group\'s first recipient', () => {
    const env = block(
      'sender: s@example.org',
      'recipient: a@example.com',
      'dsn-notify-options: success',
      'recipient: b@example.com',
      'dsn-notify-options: never',
      'recipient: c@example.com',
      'recipient: d@example.com',
      'dsn-notify-options: SUCCESS',
      'recipient: e@example.com',
    );
    const runs = sendmailPlan(env).runs.map(({ args, recipients }) => ({ args: args.slice(4), lines: recipients.map((r) => r.line) }));
    expect(runs).toEqual([
      { args: ['-N', 'success', '--', 'a@example.com', 'd@example.com'], lines: [2, 7] },
      { args: ['-N', 'never', '--', 'b@example.com'], lines: [4] },
      { args: ['--', 'c@example.com', 'e@example.com'], lines: [6, 9] },
    ]);
  });

  it('lists what the command line cannot carry', () => {
    const env = block(
      'sender: s@example.org',
      'client_address: 192.0.2.7',
      'helo_name: client.example',
      'recipient: a@example.com',
      'dsn-orig-rcpt: rfc822;x@example.com',
      'recipient: b@example.com',
      'dsn-orig-rcpt: y@example.com',
      'recipient: c@example.com',
    );
    expect(sendmailPlan(env).dropped).toEqual(['ORCPT for 2 recipients', 'client attributes for XFORWARD (helo_name, client_address)']);
  });

  it('passes an ENVID starting with "-" nowhere, and says so', () => {
    const plan = sendmailPlan(block('sender: s@example.org', 'dsn-envelope-id: -q', 'recipient: a@example.com'));
    expect(plan.runs[0]?.args).toEqual(['-G', '-i', '-f', '<s@example.org>', '--', 'a@example.com']);
    expect(plan.dropped).toEqual(['ENVID (starts with "-", which sendmail could read as an option)']);
  });

  it('refuses a sender starting with "-", even though it would go inside brackets', () => {
    const err = refusal(() => sendmailPlan(block('sender: -oi@example.org', 'recipient: a@example.com')));
    expect(err.outcome).toBe('sender-syntax');
    expect(err.message).toContain('attribute "sender"');
  });

  it('lets a recipient start with "-": it comes after --', () => {
    const args = sendmailPlan(block('sender: s@example.org', 'recipient: -q@example.com')).runs[0]?.args;
    expect(args?.slice(-2)).toEqual(['--', '-q@example.com']);
  });

  it('refuses what validation should have made impossible', () => {
    expect(refusal(() => sendmailPlan(envelope({ recipients: [] }))).outcome).toBe('envelope-syntax');
    expect(refusal(() => sendmailPlan(envelope({ recipients: recipients('') }))).outcome).toBe('recipient-syntax');
    const control = refusal(() => sendmailPlan(envelope({ recipients: recipients('a\n-q@example.com') })));
    expect(control.outcome).toBe('internal');
    expect(refusal(() => sendmailPlan(envelope({ sender: address('a\0b@example.org') }))).outcome).toBe('internal');
    expect(refusal(() => sendmailPlan(envelope(), { configDirectory: 'relative/dir' })).outcome).toBe('config');
  });
});

describe('notifyArgument', () => {
  it('writes the keywords in lower case, comma separated', () => {
    expect(notifyArgument(['SUCCESS', 'FAILURE', 'DELAY'])).toBe('success,failure,delay');
    expect(notifyArgument(['NEVER'])).toBe('never');
    expect(notifyArgument(undefined)).toBeUndefined();
  });
});

describe('sendmailVerifyArguments', () => {
  it('asks Postfix\'s sendmail for -bv with the sender in brackets, recipients after --', () => {
    const env = block('sender: s@example.org', 'recipient: a@example.com', 'recipient: b@example.com');
    expect(sendmailVerifyArguments(env)).toEqual(['-bv', '-f', '<s@example.org>', '--', 'a@example.com', 'b@example.com']);
    expect(sendmailVerifyArguments(env, { configDirectory: '/etc/postfix-x' })).toEqual(['-C', '/etc/postfix-x', '-bv', '-f', '<s@example.org>', '--', 'a@example.com', 'b@example.com']);
  });

  it('refuses what the delivery runs refuse: a sender read as an option, a null recipient', () => {
    expect(refusal(() => sendmailVerifyArguments(envelope({ sender: address('-oQ/tmp@x') }))).outcome).toBe('sender-syntax');
    expect(refusal(() => sendmailVerifyArguments(envelope({ recipients: recipients('') }))).outcome).toBe('recipient-syntax');
    expect(refusal(() => sendmailVerifyArguments(envelope(), { configDirectory: 'relative' })).outcome).toBe('config');
  });
});
