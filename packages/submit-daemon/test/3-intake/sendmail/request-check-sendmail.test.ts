/** checkRequest for the sendmail front door: the command line is parsed before any mail is read. */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { encodeRequest, MODE_SENDMAIL, REQUEST_FLAG_ENVELOPE_FD, SubmissionError } from '@mailsubmit/shared';
import { checkRequest as checkAnyRequest } from '../../../src/3-intake/request-check.ts';
import type { SendmailDoorRequest } from '../../../src/3-intake/sendmail/sendmail-door.ts';

/** Every request here names the sendmail door, so the door's own request comes back. */
const checkRequest = (data: Buffer, fds: number[], flags: { truncated: boolean; ctruncated: boolean }) => checkAnyRequest(data, fds, flags) as SendmailDoorRequest;

const flags = { truncated: false, ctruncated: false };
const frame = (argv: string[], extra: { flags?: number; env?: { name: string; value: string }[] } = {}) =>
  Buffer.from(encodeRequest({ mode: MODE_SENDMAIL, argv: ['mailsubmit-sendmail', ...argv], ...extra }));

function refusal(run: () => unknown): SubmissionError {
  try {
    run();
  } catch (error) {
    if (error instanceof SubmissionError) return error;
    throw error;
  }
  throw new Error('no SubmissionError');
}

describe('checkRequest, sendmail mode', () => {
  it('returns the parsed command line with the one fd; -v asks for the queue id', () => {
    const checked = checkRequest(frame(['-v', '-t', '-f', 'a@x.example']), [7], flags);
    expect(checked.inputFd).toBe(7);
    expect(checked.verbose).toBe(true);
    expect(checked.command).toMatchObject({ extractRecipients: true, verbose: true });
    expect(checked.command?.sender?.text).toBe('a@x.example');
    expect(checkRequest(frame(['a@x.example']), [7], flags).verbose).toBe(false);
  });

  it('refuses an unknown option as usage, before looking at the fds', () => {
    const error = refusal(() => checkRequest(frame(['-z']), [], flags));
    expect(error.outcome).toBe('usage');
    expect(error.message).toBe('option -z is not supported (see mailsubmit-sendmail(8))');
    // A mode given recipients is a bad command line too, named before the missing fds.
    expect(refusal(() => checkRequest(frame(['-bs', 'a@x.example']), [], flags)).outcome).toBe('usage');
  });

  it('refuses a missing stdin, a third fd, an envelope fd or environment entries', () => {
    expect(refusal(() => checkRequest(frame(['a@x.example']), [], flags)).outcome).toBe('no-input');
    expect(refusal(() => checkRequest(frame(['a@x.example']), [7, 8, 9], flags)).outcome).toBe('usage');
    expect(refusal(() => checkRequest(frame(['a@x.example'], { flags: REQUEST_FLAG_ENVELOPE_FD }), [7, 8], flags)).outcome).toBe('usage');
    expect(refusal(() => checkRequest(frame(['a@x.example'], { env: [{ name: 'TCPREMOTEIP', value: '192.0.2.1' }] }), [7], flags)).outcome).toBe('usage');
  });

  it('takes standard output as the second fd, keeps it for -bs and closes it in every other mode', () => {
    const output = openSync('/dev/null', 'w');
    const smtp = checkRequest(frame(['-bs']), [7, output], flags);
    expect(smtp.command?.mode).toBe('smtp');
    expect(smtp.inputFd).toBe(7);
    expect(smtp.outputFd).toBe(output);
    expect(fstatSync(output).isCharacterDevice()).toBe(true);
    closeSync(output);

    const unused = openSync('/dev/null', 'w');
    const queued = checkRequest(frame(['-i', 'a@x.example']), [7, unused], flags);
    expect(queued.inputFd).toBe(7);
    expect(queued.outputFd).toBeUndefined();
    expect(() => fstatSync(unused)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    // A helper passing standard input alone still serves every mode but -bs.
    expect(checkRequest(frame(['a@x.example']), [7], flags).inputFd).toBe(7);
    expect(refusal(() => checkRequest(frame(['-bs']), [7], flags)).outcome).toBe('no-input');
  });

  it('refuses a malformed -f with the sender outcome', () => {
    expect(refusal(() => checkRequest(frame(['-f', 'a b', 'c@x.example']), [7], flags)).outcome).toBe('sender-syntax');
  });
});
