/**
 * Every key of mailsubmit.conf, once: its table and name, the kind of value
 * it takes (config-value-types.ts, with the range or the allowed values),
 * its default as it would be written in the file, the field of DaemonConfig
 * it fills, whether a reload applies it, and the sentence that opens its
 * entry in mailsubmit.conf(5). The parser (load-config.ts), the unknown-key
 * hints, the reload classification (config-changes.ts) and, through tests,
 * the man page and the file install.sh writes all follow this table.
 *
 * The order is the order of the man page and of the file: it is the order
 * of `known in [table]: ...` in an unknown-key error and of the keys a
 * reload names.
 */
import { DEFAULT_LIMITS } from '@mailsubmit/shared';
import type { DaemonConfig, DownstreamConfig } from './daemon-config.ts';
import {
  ABSOLUTE_PATH,
  BOOLEAN,
  DOWNSTREAM_NAME,
  DOWNSTREAM_TARGET,
  FILE_MODE,
  GROUP_NAME,
  HOST_NAME,
  integer,
  listOf,
  LOOPBACK_LISTEN,
  MAIL_DOMAIN,
  oneOf,
  SASL_USERNAME,
  SECONDS,
  seconds,
  SHA256_FINGERPRINT,
  type ValueType,
} from './config-value-types.ts';

/** Where a new value takes effect on reload. next-submission: read per submission; downstream: the way
 *  to the MTA is rebuilt; log: the logger's level; restart: ignored until the daemon restarts. */
export type Effect = 'next-submission' | 'downstream' | 'log' | 'restart';

/** A value as mailsubmit.conf writes it. */
export type Written = string | number | boolean | readonly string[];

/** `socket.path`, `limits.maxRecipients`, `installMode`: a field of DaemonConfig, one level deep at most. */
type FieldPath<T> = { [K in keyof T & string]: T[K] extends object ? `${K}.${keyof T[K] & string}` : K }[keyof T & string];
/** Every field but the file's name, the envelope line limit (not configurable) and the downstreams (per table, below). */
export type SettingPath = Exclude<FieldPath<Omit<DaemonConfig, 'downstreams'>>, 'source' | 'limits.maxEnvelopeLineOctets'>;
/** A field of each downstream, filled by a row of the [downstream] table. */
export type DownstreamPath = `downstreams[].${keyof DownstreamConfig & string}`;
type FieldAt<P extends string> = P extends `${infer A extends keyof DaemonConfig}.${infer B}`
  ? B extends keyof DaemonConfig[A] ? DaemonConfig[A][B] : never
  : P extends keyof DaemonConfig ? DaemonConfig[P] : never;

export interface ConfigKey {
  /** `table.name`, as errors and reload reports name it. */
  readonly key: string;
  readonly table: string;
  readonly name: string;
  readonly type: ValueType<unknown>;
  /** null: the key has no default, and its field is null while the key is absent. */
  readonly default: Written | null;
  /** The field of DaemonConfig the value fills (for [downstream], the field of each downstream). */
  readonly into: SettingPath | DownstreamPath;
  readonly applies: Effect;
  /** The sentence that opens the key's entry in mailsubmit.conf(5), without its emphasis. */
  readonly doc: string;
}

/** One row; the types make `type` produce, and `default` allow, what the field `into` holds. */
function setting<P extends SettingPath>(
  key: `${string}.${string}`,
  into: P,
  type: ValueType<NonNullable<FieldAt<P>>>,
  defaultValue: null extends FieldAt<P> ? null : Written,
  applies: Effect,
  doc: string,
): ConfigKey & { readonly into: P } {
  const [table, name] = key.split('.') as [string, string];
  return { key, table, name, type, default: defaultValue, into, applies, doc };
}

/** One row of [downstream]: a new value rebuilds the downstreams on reload. */
function downstreamSetting<F extends keyof DownstreamConfig & string>(
  name: string,
  field: F,
  type: ValueType<NonNullable<DownstreamConfig[F]>>,
  defaultValue: Written | null,
  doc: string,
): ConfigKey & { readonly into: `downstreams[].${F}` } {
  const into = `downstreams[].${field}` as const;
  return { key: `downstream.${name}`, table: 'downstream', name, type, default: defaultValue, into, applies: 'downstream', doc } as ConfigKey & { readonly into: typeof into };
}

