/**
 * A private Postfix instance for tests: Debian's Postfix binaries with their
 * own configuration, queue and listeners under a temporary directory, started
 * with `postfix -c DIR start`. It has one SMTP listener configured like the
 * re-injection listener mailsubmit installs (docs/postfix.md) and relays all
 * mail to a recording sink, so tests see exactly what Postfix delivers.
 * Options make that listener a relay as a smarthost would be: STARTTLS with
 * a given certificate (`tls`), SMTP AUTH required to relay (`auth`, Cyrus
 * SASL with a private sasldb), its own name (`hostname`).
 *
 * Requires root and the postfix package (the README's set-up installs it).
 */
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './free-port.ts';
import { matchingLine, sleep } from './until.ts';

const run = promisify(execFile);

export interface PrivatePostfixOptions {
  /** Where Postfix relays everything: the recording sink. */
  readonly relayPort: number;
  /** Extra main.cf lines. */
  readonly mainCf?: readonly string[];
  /** Extra `-o name=value` options for the re-injection listener (they win over the defaults). */
  readonly listenerOptions?: readonly string[];
  /**
   * false: no queue manager runs, so every message stays in the incoming
   * queue as cleanup wrote it, for postcat (test/support/queued-messages.ts).
   */
  readonly queueManager?: boolean;
  /** Its myhostname: what it names itself in Received and EHLO to the sink. Default postfix.test.localdomain. */
  readonly hostname?: string;
  /** STARTTLS on the re-injection listener with this certificate. */
  readonly tls?: ListenerTls;
  /** Relaying only for clients that authenticated with this user (Cyrus SASL, sasldb). */
  readonly auth?: ListenerAuth;
}

export interface ListenerTls {
  readonly certFile: string;
  readonly keyFile: string;
  /** smtpd_tls_security_level: may (offered) or encrypt (required before MAIL). Default may. */
  readonly level?: 'may' | 'encrypt';
}

export interface ListenerAuth {
  readonly user: string;
  readonly password: string;
  /** Cyrus's mech_list. Default SCRAM-SHA-256 PLAIN LOGIN. */
  readonly mechanisms?: readonly string[];
  /** AUTH offered only after STARTTLS (smtpd_tls_auth_only). Default: yes when tls is set. */
  readonly onlyOverTls?: boolean;
}

export const DEFAULT_AUTH_MECHANISMS: readonly string[] = ['SCRAM-SHA-256', 'PLAIN', 'LOGIN'];

/** The re-injection listener's own cleanup service, as install/ adds it: it removes no header field. */
// Named apart from install.sh's mailsubmit-cleanup: a staged install adds its own block to this master.cf.
export const REINJECTION_CLEANUP = 'reinjection-cleanup';
const REINJECTION_CLEANUP_SERVICE = `${REINJECTION_CLEANUP} unix n - n - 0 cleanup\n  -o message_drop_headers=\n`;

/** The re-injection listener's options, as install/ adds them to master.cf. */
export const REINJECTION_LISTENER_OPTIONS: readonly string[] = [
  'content_filter=',
  'receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters',
  'smtpd_authorized_xforward_hosts=127.0.0.0/8',
  'mynetworks=127.0.0.0/8',
  'smtpd_client_restrictions=',
  'smtpd_helo_restrictions=',
  'smtpd_sender_restrictions=',
  'smtpd_relay_restrictions=permit_mynetworks,reject',
  'smtpd_recipient_restrictions=permit_mynetworks,reject',
  'smtpd_data_restrictions=',
  'smtpd_recipient_limit=100000',
  `cleanup_service_name=${REINJECTION_CLEANUP}`,
];

const SERVICES = `
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`;

const TLS_MANAGER_SERVICE = 'tlsmgr    unix  -       -       n       1000?   1       tlsmgr\n';

export class PrivatePostfix {
  private constructor(
    readonly dir: string,
    /** The re-injection listener on 127.0.0.1. */
    readonly port: number,
  ) {}

  static isAvailable(): boolean {
    return userInfo().uid === 0 && existsSync('/usr/sbin/postfix');
  }

