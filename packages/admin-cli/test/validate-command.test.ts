/** `mailsubmitctl validate` as an administrator runs it: the built command, real files and pipes. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const COMMAND = join(ROOT, 'node_modules', '.bin', 'mailsubmitctl');
const EXAMPLE = join(ROOT, 'docs', 'examples', 'submission.txt');

function ctl(args: string[], input?: string | Buffer) {
  const result = spawnSync(COMMAND, args, { input: input ?? '', encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

const SMALL = 'sender: <a@example.org>\nrecipient: b@example.org\n\nSubject: hi\n\nbody\n';

describe('mailsubmitctl validate', () => {
  it('accepts the contract example from a file', () => {
    const { code, stdout, stderr } = ctl(['validate', EXAMPLE]);
    expect(stderr).toBe('');
    expect(stdout).toMatch(/^ok: 2 recipients, \d+ octets, 7bit\n$/);
    expect(code).toBe(0);
  });

  it('reads standard input when no file is given', () => {
    const { code, stdout } = ctl(['validate'], SMALL);
    expect(stdout).toBe(`ok: 1 recipient, ${Buffer.byteLength('Subject: hi\n\nbody\n')} octets, 7bit\n`);
    expect(code).toBe(0);
  });

  it('says 8bit and smtputf8 when the input needs them', () => {
    const { code, stdout } = ctl(['validate'], 'sender: jörg@example.org\nrecipient: b@example.org\n\nSubject: é\n');
    expect(stdout).toMatch(/8bit, smtputf8$/m);
    expect(code).toBe(0);
  });

  it('refuses a malformed envelope with 65 and one line naming line and attribute', () => {
    const { code, stdout, stderr } = ctl(['validate'], 'sender: <a@example.org>\nrecipient: <>\n\nSubject: x\n');
    expect(stdout).toBe('');
    expect(stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect(stderr).toMatch(/^mailsubmitctl: .*line 2: attribute "recipient": /);
    expect(code).toBe(65);
  });

  it('takes a message as the daemon does by default, and refuses it with 65 naming the line under --strict-message-syntax', () => {
    const input = 'sender: a@example.org\nrecipient: b@example.org\n\nFrom alice Tue Nov 24\nSubject: x\n';
    // As Postfix takes it: a first line that is no header field starts the body.
    expect(ctl(['validate'], input)).toEqual({ code: 0, stdout: 'ok: 1 recipient, 33 octets, 7bit\n', stderr: '' });
    const { code, stderr } = ctl(['validate', '--strict-message-syntax'], input);
    expect(stderr).toMatch(/^mailsubmitctl: [^\n]*line 4: /);
    expect(code).toBe(65);
  });

  it('applies limits given on the command line', () => {
    expect(ctl(['validate', '--max-message-size', '5'], SMALL).code).toBe(65);
    expect(ctl(['validate', '--max-message-size', '5'], SMALL).stderr).toMatch(/over a configured limit/);
    expect(ctl(['validate', '--max-recipients', '1'], SMALL.replace('\n\n', '\nrecipient: c@example.org\n\n')).code).toBe(65);
  });

  it('answers 66 for a file that is missing or a directory', () => {
    const missing = ctl(['validate', join(tmpdir(), 'no-such-submission')]);
    expect(missing.stderr).toMatch(/no such file/);
    expect(missing.code).toBe(66);
    expect(ctl(['validate', tmpdir()]).code).toBe(66);
  });

  it('answers 64 for a bad command line', () => {
    expect(ctl(['validate', '--no-such-option']).code).toBe(64);
    expect(ctl(['validate', '--max-line-length', 'many']).code).toBe(64);
    expect(ctl(['no-such-command']).code).toBe(64);
  });

  it('prints the parsed envelope with --json', () => {
    const dir = mkdtempSync(join(tmpdir(), 'validate-'));
    writeFileSync(join(dir, 'in'), SMALL.replace('\n\n', '\ndsn-notify-options: never\n\n'));
    const { code, stdout } = ctl(['validate', '--json', join(dir, 'in')]);
    const parsed = JSON.parse(stdout) as { outcome: string; envelope: { recipients: { notify: string[] }[] } };
    expect(parsed.outcome).toBe('ok');
    expect(parsed.envelope.recipients[0]?.notify).toEqual(['NEVER']);
    expect(code).toBe(0);
  });
});
