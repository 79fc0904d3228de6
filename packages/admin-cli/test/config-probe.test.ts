/**
 * `mailsubmitctl config check --probe` against the relay bed (three private
 * Postfix instances: plain, STARTTLS with the bed's CA, AUTH over STARTTLS),
 * a bare SMTP server announcing almost nothing, and a sendmail downstream:
 * each block says what that server offers as the daemon would find it, and
 * what mailsubmit loses there.
 */
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostfixRelays } from '../../../test/support/postfix-relays.ts';
import { RecordingSink } from '../../../test/support/recording-sink.ts';
import { ensureUser, removeAll, type TestUser } from '../../../test/support/test-accounts.ts';
import { COMMAND, type CtlResult } from './run-ctl.ts';

/** The built command, run without blocking this process: the bare server below answers from it. */
function ctl(args: readonly string[]): Promise<CtlResult> {
  return new Promise((resolve) => {
    execFile(COMMAND, args, { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr });
    });
  });
}

/** The block of output for one downstream: from its header line to the next header. */
function blockOf(stdout: string, header: string): string {
  // A header starts a line; the `ok:` line is always first.
  const start = stdout.indexOf(`\ndownstream ${header} (`);
  if (start < 0) throw new Error(`no block for ${header} in:\n${stdout}`);
  const next = stdout.indexOf('\ndownstream ', start + 1);
  return stdout.slice(start + 1, next < 0 ? undefined : next + 1);
}

/** A server that greets, answers EHLO with 8BITMIME alone and says goodbye to QUIT; records the commands. */
async function bareServer(commands: string[]): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    socket.write('220 bare.test ESMTP\r\n');
    let pending = '';
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      for (let end = pending.indexOf('\r\n'); end >= 0; end = pending.indexOf('\r\n')) {
        const line = pending.slice(0, end);
        pending = pending.slice(end + 2);
        commands.push(line);
        const verb = line.split(' ')[0]?.toUpperCase();
        if (verb === 'EHLO') socket.write('250-bare.test\r\n250 8BITMIME\r\n');
        else if (verb === 'QUIT') socket.end('221 2.0.0 Bye\r\n');
        else socket.write('502 5.5.1 Not here\r\n');
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { server, port: address.port };
}

