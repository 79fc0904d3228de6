/**
 * A private Dovecot LMTP server for tests: Debian's dovecot-core and
 * dovecot-lmtpd with their own configuration, base_dir, log and Maildirs
 * under a temporary directory, started in the foreground (`dovecot -F -c`)
 * as a child of the test. It listens on a Unix socket (and, when asked, on a
 * loopback port); its users come from a passwd-file, all owned by one test
 * user, so LMTP delivers as that user (Dovecot refuses to deliver as root)
 * and the test, as root, reads what arrived.
 *
 *   const dovecot = await PrivateDovecot.start({ mailboxes: [{ address: 'one@example.org' }] });
 *   // downstream: transport = "lmtp", target = `unix:${dovecot.lmtpSocket}`
 *   const [file] = await dovecot.waitForMessages('one@example.org', 1);
 *
 * A mailbox with `quotaOctets` gets Dovecot's quota plugin's limit: a
 * message over it is refused for that recipient after the final dot (552
 * 5.2.2, or 452 4.2.2 with `quotaFullTempfail`), while the others in the
 * same transaction are delivered.
 *
 * Requires root and the dovecot-core and dovecot-lmtpd packages
 * (install/test-tools.sh installs them, their service left stopped).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.ts';
import { ensureUser } from './test-accounts.ts';
import { heldWithin, matchingLine } from './until.ts';

const DOVECOT = '/usr/sbin/dovecot';
const LMTP_SERVICE = '/usr/lib/dovecot/lmtp';

/** The test user who owns every mailbox (Dovecot's mail_uid for all of them). */
export const MAIL_OWNER = 'mstdovemail';

export interface Mailbox {
  /** The address Dovecot knows the user by (its passwd-file user name). */
  readonly address: string;
  /** The quota plugin's storage limit, in octets; none when absent. */
  readonly quotaOctets?: number;
  /** A full mailbox is a temporary failure (452 4.2.2) instead of a permanent one (552 5.2.2). */
  readonly quotaFullTempfail?: boolean;
}

export interface PrivateDovecotOptions {
  readonly mailboxes: readonly Mailbox[];
  /** Also listen for LMTP on a loopback TCP port (`port`). */
  readonly tcp?: boolean;
  /** The name Dovecot gives itself in its greeting and Received header. Default dovecot.test.localdomain. */
  readonly hostname?: string;
}

export class PrivateDovecot {
  private constructor(
    readonly dir: string,
    /** The LMTP listener's Unix socket (mode 0666: every local user can connect, as with any test listener). */
    readonly lmtpSocket: string,
    /** The loopback LMTP port, when started with `tcp`. */
    readonly port: number | undefined,
    readonly hostname: string,
    private readonly master: ChildProcess,
  ) {}

  static isAvailable(): boolean {
    return userInfo().uid === 0 && existsSync(DOVECOT) && existsSync(LMTP_SERVICE);
  }