  static async start(options: PrivatePostfixOptions): Promise<PrivatePostfix> {
    const dir = mkdtempSync('/tmp/mailsubmit-postfix-');
    // Postfix's daemons run as the postfix user and must reach queue/ and data/.
    chmodSync(dir, 0o755);
    const port = await freePort();
    const queue = join(dir, 'queue');
    const data = join(dir, 'data');
    await run('install', ['-d', '-o', 'root', '-m', '0755', queue]);
    await run('install', ['-d', '-o', 'postfix', '-m', '0700', data]);
    writeFileSync(join(dir, 'main.cf'), mainCf(dir, options));
    const authOptions = options.auth === undefined ? [] : await saslListenerOptions(dir, options.auth, options.tls !== undefined, options.hostname ?? DEFAULT_HOSTNAME);
    const listenerOptions = [...REINJECTION_LISTENER_OPTIONS, ...tlsListenerOptions(options.tls), ...authOptions, ...(options.listenerOptions ?? [])];
    const listener = [`127.0.0.1:${port} inet n - n - - smtpd`, ...listenerOptions.map((o) => `  -o ${o}`)];
    const withoutQmgr = options.queueManager === false ? SERVICES.replace(/^qmgr .*\n/m, '') : SERVICES;
    // smtpd's TLS needs tlsmgr for its entropy and session cache, or it turns STARTTLS off.
    const services = options.tls === undefined ? withoutQmgr : `${withoutQmgr}${TLS_MANAGER_SERVICE}`;
    writeFileSync(join(dir, 'master.cf'), `${listener.join('\n')}\n${REINJECTION_CLEANUP_SERVICE}${services}`);
    writeFileSync(join(dir, 'maillog'), '');
    chownSync(join(dir, 'maillog'), 0, 0);
    const instance = new PrivatePostfix(dir, port);
    await run('/usr/sbin/postfix', ['-c', dir, 'start']);
    await instance.waitForListener();
    return instance;
  }

