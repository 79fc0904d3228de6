/**
 * The kinds of value a mailsubmit.conf key takes: how each is read from the
 * TOML document, what it becomes in DaemonConfig, and how mailsubmit.conf(5)
 * names it. A reader refuses a bad value by calling `refuse` with the text
 * that follows `FILE:LINE: KEY: ` in the error.
 */
import type { DownstreamTarget } from './daemon-config.ts';

export type Refuse = (problem: string) => never;

export interface ValueType<T> {
  /** What mailsubmit.conf(5) writes in parentheses after the key, without its emphasis. */
  readonly described: string;
  /** Reads a value as TOML gives it (a default is read the same way). */
  read(value: unknown, refuse: Refuse): T;
}

function string(value: unknown, refuse: Refuse): string {
  if (typeof value !== 'string') refuse(`expected a string, got ${JSON.stringify(value)}`);
  return value;
}

export const ABSOLUTE_PATH: ValueType<string> = {
  described: 'string, an absolute path',
  read(value: unknown, refuse: Refuse) {
    const path = string(value, refuse);
    if (!path.startsWith('/') || path.includes('\0')) refuse(`expected an absolute path, got ${JSON.stringify(path)}`);
    return path;
  },
};

export const FILE_MODE: ValueType<number> = {
  described: 'string, an octal mode',
  read(value: unknown, refuse: Refuse) {
    const mode = string(value, refuse);
    if (!/^0?[0-7]{3}$/.test(mode)) refuse(`expected an octal mode such as "0660", got ${JSON.stringify(mode)}`);
    return parseInt(mode, 8);
  },
};

export const GROUP_NAME: ValueType<string> = {
  described: 'string, a group name',
  read(value: unknown, refuse: Refuse) {
    const name = string(value, refuse);
    if (!/^[a-z_][a-z0-9_-]{0,31}$/i.test(name)) refuse(`expected a user or group name, got ${JSON.stringify(name)}`);
    return name;
  },
};

export const HOST_NAME: ValueType<string> = {
  described: 'string, a host name',
  read(value: unknown, refuse: Refuse) {
    const name = string(value, refuse);
    if (!/^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,253}[A-Za-z0-9])?$/.test(name)) refuse(`expected a host name, got ${JSON.stringify(name)}`);
    return name;
  },
};

/** A string from a fixed list; described as `string, "a", "b" or "c"`. */
export function oneOf<T extends string>(...choices: readonly T[]): ValueType<T> & { readonly choices: readonly T[] } {
  const quoted = choices.map((choice) => JSON.stringify(choice));
  return {
    choices,
    described: `string, ${quoted.slice(0, -1).join(', ')} or ${quoted.at(-1)}`,
    read(value: unknown, refuse: Refuse) {
      const choice = string(value, refuse);
      if (!(choices as readonly string[]).includes(choice)) refuse(`expected one of ${choices.join(', ')}, got ${JSON.stringify(choice)}`);
      return choice as T;
    },
  };
}

export const BOOLEAN: ValueType<boolean> = {
  described: 'boolean',
  read(value: unknown, refuse: Refuse) {
    if (typeof value !== 'boolean') refuse(`expected true or false, got ${JSON.stringify(value)}`);
    return value;
  },
};

/** A whole number from min to max; a bound of 2^30 or more that is a power of two is written as one. */
export function integer(min: number, max: number): ValueType<number> & { readonly min: number; readonly max: number } {
  return {
    min,
    max,
    described: `integer, ${bound(min)} to ${bound(max)}`,
    read(value: unknown, refuse: Refuse) {
      const number = typeof value === 'bigint' ? Number(value) : value;
      if (typeof number !== 'number' || !Number.isInteger(number) || number < min || number > max) {
        const unquote = typeof value === 'string' && /^[0-9_]+$/.test(value) ? '; write it without quotes' : '';
        refuse(`expected a whole number from ${min} to ${max}, got ${JSON.stringify(String(value))}${unquote}`);
      }
      return number;
    },
  };
}

function bound(n: number): string {
  const exponent = Math.log2(n);
  return exponent >= 30 && Number.isInteger(exponent) ? `2^${exponent}` : String(n);
}

/** Written in whole seconds, from min to max, kept in milliseconds. */
export function seconds(min: number, max: number): ValueType<number> & { readonly min: number; readonly max: number } {
  const whole = integer(min, max);
  return { min, max, described: 'seconds', read: (value, refuse) => whole.read(value, refuse) * 1000 };
}

/** A timeout: one second to one day. */
export const SECONDS = seconds(1, 86_400);

/**
 * host:port for an unauthenticated HTTP endpoint: a literal loopback
 * address only (a name could resolve elsewhere), so nothing but local
 * processes can read it.
 */
