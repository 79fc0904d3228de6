/**
 * A second real MTA for tests: Debian's OpenSMTPD, run beside Postfix to
 * show that mailsubmit's SMTP transport does not depend on Postfix.
 *
 * As a package OpenSMTPD conflicts with Postfix, so it is never installed:
 * install/test-tools.sh downloads its .deb into DEB_CACHE and `start`
 * unpacks it (dpkg-deb -x) into a temporary directory. smtpd insists on
 * compiled-in paths (/var/spool/smtpd, /var/lib/opensmtpd/empty as its
 * chroot, /var/run/smtpd.sock) and compiled-in privsep users (opensmtpd,
 * opensmtpq). It therefore runs in a private mount namespace (unshare -m)
 * where the temporary directory's own var/ is bind-mounted over /var, and
 * copies of /etc/passwd and /etc/group with the two users added are
 * bind-mounted over the originals. Nothing outside the temporary directory
 * changes: no user is created on the host, no path outside it is written,
 * and the mounts vanish with the namespace when smtpd exits.
 *
 * The instance listens on a loopback port only and relays every message to
 * `relayPort` (a RecordingSink), so tests see the MAIL/RCPT parameters it
 * passes on and the message bytes it delivers.
 *
 * Requires root, unshare(1), dpkg-deb(1) and the cached .deb.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './free-port.ts';
import { matchingLine } from './until.ts';

const run = promisify(execFile);

/** Where install/test-tools.sh puts the second MTA's packages. */
export const DEB_CACHE = '/var/cache/mailsubmit/test-debs';
/** The privsep users compiled into Debian's smtpd (its postinst creates them with these names). */
const PRIVSEP_USERS = ['opensmtpd', 'opensmtpq'] as const;
/** The host name the instance announces in its greeting and Received: header. */
export const SECOND_MTA_HOSTNAME = 'second-mta.test';

export interface SecondMtaOptions {
  /** Where the MTA relays everything: the recording sink. */
  readonly relayPort: number;
}

function cachedDeb(): string | undefined {
  if (!existsSync(DEB_CACHE)) return undefined;
  const name = readdirSync(DEB_CACHE)
    .filter((file) => /^opensmtpd_.*\.deb$/.test(file))
    .sort()
    .pop();
  return name === undefined ? undefined : join(DEB_CACHE, name);
}

export class SecondMta {
  private output = '';
  private exited: Promise<void>;