// Sockets, the install mode and the list's path are fixed at start: the listening sockets are bound then (and
// the daemon may no longer have the right to bind them again), and the list's path is compiled into every helper.
export const CONFIG_KEYS = [
  setting('daemon.socket', 'socket.path', ABSOLUTE_PATH, '/run/mailsubmit/mailsubmit.sock', 'restart',
    'The socket mailsubmit(1) connects to.'),
  setting('daemon.socket_mode', 'socket.mode', FILE_MODE, '0660', 'restart',
    'The socket\'s permissions, such as "0660".'),
  setting('daemon.socket_group', 'socket.group', GROUP_NAME, 'mailsubmit', 'restart',
    'The socket\'s group and, with install_mode = "setgid", the group a peer must carry; it must then exist.'),
  setting('daemon.install_mode', 'installMode', oneOf('setgid', 'open'), 'setgid', 'restart',
    'Who may connect.'),
  setting('daemon.authorization_list', 'authorizationList', ABSOLUTE_PATH, '/etc/mailsubmit/authorized', 'restart',
    'Who may submit mail, and what they may assert: the authorization list (see THE AUTHORIZATION LIST).'),
  setting('daemon.log_level', 'log.level', oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace'), 'info', 'log',
    'How much the daemon logs; "info" logs one line per submission.'),
  setting('daemon.control_socket', 'control.path', ABSOLUTE_PATH, '/run/mailsubmit/control.sock', 'restart',
    'The control socket mailsubmitctl status and mailsubmitctl reload use; created mode 0600, owned by the daemon\'s user.'),
  setting('daemon.metrics_listen', 'metrics', LOOPBACK_LISTEN, null, 'restart',
    'Serve Prometheus metrics over HTTP at /metrics on this address, such as "127.0.0.1:9465" or "[::1]:9465".'),
  // Checked (owner, mode) at start only: a reload must not switch to a directory nobody checked.
  setting('daemon.spool_directory', 'spoolDirectory', ABSOLUTE_PATH, '/var/lib/mailsubmit/spool', 'restart',
    'Where the qmail-queue front door holds a message that arrives before its envelope (qmail\'s callers write the whole message first), beyond the first 256 KiB, which are held in memory.'),

  // Rows of [downstream]: each [[downstream]] table reads them all (downstream-set.ts chooses among the tables).
  downstreamSetting('name', 'name', DOWNSTREAM_NAME, null,
    'What status, metrics and log lines call this downstream; by default its target as written (sendmail_path for transport = "sendmail"). Names must differ between tables.'),
  downstreamSetting('transport', 'transport', oneOf('smtp', 'lmtp', 'sendmail'), 'smtp',
    'How mail goes to the MTA: SMTP or LMTP to target, or by running sendmail_path.'),
  downstreamSetting('target', 'target', DOWNSTREAM_TARGET, 'unix:/var/spool/postfix/mailsubmit/smtpd',
    'Where to connect.'),
  downstreamSetting('helo_name', 'heloName', HOST_NAME, 'localhost',
    'The name sent in EHLO or LHLO.'),
  downstreamSetting('sendmail_path', 'sendmailPath', ABSOLUTE_PATH, '/usr/sbin/sendmail',
    'The sendmail program for transport = "sendmail".'),
  downstreamSetting('sendmail_config_directory', 'sendmailConfigDirectory', ABSOLUTE_PATH, null,
    'Run sendmail with -C and this directory, for a Postfix instance other than the system\'s (Postfix then needs it in alternate_config_directories).'),
  downstreamSetting('pool_size', 'poolSize', integer(0, 64), 4,
    'SMTP or LMTP connections kept open between submissions for reuse; 0 opens a new one each time. A reused connection\'s transaction starts with RSET (in the same write as the envelope where the MTA offers PIPELINING) and goes no further unless RSET is answered 2xx.'),
  downstreamSetting('xforward', 'xforward', BOOLEAN, true,
    'Pass the caller\'s client attributes to the MTA with XFORWARD, where the server offers it.'),
  downstreamSetting('priority', 'priority', integer(0, 65_535), 10,
    'Order among downstreams: a submission goes to the lowest priority whose downstream is healthy, and moves on to the next after a temporary failure.'),
  downstreamSetting('weight', 'weight', integer(1, 65_535), 1,
    'Share of the traffic among healthy downstreams of one priority.'),
  downstreamSetting('doors', 'doors', listOf(oneOf('native', 'sendmail', 'qmail-queue'), '"native", "sendmail" or "qmail-queue"'), [],
    'Take only submissions that came in by these front doors; empty takes every door.'),
  downstreamSetting('callers', 'callers', listOf(GROUP_NAME, 'user names'), [],
    'Take only submissions of these callers (user names, as on the authorization list); empty takes every caller.'),
  downstreamSetting('sender_domains', 'senderDomains', listOf(MAIL_DOMAIN, 'domain names'), [],
    'Take only submissions whose envelope sender is in one of these domains; empty takes every sender, the null sender included.'),
  downstreamSetting('probe_interval', 'probeInterval', seconds(1, 3600), 10,
    'While this downstream is unhealthy (its last connection or session failed), how often the daemon tries it in the background (connect, greeting, EHLO, STARTTLS and AUTH as configured); it gets traffic again once a probe succeeds.'),
  downstreamSetting('connect_timeout', 'connectTimeout', SECONDS, null,
    'Connecting to this target; by default timeouts.connect.'),
  downstreamSetting('command_timeout', 'commandTimeout', SECONDS, null,
    'Each reply but the one after the end of the data; by default timeouts.command.'),
  downstreamSetting('tls', 'tls', oneOf('none', 'may', 'encrypt', 'verify'), 'none',
    'STARTTLS, in the levels of Postfix\'s smtp_tls_security_level.'),
  downstreamSetting('tls_ca_file', 'tlsCaFile', ABSOLUTE_PATH, null,
    'The CA certificates (PEM) a certificate must chain to under tls = "verify"; only these are trusted.'),
  downstreamSetting('tls_fingerprints', 'tlsFingerprints', listOf(SHA256_FINGERPRINT, 'SHA-256 fingerprints'), [],
    'SHA-256 fingerprints of the certificates accepted (hex, colons optional), checked under "encrypt" and "verify".'),
  downstreamSetting('tls_min_version', 'tlsMinVersion', oneOf('TLSv1.2', 'TLSv1.3'), 'TLSv1.2',
    'The oldest TLS version accepted.'),
  downstreamSetting('tls_server_name', 'tlsServerName', HOST_NAME, null,
    'The name sent as SNI and that the certificate must carry under "verify"; by default the target\'s host.'),
  downstreamSetting('auth_username', 'authUsername', SASL_USERNAME, null,
    'Authenticate with SMTP AUTH as this user; without it, no AUTH.'),
  downstreamSetting('auth_secret_file', 'authSecretFile', ABSOLUTE_PATH, null,
    'The file holding the AUTH password (its first line): it must belong to the daemon\'s user and give group and others no access, or the daemon does not start (a reload keeps the running downstreams).'),
  downstreamSetting('auth_mechanisms', 'authMechanisms', listOf(oneOf('SCRAM-SHA-256', 'PLAIN', 'LOGIN'), '"SCRAM-SHA-256", "PLAIN" or "LOGIN"'), ['SCRAM-SHA-256', 'PLAIN', 'LOGIN'],
    'The SASL mechanisms allowed, in order of preference; the first the server offers is used.'),
  downstreamSetting('auth_without_tls', 'authWithoutTls', BOOLEAN, false,
    'Allow AUTH on a connection without TLS (the password then crosses the network readable, except with SCRAM-SHA-256); needed for a Unix socket or loopback target without STARTTLS.'),

  // The queue's directory is checked (owner, mode, one file system) and its recovery scan run at start only; its
  // limits size the ledger rebuilt by that scan. The policy and the schedule are read at each use.
  setting('queue.directory', 'queue.directory', ABSOLUTE_PATH, '/var/lib/mailsubmit/queue', 'restart',
    'Where the local queue keeps messages the MTA could not take yet: the daemon\'s own directory (owned by its user, mode 0700), its subdirectories incoming, ready and state on one file system.'),
  setting('queue.sendmail_door', 'queue.sendmailDoor', BOOLEAN, true, 'next-submission',
    'Queue a mailsubmit-sendmail submission the MTA cannot take now (a temporary failure), and exit 0, as Postfix\'s sendmail does.'),
  setting('queue.native_door', 'queue.nativeDoor', BOOLEAN, false, 'next-submission',
    'The same for every caller of the native door, mailsubmit(1); without it only callers whose list entry has the queue capability are queued, the others get 75.'),
  setting('queue.qmail_queue_door', 'queue.qmailQueueDoor', BOOLEAN, false, 'next-submission',
    'The same for every caller of mailsubmit-qmail-queue; without it only callers with the queue capability are queued, the others get qmail\'s temporary codes.'),
  setting('queue.minimal_backoff_time', 'queue.minimalBackoff', seconds(1, 86_400), 300, 'next-submission',
    'The wait after a message\'s first failed attempt; each further failure doubles it, up to maximal_backoff_time.'),
  setting('queue.maximal_backoff_time', 'queue.maximalBackoff', seconds(1, 86_400), 4000, 'next-submission',
    'The longest wait between two attempts of one message.'),
  setting('queue.maximal_queue_lifetime', 'queue.maximalLifetime', seconds(1, 8_640_000), 432_000, 'next-submission',
    'How long a message may wait before it is returned to its sender as undeliverable, with a delivery status notification.'),
  setting('queue.delay_warning_time', 'queue.delayWarning', seconds(0, 8_640_000), 0, 'next-submission',
    'After this long in the queue, the sender gets one delay warning (a delivery status notification that the message is still being tried); 0 sends none.'),
  setting('queue.probe_interval', 'queue.probeInterval', seconds(1, 3600), 10, 'next-submission',
    'While messages wait for the MTA, how often the daemon tries to reach it (connect and greeting); when it answers, every waiting message is due at once.'),
  setting('queue.max_deliveries', 'queue.maxDeliveries', integer(1, 64), 2, 'next-submission',
    'Messages delivered from the queue at once.'),
  setting('queue.max_messages', 'queue.maxMessages', integer(0, 100_000_000), 100_000, 'restart',
    'Messages the queue may hold; over it, a message that would be queued gets 75 instead, naming the key.'),
  setting('queue.max_size', 'queue.maxOctets', integer(0, 2 ** 50), 2_147_483_648, 'restart',
    'Octets the queue\'s files may take in all; over it, as for max_messages.'),
  setting('queue.max_size_per_uid', 'queue.maxOctetsPerUid', integer(0, 2 ** 50), 268_435_456, 'restart',
    'Octets one caller uid\'s queued messages may take; over it, as for max_messages.'),
  setting('queue.min_free', 'queue.minFree', integer(0, 2 ** 50), 268_435_456, 'restart',
    'Free space the queue\'s file system keeps (statfs): a message that would cut into it is not queued (75), and no half-written file is left.'),

  setting('limits.max_message_size', 'limits.maxMessageOctets', integer(1, 2 ** 40), DEFAULT_LIMITS.maxMessageOctets, 'next-submission',
    'Octets of the message as the caller wrote it.'),
  setting('limits.max_line_length', 'limits.maxLineOctets', integer(78, 1_048_576), DEFAULT_LIMITS.maxLineOctets, 'next-submission',
    'Octets per message line, without the line end, with strict_message_syntax only.'),
  setting('limits.strict_message_syntax', 'limits.strictMessageSyntax', BOOLEAN, DEFAULT_LIMITS.strictMessageSyntax, 'next-submission',
    'Enforce RFC 5322 on the message, with exit 65 naming the line.'),
  setting('limits.max_header_size', 'limits.maxHeaderOctets', integer(1024, 2 ** 30), DEFAULT_LIMITS.maxHeaderOctets, 'next-submission',
    'Octets of the header section.'),
  setting('limits.max_recipients', 'limits.maxRecipients', integer(1, 100_000), DEFAULT_LIMITS.maxRecipients, 'next-submission',
    'Recipients in one submission, whatever the door (command line and -t together for mailsubmit-sendmail).'),
  setting('limits.max_envelope_size', 'limits.maxEnvelopeOctets', integer(4096, 2 ** 30), DEFAULT_LIMITS.maxEnvelopeOctets, 'next-submission',
    'Octets of the envelope block (native door) or of the qmail-queue envelope.'),
  setting('limits.max_connections', 'limits.maxConnections', integer(1, 100_000), 256, 'next-submission',
    'Submissions in progress at once; more are answered 75 at once.'),
  setting('limits.max_per_uid', 'limits.maxPerUid', integer(1, 100_000), 64, 'next-submission',
    'Submissions in progress at once for one caller uid; more are answered 75.'),
  // The file-read semaphore is sized once, at start.
  setting('limits.max_file_reads', 'limits.maxFileReads', integer(1, 64), 4, 'restart',
    'Callers whose standard input is a regular file read at the same time (each read may hold a thread).'),
  // Spool space: one uid may hold two messages of the default 50 MiB at once, everybody 1 GiB, and spooling
  // stops while the file system has less than 256 MiB free (the MTA's queue may share it). A quota of 0
  // spools nothing: a qmail-queue message must then fit the memory hold.
  setting('limits.spool_quota_per_uid', 'limits.spoolQuotaPerUid', integer(0, 2 ** 50), 134_217_728, 'next-submission',
    'The most one caller uid may have held in spool_directory at once (qmail-queue messages waiting for their envelope, past the 256 KiB held in memory).'),
  setting('limits.spool_quota_total', 'limits.spoolQuotaTotal', integer(0, 2 ** 50), 1_073_741_824, 'next-submission',
    'The most held in spool_directory for everybody at once; over it, as for spool_quota_per_uid.'),
  setting('limits.spool_min_free', 'limits.spoolMinFree', integer(0, 2 ** 50), 268_435_456, 'next-submission',
    'Free space the file system of spool_directory keeps (statfs, checked once per MiB a held file grows): a message that would cut into it is refused as for spool_quota_per_uid.'),

  setting('timeouts.input', 'timeouts.input', SECONDS, 600, 'next-submission',
    'The whole input must have arrived within this time.'),
  setting('timeouts.input_idle', 'timeouts.inputIdle', SECONDS, 120, 'next-submission',
    'The longest pause between two writes of the caller.'),
  setting('timeouts.connect', 'timeouts.connect', SECONDS, 10, 'downstream',
    'Connecting to target.'),
  setting('timeouts.command', 'timeouts.command', SECONDS, 60, 'downstream',
    'Waiting for the MTA\'s reply to each command but the end of the data (greeting, EHLO, XFORWARD, MAIL, RCPT, DATA, RSET, QUIT).'),
  setting('timeouts.data_block', 'timeouts.dataBlock', SECONDS, 120, 'downstream',
    'The longest the MTA may take no data while the message is sent.'),
  setting('timeouts.data_end', 'timeouts.dataEnd', SECONDS, 300, 'downstream',
    'Waiting for the reply after the end of the data, when the MTA writes the message to its queue.'),
  setting('timeouts.sendmail', 'timeouts.sendmail', SECONDS, 300, 'downstream',
    'How long one sendmail run may keep the daemon waiting, for its input to drain or for its exit.'),
  setting('timeouts.shutdown', 'timeouts.shutdown', SECONDS, 30, 'next-submission',
    'On SIGTERM, how long submissions in progress may take to finish before they are aborted without the final dot and their callers get 75.'),
] as const;

