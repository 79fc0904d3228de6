/**
 * Reads mailsubmit.conf (TOML) and validates it. Every error names the key
 * and says what is wrong, so `mailsubmitctl config check` and the daemon's
 * start can print it as it is; an unknown key is an error, because a typo
 * must not silently leave a default in force.
 */
import { readFileSync } from 'node:fs';
import { DEFAULT_LIMITS } from '@mailsubmit/shared';
import { parse as parseToml, TomlError } from 'smol-toml';
import { describeSyntaxError, lineOfKey, nearestName } from './config-error-text.ts';
import type { DaemonConfig, DownstreamTarget } from './daemon-config.ts';

export const DEFAULT_CONFIG_PATH = '/etc/mailsubmit/mailsubmit.conf';

/** `FILE:LINE: KEY: problem; fix`, or `FILE: ...` when no line of the file is to blame. */
export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG';
  constructor(source: string, key: string | null, problem: string, line: number | null = null) {
    super(`${source}${line === null ? '' : `:${line}`}: ${key === null ? '' : `${key}: `}${problem}`);
    this.name = 'ConfigError';
  }
}

type Table = Record<string, unknown>;

const SCHEMA: Readonly<Record<string, readonly string[]>> = {
  daemon: ['socket', 'socket_mode', 'socket_group', 'install_mode', 'authorization_list', 'log_level', 'control_socket', 'metrics_listen', 'spool_directory'],
  downstream: ['transport', 'target', 'helo_name', 'sendmail_path', 'sendmail_config_directory', 'pool_size', 'xforward'],
  limits: [
    'max_message_size', 'max_line_length', 'strict_message_syntax', 'max_header_size', 'max_recipients', 'max_envelope_size',
    'max_connections', 'max_per_uid', 'max_file_reads',
    // Spool space for qmail-queue messages held before their envelope.
    'spool_quota_per_uid', 'spool_quota_total', 'spool_min_free',
  ],
  timeouts: ['input', 'input_idle', 'connect', 'command', 'data_block', 'data_end', 'sendmail', 'shutdown'],
};

export function loadConfig(path: string = DEFAULT_CONFIG_PATH): DaemonConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw missingConfigError(path, err);
  }
  return parseConfig(text, path);
}

/**
 * Refuses a configuration file that cannot be read, saying what to do; the
 * daemon and `mailsubmitctl config check` call it before anything else
 * looks at the file, so a missing file is not reported as an unsafe path.
 */
export function assertConfigReadable(path: string): void {
  try {
    readFileSync(path);
  } catch (err) {
    throw missingConfigError(path, err);
  }
}

function missingConfigError(path: string, err: unknown): ConfigError {
  const code = (err as NodeJS.ErrnoException).code ?? String(err);
  const fix =
    code === 'ENOENT'
      ? 'no such file: install one (install.sh writes the annotated default; every key is optional, so an empty file means the defaults) or name another with -c'
      : code === 'EISDIR'
        ? 'is a directory: name the configuration file itself'
        : `cannot be read (${code}): it must be a file root can read`;
  return new ConfigError(path, null, fix);
}

export function parseConfig(text: string, source = 'mailsubmit.conf'): DaemonConfig {
  let document: Table;
  try {
    document = parseToml(text) as Table;
  } catch (err) {
    const problem = (err as Error).message.split('\n')[0]?.replace(/^Invalid TOML document: /, '') ?? '';
    if (!(err instanceof TomlError)) throw new ConfigError(source, null, `not valid TOML: ${problem}`);
    throw new ConfigError(source, null, describeSyntaxError(problem, text, err.line, err.column), err.line);
  }
  const reader = new KeyReader(source, document, text);
  const config = readConfig(reader, source);
  if (config.installMode === 'setgid' && config.socket.mode & 0o007) {
    const line = lineOfKey(text, 'daemon', 'socket_mode') ?? lineOfKey(text, 'daemon', 'install_mode');
    throw new ConfigError(source, 'daemon.socket_mode', `gives others access (${config.socket.mode.toString(8)}): with install_mode = "setgid" only the group may connect; use "0660"`, line);
  }
  return config;
}

