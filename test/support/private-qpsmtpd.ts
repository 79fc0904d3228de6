/**
 * A private qpsmtpd for tests: Debian's qpsmtpd-forkserver on a free
 * loopback port, running as a test user, with its own configuration
 * directory, spool and log under a temporary directory. The packaged
 * configuration (/etc/qpsmtpd) and service are never read or touched.
 *
 * qpsmtpd 0.94 finds each configuration file separately: in
 * $QPSMTPD_CONFIG when the file exists there, else in /var/qmail/control.
 * Every file it needs is therefore written here: plugins, plugin_dirs,
 * rcpthosts (the recipient domains rcpt_ok accepts, so no relay plugin is
 * needed), me, spool_dir, loglevel and logging. The log is logging/warn,
 * to stderr, which goes to a file: 0.94's logging/file dies on every line
 * logged outside a transaction ("Can't call method notes on unblessed
 * reference"), and the program the stock qmail-queue plugin runs writes
 * its one line to that same stderr, so one file holds everything in order.
 *
 *   const qp = await PrivateQpsmtpd.start({ user, plugins: ['rcpt_ok', 'queue/qmail-queue /path'] });
 *   swaks --server 127.0.0.1 --port qp.port ...; qp.log(); await qp.stop();
 *
 * Requires root (the forkserver binds, then drops to the user).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './free-port.ts';
import type { TestUser } from './test-accounts.ts';
import { matchingLine } from './until.ts';

const run = promisify(execFile);
const FORKSERVER = '/usr/bin/qpsmtpd-forkserver';
const PACKAGED_PLUGINS = '/usr/share/qpsmtpd/plugins';
/** qpsmtpd's name for itself, in its greeting and its Received header. */
export const QPSMTPD_HOSTNAME = 'qpsmtpd.test.localdomain';

export interface PrivateQpsmtpdOptions {
  /** The user the forkserver drops to (an mst test user). */
  readonly user: TestUser;
  /** config/plugins, in order (the queue plugin last). */
  readonly plugins: readonly string[];
  /** Directories searched for plugins before the packaged ones. */
  readonly pluginDirs?: readonly string[];
  /** Domains rcpt_ok accepts recipients for. */
  readonly rcptHosts?: readonly string[];
  /** More configuration files, by name (e.g. flat_auth_pw). */
  readonly config?: Readonly<Record<string, string>>;
  /** Make a self-signed certificate and load the tls plugin (STARTTLS) first, with it. */
  readonly tls?: boolean;
}

export class PrivateQpsmtpd {
  private readonly exited: Promise<void>;

  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  static isAvailable(): boolean {
    return userInfo().uid === 0 && existsSync(FORKSERVER);
  }

  static async start(options: PrivateQpsmtpdOptions): Promise<PrivateQpsmtpd> {
    const dir = mkdtempSync('/tmp/mailsubmit-qpsmtpd-');
    chmodSync(dir, 0o755);
    const config = join(dir, 'config');
    const spool = join(dir, 'spool');
    mkdirSync(config, { mode: 0o755 });
    // qpsmtpd complains about a spool directory whose mode is not spool_perms (0700).
    mkdirSync(spool, { mode: 0o700 });
    chownSync(spool, options.user.uid, options.user.gid);
    const plugins = options.tls ? [tlsPluginLine(join(dir, 'ssl')), ...options.plugins] : options.plugins;
    const files: Record<string, string> = {
      plugins: lines(plugins),
      plugin_dirs: lines([...(options.pluginDirs ?? []), PACKAGED_PLUGINS]),
      rcpthosts: lines(options.rcptHosts ?? ['example.org', 'example.net']),
      me: lines([QPSMTPD_HOSTNAME]),
      spool_dir: lines([spool]),
      loglevel: lines(['7']),
      logging: lines(['logging/warn LOGDEBUG']),
      ...options.config,
    };
    for (const [name, text] of Object.entries(files)) writeFileSync(join(config, name), text, { mode: 0o644 });
    if (options.tls) await makeCertificate(join(dir, 'ssl'), options.user);

    const port = await freePort();
    // The forkserver and every connection's child (and what the stock
    // qmail-queue plugin runs) write their stderr, the log, here.
    const stderr = openSync(join(dir, 'log'), 'a');
    const child = spawn(FORKSERVER, ['-l', '127.0.0.1', '-p', String(port), '-u', options.user.name], {
      cwd: dir,
      env: { QPSMTPD_CONFIG: config, PATH: '/usr/bin:/bin' },
      stdio: ['ignore', stderr, stderr],
    });
    closeSync(stderr);
    const instance = new PrivateQpsmtpd(dir, port, child);
    try {
      await instance.waitForGreeting();
    } catch (error) {
      await instance.stop();
      throw error;
    }
    return instance;
  }

  /** qpsmtpd's log (LOGDEBUG) and whatever the programs it ran wrote to stderr. */
  log(): string {
    return readOrEmpty(join(this.dir, 'log'));
  }

  /** Waits until a line of `log()` matches, and returns it. */
  waitForLog(pattern: RegExp, timeoutMs = 20_000): Promise<string> {
    return matchingLine(() => this.log(), pattern, timeoutMs, `qpsmtpd logged no line matching ${pattern}`);
  }

  /** Stops the forkserver (it stops its children) and removes its directory. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const killed = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await this.exited;
      clearTimeout(killed);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async waitForGreeting(): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (this.child.exitCode !== null) throw new Error(`qpsmtpd-forkserver exited ${this.child.exitCode}: ${this.log()}`);
      const greeting = await readGreeting(this.port);
      if (greeting?.startsWith('220 ')) return;
      if (Date.now() > deadline) throw new Error(`qpsmtpd did not greet on ${this.port}: ${this.log()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** The tls plugin's line: certificate, key, and the certificate again as its own CA. */
function tlsPluginLine(ssl: string): string {
  return `tls ${join(ssl, 'server.crt')} ${join(ssl, 'server.key')} ${join(ssl, 'server.crt')}`;
}

function lines(values: readonly string[]): string {
  return values.map((value) => `${value}\n`).join('');
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** The first line the server sends, or null when nothing listens. */
function readGreeting(port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const done = (value: string | null) => {
      socket.destroy();
      resolve(value);
    };
    socket.setTimeout(10_000, () => done(null));
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const end = text.indexOf('\n');
      if (end >= 0) {
        socket.end('QUIT\r\n');
        done(text.slice(0, end).replace(/\r$/, ''));
      }
    });
    socket.once('error', () => done(null));
    socket.once('close', () => done(text === '' ? null : text));
  });
}

/** A self-signed certificate and its key, readable by the user qpsmtpd runs as. */
async function makeCertificate(ssl: string, user: TestUser): Promise<void> {
  mkdirSync(ssl, { mode: 0o755 });
  const key = join(ssl, 'server.key');
  await run('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-subj', `/CN=${QPSMTPD_HOSTNAME}`, '-days', '2',
    '-keyout', key, '-out', join(ssl, 'server.crt'),
  ]);
  chownSync(key, user.uid, user.gid);
  chmodSync(key, 0o600);
}