  /** Stops the instance and removes its directory. */
  async stop(): Promise<void> {
    await run('/usr/sbin/postfix', ['-c', this.dir, 'abort']).catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** `postfix stop`: the instance's daemons go away, its queue and files stay (the MTA "down"). */
  async stopMailSystem(): Promise<void> {
    await run('/usr/sbin/postfix', ['-c', this.dir, 'stop']);
  }

  /** `postfix start` after stopMailSystem, back when its listener answers. */
  async startMailSystem(): Promise<void> {
    await run('/usr/sbin/postfix', ['-c', this.dir, 'start']);
    await this.waitForListener();
  }

  /**
   * A command prefix under which an unprivileged caller's `sendmail -C DIR`
   * reaches this instance: Postfix's set-gid postdrop trusts another
   * configuration directory only if the default main.cf names it in
   * alternate_config_directories, so the prefix enters a private mount
   * namespace whose /etc/postfix/main.cf is a copy that does. The system's
   * main.cf stays as it is.
   */
  admittingCallers(): string[] {
    const copy = join(this.dir, 'default-main.cf');
    writeFileSync(copy, `${readFileSync('/etc/postfix/main.cf', 'utf8')}\nalternate_config_directories = ${this.dir}\n`, { mode: 0o644 });
    return ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /etc/postfix/main.cf && exec "$@"', copy];
  }

  /** Postfix's log so far (maillog_file). */
  log(): string {
    return readFileSync(join(this.dir, 'maillog'), 'utf8');
  }

  /** Waits until a log line matches, and returns it; `since`: only lines after that offset of `log()`. */
  waitForLog(pattern: RegExp, timeoutMs = 20_000, since = 0): Promise<string> {
    return matchingLine(() => this.log().slice(since), pattern, timeoutMs, `postfix log has no line matching ${pattern}`);
  }

  /** Number of messages in the queue (postqueue -p), for "nothing delivered" checks. */
  async queueSize(): Promise<number> {
    const { stdout } = await run('/usr/sbin/postqueue', ['-c', this.dir, '-j']);
    return stdout.split('\n').filter((l) => l.trim() !== '').length;
  }

  /** Asks Postfix to try deferred mail again now. */
  async flush(): Promise<void> {
    await run('/usr/sbin/postqueue', ['-c', this.dir, '-f']);
  }

  /** Flushes, then gives a message that was wrongly queued time to reach the sink: before a "nothing delivered" check. */
  async flushAndWait(): Promise<void> {
    await this.flush();
    await sleep(1_500);
  }

  private async waitForListener(): Promise<void> {
    const { connect } = await import('node:net');
    const deadline = Date.now() + 10_000;
    for (;;) {
      const ok = await new Promise<boolean>((resolve) => {
        const socket = connect(this.port, '127.0.0.1');
        socket.once('connect', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(false));
      });
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`private postfix did not listen on ${this.port}: ${this.log()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

const DEFAULT_HOSTNAME = 'postfix.test.localdomain';
const SASLPASSWD = '/usr/sbin/saslpasswd2';

function tlsListenerOptions(tls: ListenerTls | undefined): string[] {
  if (tls === undefined) return [];
  // smtpd reads the certificate and key as root, before it drops privileges.
  return [`smtpd_tls_security_level=${tls.level ?? 'may'}`, `smtpd_tls_cert_file=${tls.certFile}`, `smtpd_tls_key_file=${tls.keyFile}`, 'smtpd_tls_loglevel=1', 'smtpd_tls_received_header=yes'];
}

/**
 * Cyrus SASL for the listener: a private sasldb holding the one user (made by
 * saslpasswd2, readable by the postfix user, as smtpd looks it up after
 * dropping privileges) and a private smtpd.conf pointing at it. Relaying is
 * for authenticated clients only: permit_mynetworks is gone, so a client
 * without AUTH is refused at RCPT.
 */
async function saslListenerOptions(dir: string, auth: ListenerAuth, tls: boolean, hostname: string): Promise<string[]> {
  if (!existsSync(SASLPASSWD)) throw new Error(`${SASLPASSWD} is missing: install/test-tools.sh installs sasl2-bin`);
  const saslDir = join(dir, 'sasl');
  const sasldb = join(saslDir, 'sasldb2');
  await run('install', ['-d', '-o', 'root', '-m', '0755', saslDir]);
  const mechanisms = (auth.mechanisms ?? DEFAULT_AUTH_MECHANISMS).join(' ');
  writeFileSync(join(saslDir, 'smtpd.conf'), `pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: ${sasldb}\nmech_list: ${mechanisms}\n`, { mode: 0o644 });
  // The realm is the listener's myhostname, which smtpd gives Cyrus as its own (smtpd_sasl_local_domain).
  await runWithInput(SASLPASSWD, ['-f', sasldb, '-c', '-p', '-u', hostname, auth.user], auth.password);
  await run('chown', ['root:postfix', sasldb]);
  chmodSync(sasldb, 0o640);
  return [
    'smtpd_sasl_auth_enable=yes',
    'smtpd_sasl_type=cyrus',
    'smtpd_sasl_path=smtpd',
    `cyrus_sasl_config_path=${saslDir}`,
    `smtpd_sasl_local_domain=${hostname}`,
    'smtpd_sasl_security_options=noanonymous',
    'smtpd_sasl_tls_security_options=noanonymous',
    `smtpd_tls_auth_only=${(auth.onlyOverTls ?? tls) ? 'yes' : 'no'}`,
    'smtpd_relay_restrictions=permit_sasl_authenticated,reject',
    'smtpd_recipient_restrictions=permit_sasl_authenticated,reject',
  ];
}

function runWithInput(file: string, args: readonly string[], input: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, (error, _stdout, stderr) => (error ? reject(new Error(`${file} ${args.join(' ')}: ${stderr || error.message}`)) : resolve()));
    child.stdin?.end(input);
  });
}

function mainCf(dir: string, options: PrivatePostfixOptions): string {
  return [
    'compatibility_level = 3.6',
    `queue_directory = ${join(dir, 'queue')}`,
    `data_directory = ${join(dir, 'data')}`,
    'meta_directory = /etc/postfix',
    'mail_owner = postfix',
    'setgid_group = postdrop',
    `myhostname = ${options.hostname ?? DEFAULT_HOSTNAME}`,
    'mydomain = test.localdomain',
    'mydestination =',
    'inet_interfaces = 127.0.0.1',
    'inet_protocols = ipv4',
    'mynetworks = 127.0.0.0/8',
    `relayhost = [127.0.0.1]:${options.relayPort}`,
    `maillog_file = ${join(dir, 'maillog')}`,
    `maillog_file_prefixes = ${dir}`,
    // Keep re-injected mail as it was written: no added Message-Id, Date or From.
    'local_header_rewrite_clients =',
    'smtp_tls_security_level = none',
    'smtpd_tls_security_level = none',
    'smtp_dns_support_level = disabled',
    'message_size_limit = 209715200',
    'delay_warning_time = 0',
    'queue_run_delay = 1s',
    'minimal_backoff_time = 1s',
    'maximal_backoff_time = 2s',
    'biff = no',
    ...(options.mainCf ?? []),
    '',
  ].join('\n');
}