export const LOOPBACK_LISTEN: ValueType<{ host: string; port: number }> = {
  described: 'string, address:port',
  read(value: unknown, refuse: Refuse) {
    const text = string(value, refuse);
    const match = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):([0-9]{1,5})$/.exec(text);
    const port = Number(match?.[3]);
    if (match === null || port < 1 || port > 65535) {
      refuse(`expected address:port such as "127.0.0.1:9465" or "[::1]:9465", got ${JSON.stringify(text)}`);
    }
    const host = (match[1] ?? match[2]) as string;
    if (!isLoopbackAddress(host)) {
      refuse(`${host} is not a loopback address: the metrics endpoint has no authentication, so it listens on 127.0.0.0/8 or [::1] only`);
    }
    return { host, port };
  },
};

function isLoopbackAddress(host: string): boolean {
  if (host === '::1') return true;
  const octets = host.split('.');
  return octets.length === 4 && octets[0] === '127' && octets.every((o) => /^(?:0|[1-9][0-9]{0,2})$/.test(o) && Number(o) <= 255);
}

export const DOWNSTREAM_TARGET: ValueType<DownstreamTarget> = {
  described: 'string, host:port, [ipv6]:port, mx:domain or unix:path',
  read(value: unknown, refuse: Refuse) {
    const text = string(value, refuse);
    if (text.startsWith('unix:')) {
      const path = text.slice(5);
      if (!path.startsWith('/')) refuse(`expected unix:/absolute/path, got ${JSON.stringify(text)}`);
      return { kind: 'unix', path };
    }
    if (text.startsWith('mx:')) {
      const mx = /^mx:([A-Za-z0-9](?:[A-Za-z0-9.-]{0,253}[A-Za-z0-9])?)(?::([0-9]{1,5}))?$/.exec(text);
      const port = mx?.[2] === undefined ? 25 : Number(mx[2]);
      if (mx === null || port < 1 || port > 65535) refuse(`expected mx:domain or mx:domain:port, got ${JSON.stringify(text)}`);
      return { kind: 'mx', domain: (mx[1] as string).toLowerCase(), port };
    }
    const match = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):([0-9]{1,5})$/.exec(text);
    const port = Number(match?.[3]);
    if (match === null || port < 1 || port > 65535) refuse(`expected host:port, [ipv6]:port, mx:domain or unix:/path, got ${JSON.stringify(text)}`);
    return { kind: 'tcp', host: (match[1] ?? match[2]) as string, port };
  },
};

/** A target as mailsubmit.conf writes it: what logs and status show. */
export function writtenTarget(target: DownstreamTarget): string {
  switch (target.kind) {
    case 'unix':
      return `unix:${target.path}`;
    case 'mx':
      return target.port === 25 ? `mx:${target.domain}` : `mx:${target.domain}:${target.port}`;
    case 'tcp':
      return target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
  }
}

/** An array of values of one type, such as ["native", "sendmail"]; each item is checked as the type says. */
export function listOf<T>(item: ValueType<T>, items: string): ValueType<readonly T[]> {
  return {
    described: `array of ${items}`,
    read(value: unknown, refuse: Refuse) {
      if (!Array.isArray(value)) refuse(`expected an array such as ["a", "b"], got ${JSON.stringify(value)}`);
      return value.map((entry, i) => item.read(entry, (problem) => refuse(`item ${i + 1}: ${problem}`)));
    },
  };
}

/** What status, metrics and log lines call a downstream: printable, no quotes or spaces, so a metrics label needs no escape. */
export const DOWNSTREAM_NAME: ValueType<string> = {
  described: 'string, a name',
  read(value: unknown, refuse: Refuse) {
    const name = string(value, refuse);
    if (!/^[A-Za-z0-9][A-Za-z0-9._:/\[\]-]{0,127}$/.test(name)) refuse(`expected letters, digits and . _ - : / [ ], got ${JSON.stringify(name)}`);
    return name;
  },
};

/** The domain of an envelope sender, compared without regard to case; written without the @. */
export const MAIL_DOMAIN: ValueType<string> = {
  described: 'string, a domain name',
  read(value: unknown, refuse: Refuse) {
    const domain = string(value, refuse);
    if (!/^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,253}[A-Za-z0-9])?$/.test(domain)) refuse(`expected a domain such as "example.org", got ${JSON.stringify(domain)}`);
    return domain.toLowerCase();
  },
};

/** An SMTP AUTH user name: printable UTF-8, no control characters (it is sent in base64, and logged). */
export const SASL_USERNAME: ValueType<string> = {
  described: 'string, a user name',
  read(value: unknown, refuse: Refuse) {
    const name = string(value, refuse);
    if (name === '' || name.length > 255 || /[\u0000-\u001f\u007f]/.test(name)) refuse(`expected a user name of 1 to 255 printable characters, got ${JSON.stringify(name)}`);
    return name;
  },
};

/** A certificate's SHA-256 fingerprint, kept as lower-case hex without colons. */
export const SHA256_FINGERPRINT: ValueType<string> = {
  described: 'string, a SHA-256 fingerprint',
  read(value: unknown, refuse: Refuse) {
    const hex = string(value, refuse).replace(/:/g, '').toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(hex)) refuse(`expected a SHA-256 fingerprint (64 hex digits, colons optional), got ${JSON.stringify(value)}`);
    return hex;
  },
};