function readConfig(reader: KeyReader, source: string): DaemonConfig {
  const socketPath = reader.absolutePath('daemon', 'socket', '/run/mailsubmit/mailsubmit.sock');
  return {
    source,
    socket: {
      path: socketPath,
      mode: reader.fileMode('daemon', 'socket_mode', 0o660),
      group: reader.name('daemon', 'socket_group', 'mailsubmit'),
    },
    installMode: reader.oneOf('daemon', 'install_mode', ['setgid', 'open'] as const, 'setgid'),
    authorizationList: reader.absolutePath('daemon', 'authorization_list', '/etc/mailsubmit/authorized'),
    control: {
      path: reader.absolutePath('daemon', 'control_socket', '/run/mailsubmit/control.sock'),
    },
    metrics: reader.optionalLoopbackListen('daemon', 'metrics_listen'),
    spoolDirectory: reader.absolutePath('daemon', 'spool_directory', '/var/lib/mailsubmit/spool'),
    downstream: {
      transport: reader.oneOf('downstream', 'transport', ['smtp', 'lmtp', 'sendmail'] as const, 'smtp'),
      target: reader.target('downstream', 'target', 'unix:/var/spool/postfix/mailsubmit/smtpd'),
      heloName: reader.hostName('downstream', 'helo_name', 'localhost'),
      sendmailPath: reader.absolutePath('downstream', 'sendmail_path', '/usr/sbin/sendmail'),
      sendmailConfigDirectory: reader.optionalAbsolutePath('downstream', 'sendmail_config_directory'),
      poolSize: reader.integer('downstream', 'pool_size', 4, 0, 64),
      xforward: reader.boolean('downstream', 'xforward', true),
    },
    limits: {
      maxMessageOctets: reader.integer('limits', 'max_message_size', DEFAULT_LIMITS.maxMessageOctets, 1, 2 ** 40),
      maxLineOctets: reader.integer('limits', 'max_line_length', DEFAULT_LIMITS.maxLineOctets, 78, 1_048_576),
      strictMessageSyntax: reader.boolean('limits', 'strict_message_syntax', DEFAULT_LIMITS.strictMessageSyntax),
      maxHeaderOctets: reader.integer('limits', 'max_header_size', DEFAULT_LIMITS.maxHeaderOctets, 1024, 2 ** 30),
      maxRecipients: reader.integer('limits', 'max_recipients', DEFAULT_LIMITS.maxRecipients, 1, 100_000),
      maxEnvelopeOctets: reader.integer('limits', 'max_envelope_size', DEFAULT_LIMITS.maxEnvelopeOctets, 4096, 2 ** 30),
      maxEnvelopeLineOctets: DEFAULT_LIMITS.maxEnvelopeLineOctets,
      maxConnections: reader.integer('limits', 'max_connections', 256, 1, 100_000),
      maxPerUid: reader.integer('limits', 'max_per_uid', 64, 1, 100_000),
      maxFileReads: reader.integer('limits', 'max_file_reads', 4, 1, 64),
      // Spool space, octets: one uid may hold two messages of the default 50 MiB at once, everybody 1 GiB,
      // and spooling stops while the file system has less than 256 MiB free (the MTA's queue may share it).
      // A quota of 0 spools nothing: a qmail-queue message must then fit the memory hold.
      spoolQuotaPerUid: reader.integer('limits', 'spool_quota_per_uid', 134_217_728, 0, 2 ** 50),
      spoolQuotaTotal: reader.integer('limits', 'spool_quota_total', 1_073_741_824, 0, 2 ** 50),
      spoolMinFree: reader.integer('limits', 'spool_min_free', 268_435_456, 0, 2 ** 50),
    },
    timeouts: {
      input: reader.seconds('timeouts', 'input', 600),
      inputIdle: reader.seconds('timeouts', 'input_idle', 120),
      connect: reader.seconds('timeouts', 'connect', 10),
      command: reader.seconds('timeouts', 'command', 60),
      dataBlock: reader.seconds('timeouts', 'data_block', 120),
      dataEnd: reader.seconds('timeouts', 'data_end', 300),
      sendmail: reader.seconds('timeouts', 'sendmail', 300),
      shutdown: reader.seconds('timeouts', 'shutdown', 30),
    },
    log: {
      level: reader.oneOf('daemon', 'log_level', ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const, 'info'),
    },
  };
}

/** Typed access to the document, refusing unknown tables and keys up front. */
class KeyReader {
  constructor(
    private readonly source: string,
    private readonly document: Table,
    private readonly text: string,
  ) {
    for (const [table, value] of Object.entries(document)) {
      const keys = SCHEMA[table];
      if (keys === undefined) this.fail(table, `unknown table${didYouMean(nearestName(table, Object.keys(SCHEMA)), '[', ']')} (known: ${Object.keys(SCHEMA).join(', ')})`);
      if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail(table, 'must be a table ([' + table + '])');
      for (const key of Object.keys(value as Table)) {
        if (!keys.includes(key)) this.fail(`${table}.${key}`, `unknown key${unknownKeyHint(table, key)} (known in [${table}]: ${keys.join(', ')})`);
      }
    }
  }

  /** Throws the error for `table` or `table.key`, at the line that sets it. */
  private fail(name: string, problem: string): never {
    const [table, key] = name.split('.') as [string, string | undefined];
    throw new ConfigError(this.source, name, problem, lineOfKey(this.text, table, key ?? null));
  }

  private raw(table: string, key: string): unknown {
    return (this.document[table] as Table | undefined)?.[key];
  }

  private string(table: string, key: string, fallback: string): string {
    const value = this.raw(table, key);
    if (value === undefined) return fallback;
    if (typeof value !== 'string') this.fail(`${table}.${key}`, `expected a string, got ${JSON.stringify(value)}`);
    return value;
  }

  absolutePath(table: string, key: string, fallback: string): string {
    const value = this.string(table, key, fallback);
    if (!value.startsWith('/') || value.includes('\0')) this.fail(`${table}.${key}`, `expected an absolute path, got ${JSON.stringify(value)}`);
    return value;
  }