  private constructor(
    readonly dir: string,
    /** The SMTP listener on 127.0.0.1. */
    readonly port: number,
    private readonly child: ChildProcess,
  ) {
    child.stdout?.on('data', (chunk: Buffer) => (this.output += chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => (this.output += chunk.toString('utf8')));
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  static isAvailable(): boolean {
    return userInfo().uid === 0 && cachedDeb() !== undefined && existsSync('/usr/bin/unshare') && existsSync('/usr/bin/dpkg-deb');
  }

  static async start(options: SecondMtaOptions): Promise<SecondMta> {
    const deb = cachedDeb();
    if (deb === undefined) throw new Error(`no opensmtpd_*.deb in ${DEB_CACHE}: run install/test-tools.sh`);
    const dir = mkdtempSync('/tmp/mailsubmit-opensmtpd-');
    // smtpd's unprivileged processes must traverse into var/ below it.
    chmodSync(dir, 0o755);
    const root = join(dir, 'root');
    await run('dpkg-deb', ['-x', deb, root]);
    const varDir = join(dir, 'var');
    for (const sub of ['spool', 'lib/opensmtpd/empty', 'run', 'mail', 'tmp']) mkdirSync(join(varDir, sub), { recursive: true, mode: 0o755 });
    chmodSync(join(varDir, 'tmp'), 0o1777);
    const etc = join(dir, 'etc');
    mkdirSync(etc);
    writeAccounts(etc);
    const port = await freePort();
    const config = join(dir, 'smtpd.conf');
    writeFileSync(config, smtpdConf(port, options.relayPort), { mode: 0o644 });
    // The shell's mounts live only in the namespace unshare made; exec keeps smtpd as this child.
    const script = [
      `mount --bind ${varDir} /var`,
      `mount --bind ${join(etc, 'passwd')} /etc/passwd`,
      `mount --bind ${join(etc, 'group')} /etc/group`,
      `exec ${join(root, 'usr', 'sbin', 'smtpd')} -d -T smtp -f ${config}`,
    ].join(' && ');
    const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-ec', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    const instance = new SecondMta(dir, port, child);
    try {
      await instance.waitForGreeting();
    } catch (err) {
      await instance.stop();
      throw err;
    }
    return instance;
  }

  /** Stops smtpd (its parent takes the other processes down) and removes the directory. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const killer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await this.exited;
      clearTimeout(killer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** What smtpd wrote so far: its log and, with `-T smtp`, every SMTP line in and out. */
  log(): string {
    return this.output;
  }

  /** Waits until a log line matches, and returns it. */
  waitForLog(pattern: RegExp, timeoutMs = 20_000): Promise<string> {
    return matchingLine(() => this.log(), pattern, timeoutMs, `opensmtpd log has no line matching ${pattern}`);
  }

  /** The EHLO reply's keywords, as a client on the listener sees them. */
  async ehloKeywords(): Promise<string[]> {
    const lines = await this.converse(['EHLO probe.test', 'QUIT']);
    return lines
      .filter((l) => /^250[- ]/.test(l))
      .slice(1)
      .map((l) => l.slice(4).split(' ')[0] ?? '')
      .filter((k) => k !== '');
  }

  private async waitForGreeting(): Promise<void> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`opensmtpd exited at start: ${this.output}`);
      const greeting = await this.converse(['QUIT']).catch(() => []);
      if (greeting[0]?.startsWith('220 ')) return;
      if (Date.now() > deadline) throw new Error(`opensmtpd did not greet on ${this.port}: ${this.output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Sends each command after the previous reply is complete; resolves with every reply line. */
  private converse(commands: readonly string[]): Promise<string[]> {
    return new Promise((resolve, reject) => {
      const socket = connect(this.port, '127.0.0.1');
      const lines: string[] = [];
      const queue = [...commands];
      let rest = '';
      const timer = setTimeout(() => socket.destroy(new Error('no answer')), 10_000);
      socket.on('data', (chunk: Buffer) => {
        rest += chunk.toString('latin1');
        let end: number;
        while ((end = rest.indexOf('\r\n')) !== -1) {
          const line = rest.slice(0, end);
          rest = rest.slice(end + 2);
          lines.push(line);
          // A reply ends at a line with a space after the code.
          if (/^\d{3} /.test(line)) {
            const next = queue.shift();
            if (next === undefined) socket.end();
            else socket.write(`${next}\r\n`);
          }
        }
      });
      socket.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.on('close', () => {
        clearTimeout(timer);
        resolve(lines);
      });
    });
  }
}

/** The host's account files with smtpd's privsep users added, at ids nobody uses. */
function writeAccounts(etc: string): void {
  const others = (file: string) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => line !== '' && !PRIVSEP_USERS.some((name) => line.startsWith(`${name}:`)));
  const passwd = others('/etc/passwd');
  const group = others('/etc/group');
  const used = new Set([...passwd, ...group].map((line) => Number(line.split(':')[2])));
  const ids: number[] = [];
  for (let id = 64_999; ids.length < PRIVSEP_USERS.length; id--) if (!used.has(id)) ids.push(id);
  PRIVSEP_USERS.forEach((name, i) => {
    passwd.push(`${name}:x:${ids[i]}:${ids[i]}:OpenSMTPD test instance:/var/lib/opensmtpd/empty:/usr/sbin/nologin`);
    group.push(`${name}:x:${ids[i]}:`);
  });
  writeFileSync(join(etc, 'passwd'), `${passwd.join('\n')}\n`, { mode: 0o644 });
  writeFileSync(join(etc, 'group'), `${group.join('\n')}\n`, { mode: 0o644 });
}

/**
 * Accept anything from the loopback listener and relay it to the sink.
 * `smtp://` is plain SMTP (STARTTLS only if offered; the sink offers none).
 */
function smtpdConf(port: number, relayPort: number): string {
  return [
    `listen on 127.0.0.1 port ${port} hostname ${SECOND_MTA_HOSTNAME}`,
    `action "sink" relay host smtp://127.0.0.1:${relayPort} helo ${SECOND_MTA_HOSTNAME}`,
    'match from any for any action "sink"',
    '',
  ].join('\n');
}
