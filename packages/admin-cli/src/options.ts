/**
 * Option parsing shared by the commands; a bad value is a usage error (64).
 * Paths come from the command line first, then from the daemon's
 * configuration file (-c; the default file only when it exists), then from
 * the daemon's defaults, so an
 * installation with its own paths needs no options on every command.
 */
import { existsSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { ConfigError, controlSocketOfBrokenConfig, DEFAULT_CONFIG_PATH, loadConfig, parseConfig, type DaemonConfig } from '@mailsubmit/submit-daemon/admin';

/** The daemon's defaults, from its own parser: what it uses when the file is absent. */
const DEFAULTS = parseConfig('', 'built-in defaults');
export const DEFAULT_AUTHORIZATION_LIST = DEFAULTS.authorizationList;
export { DEFAULT_CONFIG_PATH };

export interface GlobalOptions {
  authorizationList?: string;
  config?: string;
}

export function parseOctetCount(value: string): number {
  if (!/^[0-9]{1,15}$/.test(value) || Number(value) < 1) {
    throw new InvalidArgumentError('expected a whole number greater than 0');
  }
  return Number(value);
}

export function configPath(options: GlobalOptions): string {
  return options.config ?? DEFAULT_CONFIG_PATH;
}

const loaded = new Map<string, DaemonConfig | null>();

/**
 * The configuration file parsed by the daemon's own parser; null when the
 * default file does not exist (a file named with -c must). Throws ConfigError.
 */
function installedConfig(options: GlobalOptions): DaemonConfig | null {
  const path = configPath(options);
  let config = loaded.get(path);
  if (config === undefined) {
    config = options.config !== undefined || existsSync(path) ? loadConfig(path) : null;
    loaded.set(path, config);
  }
  return config;
}

export function authorizationListPath(options: GlobalOptions): string {
  return options.authorizationList ?? (installedConfig(options) ?? DEFAULTS).authorizationList;
}

/**
 * The daemon's control socket. A configuration its parser refuses still
 * names the socket while it is TOML: `onBroken` hears the parser's message
 * and the request goes ahead (a reload then gets the same verdict from the
 * daemon, which keeps its running configuration).
 */
export function controlSocketPath(options: GlobalOptions, onBroken?: (problem: string) => void): string {
  try {
    return (installedConfig(options) ?? DEFAULTS).control.path;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const path = controlSocketOfBrokenConfig(configPath(options));
    if (path === null) throw err;
    onBroken?.(err.message);
    return path;
  }
}