  optionalAbsolutePath(table: string, key: string): string | null {
    return this.raw(table, key) === undefined ? null : this.absolutePath(table, key, '');
  }

  name(table: string, key: string, fallback: string): string {
    const value = this.string(table, key, fallback);
    if (!/^[a-z_][a-z0-9_-]{0,31}$/i.test(value)) this.fail(`${table}.${key}`, `expected a user or group name, got ${JSON.stringify(value)}`);
    return value;
  }

  hostName(table: string, key: string, fallback: string): string {
    const value = this.string(table, key, fallback);
    if (!/^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,253}[A-Za-z0-9])?$/.test(value)) {
      this.fail(`${table}.${key}`, `expected a host name, got ${JSON.stringify(value)}`);
    }
    return value;
  }

  oneOf<T extends string>(table: string, key: string, choices: readonly T[], fallback: T): T {
    const value = this.string(table, key, fallback);
    if (!(choices as readonly string[]).includes(value)) this.fail(`${table}.${key}`, `expected one of ${choices.join(', ')}, got ${JSON.stringify(value)}`);
    return value as T;
  }

  boolean(table: string, key: string, fallback: boolean): boolean {
    const value = this.raw(table, key);
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') this.fail(`${table}.${key}`, `expected true or false, got ${JSON.stringify(value)}`);
    return value;
  }

  integer(table: string, key: string, fallback: number, min: number, max: number): number {
    const value = this.raw(table, key);
    if (value === undefined) return fallback;
    const number = typeof value === 'bigint' ? Number(value) : value;
    if (typeof number !== 'number' || !Number.isInteger(number) || number < min || number > max) {
      const unquote = typeof value === 'string' && /^[0-9_]+$/.test(value) ? '; write it without quotes' : '';
      this.fail(`${table}.${key}`, `expected a whole number from ${min} to ${max}, got ${JSON.stringify(String(value))}${unquote}`);
    }
    return number;
  }

  seconds(table: string, key: string, fallback: number): number {
    return this.integer(table, key, fallback, 1, 86_400) * 1000;
  }

  fileMode(table: string, key: string, fallback: number): number {
    const value = this.string(table, key, fallback.toString(8).padStart(4, '0'));
    if (!/^0?[0-7]{3}$/.test(value)) this.fail(`${table}.${key}`, `expected an octal mode such as "0660", got ${JSON.stringify(value)}`);
    return parseInt(value, 8);
  }

  /**
   * host:port for an unauthenticated HTTP endpoint: a literal loopback
   * address only (a name could resolve elsewhere), so nothing but local
   * processes can read it.
   */
  optionalLoopbackListen(table: string, key: string): { host: string; port: number } | null {
    if (this.raw(table, key) === undefined) return null;
    const value = this.string(table, key, '');
    const match = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):([0-9]{1,5})$/.exec(value);
    const port = Number(match?.[3]);
    if (match === null || port < 1 || port > 65535) {
      this.fail(`${table}.${key}`, `expected address:port such as "127.0.0.1:9465" or "[::1]:9465", got ${JSON.stringify(value)}`);
    }
    const host = (match[1] ?? match[2]) as string;
    if (!isLoopbackAddress(host)) {
      this.fail(`${table}.${key}`, `${host} is not a loopback address: the metrics endpoint has no authentication, so it listens on 127.0.0.0/8 or [::1] only`);
    }
    return { host, port };
  }

  target(table: string, key: string, fallback: string): DownstreamTarget {
    const value = this.string(table, key, fallback);
    if (value.startsWith('unix:')) {
      const path = value.slice(5);
      if (!path.startsWith('/')) this.fail(`${table}.${key}`, `expected unix:/absolute/path, got ${JSON.stringify(value)}`);
      return { kind: 'unix', path };
    }
    const match = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):([0-9]{1,5})$/.exec(value);
    const port = Number(match?.[3]);
    if (match === null || port < 1 || port > 65535) {
      this.fail(`${table}.${key}`, `expected host:port, [ipv6]:port or unix:/path, got ${JSON.stringify(value)}`);
    }
    return { kind: 'tcp', host: (match[1] ?? match[2]) as string, port };
  }
}

/** For an unknown key: the key it is likely a typo of, or the table it belongs in. */
function unknownKeyHint(table: string, key: string): string {
  const home = Object.keys(SCHEMA).find((other) => SCHEMA[other]?.includes(key));
  if (home !== undefined) return `: it belongs in [${home}]`;
  return didYouMean(nearestName(key, SCHEMA[table] ?? []), `${table}.`, '');
}

function didYouMean(name: string | null, before: string, after: string): string {
  return name === null ? '' : `: did you mean ${before}${name}${after}?`;
}

function isLoopbackAddress(host: string): boolean {
  if (host === '::1') return true;
  const octets = host.split('.');
  return octets.length === 4 && octets[0] === '127' && octets.every((o) => /^(?:0|[1-9][0-9]{0,2})$/.test(o) && Number(o) <= 255);
}
