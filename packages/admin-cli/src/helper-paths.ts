/**
 * The paths compiled into the installed helper, and whether the daemon's
 * configuration agrees with them. The helper reads no configuration: it
 * connects to the socket and checks the authorization list it was built
 * with, so a daemon configured with other paths is one no caller reaches
 * (75 for every submission) or one that admits by a different list than
 * the helper turns callers away by. The helper records both paths in its
 * binary after the marker below, NUL-separated (see mailsubmit.c); they are
 * read from the file, the helper is never run.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import type { DaemonConfig } from '@mailsubmit/submit-daemon/admin';

const MARKER = Buffer.from('mailsubmit-compiled-paths\0socket\0');
// The helper is some tens of kilobytes; anything far larger is not it.
const MAX_HELPER_OCTETS = 16 * 1024 * 1024;

export interface CompiledPaths {
  readonly socket: string;
  readonly authorizationList: string;
}

/** The paths recorded in the helper binary, or null when it records none (built before it did). */
export function compiledPaths(helper: string): CompiledPaths | null {
  const size = statSync(helper).size;
  if (size > MAX_HELPER_OCTETS) return null;
  const image = Buffer.alloc(size);
  const fd = openSync(helper, 'r');
  try {
    readSync(fd, image, 0, size, 0);
  } finally {
    closeSync(fd);
  }
  const at = image.indexOf(MARKER);
  if (at < 0) return null;
  const [socket, label, authorizationList] = image.subarray(at + MARKER.length, at + MARKER.length + 8192).toString('utf8').split('\0');
  if (socket === undefined || label !== 'authorization_list' || authorizationList === undefined) return null;
  return { socket, authorizationList };
}

/**
 * The helper the callers run: the one install.sh recorded in install.state
 * beside the configuration, else `mailsubmit` on PATH, else null.
 */
export function installedHelper(configFile: string): string | null {
  const state = join(dirname(configFile), 'install.state');
  if (existsSync(state)) {
    const recorded = /^file=(\/.*\/bin\/mailsubmit)$/m.exec(readFileSync(state, 'utf8'))?.[1];
    if (recorded !== undefined && existsSync(recorded)) return recorded;
  }
  for (const dir of (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter)) {
    if (dir.startsWith('/') && existsSync(join(dir, 'mailsubmit'))) return join(dir, 'mailsubmit');
  }
  return null;
}

/** The `warning:` (or `note:`) lines for a helper whose compiled-in paths are not the configuration's. */
export function helperFindings(config: DaemonConfig, helper: string | null): string[] {
  if (helper === null) return ['note: no mailsubmit helper found (install.state, PATH): name it with --helper to compare its compiled-in paths with this configuration'];
  let paths: CompiledPaths | null;
  try {
    paths = compiledPaths(helper);
  } catch (err) {
    return [`note: the helper ${helper} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)}): its compiled-in paths are not compared`];
  }
  if (paths === null) return [`note: the helper ${helper} does not record its compiled-in paths (built by an older release): rebuild it to have them compared`];
  const rebuild = `or rebuild the helper with the configuration's (make -C packages/submit-helper SOCKET=${config.socket.path} AUTH_LIST=${config.authorizationList}, as install.sh does)`;
  const findings: string[] = [];
  if (paths.socket !== config.socket.path) {
    findings.push(
      `warning: the helper ${helper} connects to ${paths.socket}, but daemon.socket is ${config.socket.path}: every submission through the helper gets 75 (daemon not running); ` +
        `set daemon.socket = "${paths.socket}", ${rebuild}`,
    );
  }
  if (paths.authorizationList !== config.authorizationList) {
    findings.push(
      `warning: the helper ${helper} checks callers against ${paths.authorizationList}, but daemon.authorization_list is ${config.authorizationList}: ` +
        `a caller must be on both to submit, and mailsubmitctl allow edits only the daemon's; set daemon.authorization_list = "${paths.authorizationList}", ${rebuild}`,
    );
  }
  return findings;
}