  static async start(options: PrivateDovecotOptions): Promise<PrivateDovecot> {
    const owner = ensureUser(MAIL_OWNER);
    const dir = mkdtempSync('/tmp/mailsubmit-dovecot-');
    // Dovecot's unprivileged processes (dovecot, dovenull) and the mail owner reach below it.
    chmodSync(dir, 0o755);
    const mailDir = join(dir, 'mail');
    mkdirSync(mailDir);
    chownSync(mailDir, owner.uid, owner.gid);
    mkdirSync(join(dir, 'state'));
    const port = options.tcp === true ? await freePort() : undefined;
    const hostname = options.hostname ?? 'dovecot.test.localdomain';
    const lmtpSocket = join(dir, 'lmtp');

    const users = options.mailboxes.map((mailbox) => {
      const extra = [
        ...(mailbox.quotaOctets !== undefined ? [`userdb_quota_rule=*:storage=${mailbox.quotaOctets}B`] : []),
        ...(mailbox.quotaFullTempfail === true ? ['userdb_quota_full_tempfail=yes'] : []),
      ];
      // user:password:uid:gid:gecos:home:shell:extra fields
      return `${mailbox.address}:{PLAIN}unused:${owner.uid}:${owner.gid}::${mailHome(mailDir, mailbox.address)}::${extra.join(' ')}`;
    });
    writeFileSync(join(dir, 'users'), `${users.join('\n')}\n`, { mode: 0o644 });
    writeFileSync(join(dir, 'dovecot.conf'), configuration(dir, owner.uid, hostname, lmtpSocket, port), { mode: 0o644 });

    const master = spawn(DOVECOT, ['-F', '-c', join(dir, 'dovecot.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    master.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const instance = new PrivateDovecot(dir, lmtpSocket, port, hostname, master);
    const up = await heldWithin(10_000, () => master.exitCode === null && existsSync(lmtpSocket) && instance.log().includes('starting up'), 50);
    if (!up) {
      await instance.stop();
      throw new Error(`private dovecot did not start: ${stderr} ${instance.log()}`);
    }
    return instance;
  }

  /** The Maildir of `address` (its cur/ and new/ hold one file per delivered message). */
  maildir(address: string): string {
    return join(mailHome(join(this.dir, 'mail'), address), 'Maildir');
  }

  /** What `address` has been delivered, oldest first: each message file's bytes, as Dovecot stored them. */
  messages(address: string): Buffer[] {
    const maildir = this.maildir(address);
    const files = ['new', 'cur'].flatMap((sub) => {
      const path = join(maildir, sub);
      return existsSync(path) ? readdirSync(path).map((name) => join(path, name)) : [];
    });
    // Maildir names start with the delivery time in seconds, then a unique part: sorted, oldest first.
    return files.sort().map((file) => readFileSync(file));
  }

  /** Waits until `address` holds at least `count` messages; returns them all. */
  async waitForMessages(address: string, count: number, timeoutMs = 15_000): Promise<Buffer[]> {
    if (!(await heldWithin(timeoutMs, () => this.messages(address).length >= count, 50))) {
      throw new Error(`${address} holds ${this.messages(address).length} of ${count} messages; dovecot log:\n${this.log()}`);
    }
    return this.messages(address);
  }

  log(): string {
    const path = join(this.dir, 'dovecot.log');
    return existsSync(path) ? readFileSync(path, 'utf8') : '';
  }

  /** Waits until a log line matches, and returns it; `since`: only lines after that offset of `log()`. */
  waitForLog(pattern: RegExp, timeoutMs = 15_000, since = 0): Promise<string> {
    return matchingLine(() => this.log().slice(since), pattern, timeoutMs, `dovecot log has no line matching ${pattern}`);
  }

  /** Stops the master (it takes its children with it) and removes the directory. */
  async stop(): Promise<void> {
    if (this.master.exitCode === null && this.master.signalCode === null) {
      const exited = new Promise<void>((resolve) => this.master.once('exit', () => resolve()));
      this.master.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A user's home directory under the instance's mail directory (the address is a safe file name: no slash). */
function mailHome(mailDir: string, address: string): string {
  if (address.includes('/')) throw new Error(`not a mailbox name for a test: ${address}`);
  return join(mailDir, address);
}

function configuration(dir: string, mailUid: number, hostname: string, lmtpSocket: string, port: number | undefined): string {
  return `# A private LMTP server for mailsubmit's tests (test/support/private-dovecot.ts).
base_dir = ${join(dir, 'run')}
state_dir = ${join(dir, 'state')}
log_path = ${join(dir, 'dovecot.log')}
info_log_path = ${join(dir, 'dovecot.log')}
hostname = ${hostname}
protocols = lmtp
ssl = no
listen = 127.0.0.1
# Every mailbox belongs to the one test user; nobody else may receive.
first_valid_uid = ${mailUid}
last_valid_uid = ${mailUid}
mail_location = maildir:~/Maildir
mail_plugins = quota
passdb {
  driver = passwd-file
  args = ${join(dir, 'users')}
}
userdb {
  driver = passwd-file
  args = ${join(dir, 'users')}
}
plugin {
  quota = maildir:User quota
}
service lmtp {
  unix_listener ${lmtpSocket} {
    mode = 0666
  }
${
  port !== undefined
    ? `  inet_listener lmtp {
    address = 127.0.0.1
    port = ${port}
  }
`
    : ''
}}
`;
}