// A field of DaemonConfig that no key fills fails to compile here.
const everyFieldFilled: Exclude<SettingPath | DownstreamPath, (typeof CONFIG_KEYS)[number]['into']> extends never ? true : never = true;
void everyFieldFilled;

/** The tables, in file order, each with its key names. */
export const CONFIG_TABLES: ReadonlyMap<string, readonly string[]> = (() => {
  const tables = new Map<string, string[]>();
  for (const { table, name } of CONFIG_KEYS) tables.set(table, [...(tables.get(table) ?? []), name]);
  return tables;
})();

/** A default as mailsubmit.conf(5) and install.sh's file write it: `"0660"`, `600`, `true`. */
export function writtenDefault(key: ConfigKey): string | null {
  if (key.default === null) return null;
  if (Array.isArray(key.default)) return `[${key.default.map((item) => JSON.stringify(item)).join(', ')}]`;
  return typeof key.default === 'string' ? JSON.stringify(key.default) : String(key.default);
}

/** The row of `table.name`; a name not in the table is a programming error. */
export function configKey(key: string): ConfigKey {
  const found = CONFIG_KEYS.find((k) => k.key === key);
  if (found === undefined) throw new Error(`${key} is not a key of mailsubmit.conf`);
  return found;
}

/** The field `path` names in a configuration; for a [downstream] row, that field of every downstream. */
export function fieldOf(config: DaemonConfig, path: SettingPath | DownstreamPath): unknown {
  if (isDownstreamPath(path)) return config.downstreams.map((downstream) => downstream[downstreamField(path)]);
  const [outer, inner] = path.split('.') as [keyof DaemonConfig, string | undefined];
  const value = config[outer];
  return inner === undefined ? value : (value as Record<string, unknown>)[inner];
}

export function isDownstreamPath(path: SettingPath | DownstreamPath): path is DownstreamPath {
  return path.startsWith('downstreams[].');
}

export function downstreamField(path: DownstreamPath): keyof DownstreamConfig {
  return path.slice('downstreams[].'.length) as keyof DownstreamConfig;
}

/** A copy of `config` with the field `path` set; the objects on the way are copied, not changed. */
export function withField<T extends Partial<DaemonConfig>>(config: T, path: SettingPath, value: unknown): T {
  const [outer, inner] = path.split('.') as [keyof DaemonConfig, string | undefined];
  if (inner === undefined) return { ...config, [outer]: value };
  return { ...config, [outer]: { ...(config[outer] as object | undefined), [inner]: value } };
}
