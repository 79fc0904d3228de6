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
import { CONFIG_KEYS, CONFIG_TABLES, downstreamField, isDownstreamPath, withField } from './config-keys.ts';
import { writtenTarget } from './config-value-types.ts';
import type { DaemonConfig, DownstreamConfig } from './daemon-config.ts';

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
  const config = readConfig(document, text, source);
  if (config.installMode === 'setgid' && config.socket.mode & 0o007) {
    const line = lineOfKey(text, 'daemon', 'socket_mode') ?? lineOfKey(text, 'daemon', 'install_mode');
    throw new ConfigError(source, 'daemon.socket_mode', `gives others access (${config.socket.mode.toString(8)}): with install_mode = "setgid" only the group may connect; use "0660"`, line);
  }
  return config;
}

/** Every key of the table, from the document or its default; unknown tables and keys are refused first. */
function readConfig(document: Table, text: string, source: string): DaemonConfig {
  /** Throws the error for `table` or `table.key`, at the line that sets it (in the nth [[table]]). */
  const fail: (name: string, problem: string, occurrence?: number) => never = (name, problem, occurrence = 0) => {
    const [table, key] = name.split('.') as [string, string | undefined];
    throw new ConfigError(source, name, problem, lineOfKey(text, table, key ?? null, occurrence));
  };
  const tableNames = [...CONFIG_TABLES.keys()];
  for (const [table, value] of Object.entries(document)) {
    const keys = CONFIG_TABLES.get(table);
    if (keys === undefined) fail(table, `unknown table${didYouMean(nearestName(table, tableNames), '[', ']')} (known: ${tableNames.join(', ')})`);
    const elements = table === 'downstream' && Array.isArray(value) ? value : [value];
    elements.forEach((element, occurrence) => {
      if (typeof element !== 'object' || element === null || Array.isArray(element)) {
        fail(table, table === 'downstream' ? 'must be a table ([downstream]) or tables ([[downstream]])' : `must be a table ([${table}])`, occurrence);
      }
      for (const key of Object.keys(element as Table)) {
        if (!keys.includes(key)) fail(`${table}.${key}`, `unknown key${unknownKeyHint(table, key)} (known in [${table}]: ${keys.join(', ')})`, occurrence);
      }
    });
  }
  let config: Partial<DaemonConfig> = { source, limits: { maxEnvelopeLineOctets: DEFAULT_LIMITS.maxEnvelopeLineOctets } as DaemonConfig['limits'] };
  for (const spec of CONFIG_KEYS) {
    if (isDownstreamPath(spec.into)) continue;
    const written = (document[spec.table] as Table | undefined)?.[spec.name] ?? spec.default;
    const value = written === null ? null : spec.type.read(written, (problem) => fail(spec.key, problem));
    config = withField(config, spec.into, value);
  }
  return { ...config, downstreams: readDownstreams(document['downstream'], fail) } as DaemonConfig;
}

/**
 * [downstream] (one) or [[downstream]] (several), each read by every row of
 * the table: the names must differ, and one at least must take every
 * submission, or some mail would have nowhere to go.
 */
function readDownstreams(written: unknown, fail: (name: string, problem: string, occurrence?: number) => never): DownstreamConfig[] {
  const tables = (written === undefined ? [{}] : Array.isArray(written) ? written : [written]) as Table[];
  if (tables.length === 0) fail('downstream', 'needs at least one table');
  const downstreams = tables.map((table, occurrence) => {
    let downstream: Partial<Record<keyof DownstreamConfig, unknown>> = {};
    for (const spec of CONFIG_KEYS) {
      if (!isDownstreamPath(spec.into)) continue;
      const value = table[spec.name] ?? spec.default;
      downstream = { ...downstream, [downstreamField(spec.into)]: value === null ? null : spec.type.read(value, (problem) => fail(spec.key, problem, occurrence)) };
    }
    return downstream as DownstreamConfig;
  });
  downstreams.forEach((downstream, occurrence) => {
    const twin = downstreams.findIndex((other) => downstreamName(other) === downstreamName(downstream));
    if (twin !== occurrence) {
      fail('downstream.name', `"${downstreamName(downstream)}" names two downstreams (the ${ordinal(twin)} and the ${ordinal(occurrence)} [[downstream]]): give each its own name`, occurrence);
    }
    if ((downstream.authUsername === null) !== (downstream.authSecretFile === null)) {
      fail(downstream.authUsername === null ? 'downstream.auth_secret_file' : 'downstream.auth_username', 'auth_username and auth_secret_file go together: set both for SMTP AUTH, or neither', occurrence);
    }
    if (downstream.authUsername !== null && downstream.transport === 'sendmail') {
      fail('downstream.auth_username', 'SMTP AUTH needs transport = "smtp" or "lmtp"', occurrence);
    }
  });
  if (!downstreams.some(takesEverySubmission)) {
    fail('downstream', 'every downstream has a selector (doors, callers or sender_domains): leave one without, so that every submission has somewhere to go');
  }
  return downstreams;
}

export function takesEverySubmission(downstream: DownstreamConfig): boolean {
  return downstream.doors.length === 0 && downstream.callers.length === 0 && downstream.senderDomains.length === 0;
}

/** Its name, or by default the target as written: what an administrator recognises in status and logs. */
export function downstreamName(downstream: DownstreamConfig): string {
  if (downstream.name !== null) return downstream.name;
  if (downstream.transport === 'sendmail') return downstream.sendmailPath;
  return writtenTarget(downstream.target);
}

function ordinal(index: number): string {
  return ['first', 'second', 'third'][index] ?? `${index + 1}th`;
}

/** For an unknown key: the table it belongs in, or the key of its own table it is likely a typo of. */
function unknownKeyHint(table: string, key: string): string {
  const home = [...CONFIG_TABLES].find(([, keys]) => keys.includes(key))?.[0];
  if (home !== undefined) return `: it belongs in [${home}]`;
  return didYouMean(nearestName(key, CONFIG_TABLES.get(table) ?? []), `${table}.`, '');
}

function didYouMean(name: string | null, before: string, after: string): string {
  return name === null ? '' : `: did you mean ${before}${name}${after}?`;
}