describe('mailsubmitctl config check --probe', () => {
  const sink = new RecordingSink();
  const bareCommands: string[] = [];
  let relays: PostfixRelays;
  let bare: { server: Server; port: number };
  let dir: string;
  let list: string;
  let daemonUser: TestUser;

  /** A secret file as the daemon wants it: its user's, mode 0600. */
  function secretFile(name: string, secret: string): string {
    const path = join(dir, name);
    writeFileSync(path, `${secret}\n`, { mode: 0o600 });
    chownSync(path, daemonUser.uid, daemonUser.gid);
    return path;
  }

  function writeConfig(name: string, lines: readonly string[]): string {
    const path = join(dir, name);
    const daemon = ['[daemon]', `authorization_list = "${list}"`, `socket = "${join(dir, 'none-submit.sock')}"`, `control_socket = "${join(dir, 'none-control.sock')}"`];
    writeFileSync(path, `${[...daemon, ...lines].join('\n')}\n`, { mode: 0o644 });
    return path;
  }

  const relay = (name: 'local' | 'starttls' | 'auth', extra: readonly string[] = []) => [
    '[[downstream]]',
    `name = "${name}"`,
    `target = "127.0.0.1:${relays.instance(name).port}"`,
    ...(name === 'local' ? [] : ['tls = "verify"', `tls_ca_file = "${relays.ca.caFile}"`]),
    ...extra,
  ];

  let fullConfig: string;

  beforeAll(async () => {
    // 10240000 octets, below the daemon's default limits.max_message_size (52428800).
    relays = await PostfixRelays.start(sink, { postfix: { mainCf: ['message_size_limit = 10240000'] } });
    bare = await bareServer(bareCommands);
    dir = mkdtempSync('/tmp/mailsubmitctl-probe-');
    chmodSync(dir, 0o755);
    list = join(dir, 'authorized');
    writeFileSync(list, 'mstsomeone client\n', { mode: 0o644 });
    daemonUser = ensureUser('mstprobed');
    fullConfig = writeConfig('full.conf', [
      ...relay('local'),
      ...relay('starttls'),
      ...relay('auth', [`auth_username = "${relays.user}"`, `auth_secret_file = "${secretFile('auth.secret', relays.password)}"`]),
      '[[downstream]]',
      'name = "bare"',
      `target = "127.0.0.1:${bare.port}"`,
      '[[downstream]]',
      'name = "program"',
      'transport = "sendmail"',
      // Not for the sendmail door: the MTA completes that door's header, so the bare server's lack of SOURCE counts.
      'doors = ["native"]',
    ]);
  }, 120_000);

  afterAll(async () => {
    await relays?.stop();
    await sink.close();
    await new Promise((resolve) => bare?.server.close(resolve));
    removeAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reports what each downstream offers, in the file\'s order, and exits 0 when each answered', async () => {
    const { code, stdout, stderr } = await ctl(['config', 'check', '--daemon-user', daemonUser.name, '--probe', fullConfig]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const headers = [...stdout.matchAll(/^downstream (\S+) \(/gm)].map((m) => m[1]);
    expect(headers).toEqual(['"local"', '"starttls"', '"auth"', '"bare"', '"program"']);

    // The bed's listeners are the re-injection listener: XFORWARD for 127.0.0.0/8, DSN, SMTPUTF8.
    const local = blockOf(stdout, '"local"');
    expect(local).toContain(`downstream "local" (smtp 127.0.0.1:${relays.local.port}):\n  answered:   yes\n  TLS:        none (tls = "none")\n  AUTH:       not configured (none offered)\n`);
    const xforward = /^ {2}XFORWARD: +(.*)$/m.exec(local)?.[1]?.split(' ') ?? [];
    expect(new Set(xforward)).toEqual(new Set(['NAME', 'ADDR', 'PORT', 'PROTO', 'HELO', 'IDENT', 'SOURCE']));
    expect(local).toContain('  DSN:        yes\n  SIZE:       10240000 octets\n  SMTPUTF8:   yes\n  8BITMIME:   yes\n  PIPELINING: yes\n');
    expect(local).toContain('  warning: SIZE 10240000 is below limits.max_message_size (52428800)');
    expect(local.match(/warning:/g)).toHaveLength(1);

    const starttls = blockOf(stdout, '"starttls"');
    expect(starttls).toMatch(/^ {2}TLS: +TLSv1\.3 \S+, verified \(CN=localhost\) \(tls = "verify"\)$/m);
    expect(starttls).toMatch(/^ {2}XFORWARD: +NAME /m);

    // Cyrus offers its mechanisms only under TLS; the first of the allowed ones it offers is used.
    const auth = blockOf(stdout, '"auth"');
    expect(auth).toMatch(/^ {2}TLS: +TLSv1\.3 \S+, verified \(CN=localhost\)/m);
    expect(auth).toMatch(new RegExp(`^ {2}AUTH: +logged in as ${relays.user} with SCRAM-SHA-256 \\(offered: (?=.*SCRAM-SHA-256)(?=.*PLAIN)(?=.*LOGIN).*\\)$`, 'm'));
    expect(auth).toMatch(/^ {2}XFORWARD: +NAME /m);

    const bareBlock = blockOf(stdout, '"bare"');
    expect(bareBlock).toContain('  XFORWARD:   not offered\n  DSN:        no\n  SIZE:       not announced\n  SMTPUTF8:   no\n  8BITMIME:   yes\n  PIPELINING: no\n');
    expect(bareBlock).toContain("  warning: no XFORWARD: the callers' client attributes");
    expect(bareBlock).toContain("  warning: no XFORWARD SOURCE: the sendmail door's mail cannot be marked local");
    expect(bareBlock).toContain("  warning: no DSN: callers' NOTIFY, ORCPT, RET and ENVID are not passed (logged as omitted)");
    expect(bareBlock).toContain('  warning: no SMTPUTF8: mail whose sender or a recipient has a non-ASCII address is refused (69)');
    // Greeting, EHLO and QUIT: no MAIL FROM, nothing delivered.
    expect(bareCommands.map((c) => c.split(' ')[0])).toEqual(['EHLO', 'QUIT']);

    expect(blockOf(stdout, '"program"')).toBe('downstream "program" (sendmail /usr/sbin/sendmail):\n  not probed: transport = "sendmail" runs a program; there is no server to ask\n');
    expect(sink.messages).toHaveLength(0);
  });

  it('says the credentials were refused, without the secret, or the certificate did not verify, and exits 75', async () => {
    const wrong = 'not-the-Password-4711';
    const path = writeConfig('wrong.conf', [
      ...relay('auth', [`auth_username = "${relays.user}"`, `auth_secret_file = "${secretFile('wrong.secret', wrong)}"`, 'auth_mechanisms = ["PLAIN"]']),
      // Without the bed's CA: the system's store does not know it.
      '[[downstream]]',
      'name = "unverified"',
      `target = "127.0.0.1:${relays.starttls.port}"`,
      'tls = "verify"',
      '[limits]',
      'max_message_size = 10240000',
    ]);
    const { code, stdout, stderr } = await ctl(['config', 'check', '--daemon-user', daemonUser.name, '--probe', path]);
    const block = blockOf(stdout, '"auth"');
    expect(block).toContain('  answered:   yes\n');
    expect(block).toMatch(new RegExp(`^ {2}AUTH: +refused: the MTA refused the credentials for ${relays.user}: 535 `, 'm'));
    // What it offers, read on a connection that did not log in; SIZE is no loss at this limit.
    expect(block).toMatch(/^ {2}DSN: +yes$/m);
    expect(block).not.toContain('warning: SIZE');
    expect(`${stdout}${stderr}`).not.toContain(wrong);
    const unverified = blockOf(stdout, '"unverified"');
    expect(unverified).toMatch(/^ {2}answered: +yes\n {2}TLS: +failed: the MTA's certificate does not verify: .*\(tls = "verify"\)\n$/m);
    expect(unverified).not.toContain('XFORWARD');
    expect(stderr).toBe('mailsubmitctl: cannot hand mail to "auth", "unverified" as configured (see above)\n');
    expect(code).toBe(75);
  });

  it('names an unnamed downstream by its target, and says what tls = "may" and xforward = false leave out', async () => {
    const path = writeConfig('single.conf', ['[downstream]', `target = "127.0.0.1:${relays.local.port}"`, 'tls = "may"', 'xforward = false']);
    const { code, stdout, stderr } = await ctl(['config', 'check', '--daemon-user', daemonUser.name, '--probe', path]);
    const block = blockOf(stdout, `127.0.0.1:${relays.local.port}`);
    expect(block).toContain(`downstream 127.0.0.1:${relays.local.port} (smtp):\n  answered:   yes\n  TLS:        none: STARTTLS not offered, so mail goes in the clear (tls = "may")\n`);
    expect(block).toMatch(/^ {2}XFORWARD: +NAME .* \(not used: xforward = false\)$/m);
    // The daemon completes the sendmail door's header itself and passes no attributes by choice: no loss to warn of.
    expect(block).not.toMatch(/warning: .*XFORWARD/);
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it('says which downstream did not answer, in the words of the daemon\'s log, and exits 75', async () => {
    await relays.local.stopMailSystem();
    const { code, stdout, stderr } = await ctl(['config', 'check', '--daemon-user', daemonUser.name, '--probe', fullConfig]);
    expect(blockOf(stdout, '"local"')).toBe(`downstream "local" (smtp 127.0.0.1:${relays.local.port}):\n  answered:   no: cannot connect to 127.0.0.1:${relays.local.port}: ECONNREFUSED\n`);
    expect(blockOf(stdout, '"starttls"')).toContain('  answered:   yes\n');
    expect(stderr).toBe('mailsubmitctl: cannot hand mail to "local" as configured (see above)\n');
    expect(code).toBe(75);
  });

  it('probes nothing without --probe', async () => {
    const { code, stdout } = await ctl(['config', 'check', '--daemon-user', daemonUser.name, fullConfig]);
    expect(stdout).not.toMatch(/^downstream /m);
    expect(code).toBe(0);
  });
});
