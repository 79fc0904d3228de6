/**
 * The helper built from the tree's source with its paths compiled in, as
 * install.sh builds it (make SOCKET= AUTH_LIST= OUT=), for a test that
 * needs a helper of its own: the socket, the authorization list and, where
 * given, the reply deadline are the test's.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export const HELPER_SOURCE = join(import.meta.dirname, '..', '..', 'packages', 'submit-helper');

export interface HelperPaths {
  /** Where the binary is written. */
  readonly out: string;
  readonly socket: string;
  readonly authorizationList: string;
  /** The reply deadline in seconds; the Makefile's TIMEOUT when absent. */
  readonly timeoutSeconds?: number;
}

/** Builds the helper (make's own warnings on stderr); returns the binary's path. */
export function buildHelper(paths: HelperPaths): string {
  const timeout = paths.timeoutSeconds === undefined ? [] : [`TIMEOUT=${paths.timeoutSeconds}`];
  execFileSync('make', ['-s', '--no-print-directory', '-C', HELPER_SOURCE, `SOCKET=${paths.socket}`, `AUTH_LIST=${paths.authorizationList}`, `OUT=${paths.out}`, ...timeout], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return paths.out;
}
