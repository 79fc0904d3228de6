/**
 * daemon.control_socket from a configuration file that the full parser
 * refuses. An administrator who broke mailsubmit.conf and runs
 * `mailsubmitctl reload` must still reach the running daemon and hear its
 * verdict (the running configuration stays in force) rather than fail
 * before asking. Only this one key is read, and only when the file is
 * still TOML: the key's value when it is an absolute path, the default when
 * the key is absent, else null.
 */
import { readFileSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import { configKey } from './config-keys.ts';

const CONTROL_SOCKET = configKey('daemon.control_socket');

export function controlSocketOfBrokenConfig(path: string): string | null {
  try {
    const document = parseToml(readFileSync(path, 'utf8')) as { daemon?: Record<string, unknown> };
    const value = document.daemon?.[CONTROL_SOCKET.name] ?? CONTROL_SOCKET.default;
    return CONTROL_SOCKET.type.read(value, (problem) => {
      throw new Error(problem);
    }) as string;
  } catch {
    return null;
  }
}
