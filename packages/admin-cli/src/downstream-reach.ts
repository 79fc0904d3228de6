/**
 * Who besides the daemon can reach what the daemon hands mail to. The
 * downstream trusts its client (Postfix's re-injection listener takes
 * XFORWARD from it and runs no filters), so anyone else who can connect
 * gets in past the authorization list. `mailsubmitctl config check` turns
 * the findings into `warning:` lines; none of them stops the daemon.
 *
 * Connecting to a Unix socket takes search permission on every directory
 * above it and write permission on the socket: the path is private when
 * one of them lets nobody through but root, the daemon's user and the
 * socket's owner (the MTA's account, which bound it), and no one else owns
 * a directory on the way or may rename entries in it.
 */
import { execFileSync } from 'node:child_process';
import { lstatSync, statSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { downstreamName, writtenTarget, type DaemonConfig, type DownstreamConfig } from '@mailsubmit/submit-daemon/admin';

export interface DaemonAccount {
  readonly uid: number;
  readonly name: string;
}

/** The account names in the passwd database, and every gid's members (primary and supplementary). */
function groupMembers(gid: number): Set<number> {
  const members = new Set<number>();
  const passwd = getent('passwd');
  const uidOf = new Map<string, number>();
  for (const line of passwd) {
    const [name, , uid, primary] = line.split(':');
    if (name === undefined || uid === undefined) continue;
    uidOf.set(name, Number(uid));
    if (Number(primary) === gid) members.add(Number(uid));
  }
  const group = getent('group', String(gid))[0];
  for (const name of group?.split(':')[3]?.split(',') ?? []) {
    const uid = uidOf.get(name);
    if (uid !== undefined) members.add(uid);
  }
  return members;
}

function getent(database: string, key?: string): string[] {
  try {
    return execFileSync('getent', key === undefined ? [database] : [database, key], { encoding: 'utf8' }).split('\n').filter((l) => l !== '');
  } catch {
    return [];
  }
}

/** Does the permission `bits` (0o1 search, 0o2 write) on this inode let only `trusted` through? */
function closedTo(stats: Stats, bits: number, trusted: ReadonlySet<number>): boolean {
  if ((stats.mode & bits) !== 0) return false;
  if ((stats.mode & (bits << 3)) !== 0 && [...groupMembers(stats.gid)].some((uid) => !trusted.has(uid))) return false;
  if ((stats.mode & (bits << 6)) !== 0 && !trusted.has(stats.uid)) return false;
  return true;
}

const octal = (stats: Stats) => (stats.mode & 0o7777).toString(8).padStart(4, '0');

/** Why a local user the daemon does not trust can reach this socket, or null when none can. */
export function unixSocketReach(path: string, daemon: DaemonAccount | null): string | null {
  let socket: Stats;
  try {
    socket = statSync(path);
  } catch (err) {
    return `cannot be checked (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
  }
  const trusted = new Set<number>([0, socket.uid, ...(daemon === null ? [] : [daemon.uid])]);
  const open: string[] = [];
  let closed = closedTo(socket, 0o2, trusted);
  if (!closed) open.push(`${path} (socket, ${octal(socket)})`);
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    const stats = lstatSync(dir);
    const sticky = (stats.mode & 0o1000) !== 0;
    if (!trusted.has(stats.uid) || (!sticky && !closedTo(stats, 0o2, trusted))) {
      return `${dir} (${octal(stats)}, uid ${stats.uid}) lets others replace what is in it`;
    }
    if (closedTo(stats, 0o1, trusted)) closed = true;
    else open.push(`${dir} (${octal(stats)})`);
    if (dirname(dir) === dir) break;
  }
  return closed ? null : `every step lets others through: ${open.join(', ')}`;
}

/** Who else can reach one downstream; `named`: several are configured, so each finding names its own. */
function downstreamReach(downstream: DownstreamConfig, daemon: DaemonAccount | null, who: string, named: boolean): string[] {
  const { transport, target } = downstream;
  const which = named ? ` (downstream "${downstreamName(downstream)}")` : '';
  if (transport === 'sendmail') {
    return [`note: downstream.transport = "sendmail"${which} runs ${downstream.sendmailPath}, the MTA's public door: it grants nothing beyond what every local user has`];
  }
  if (target.kind !== 'unix' && downstream.authUsername !== null) {
    return [
      `note: downstream.target ${writtenTarget(target)}${which} is a TCP port, entered with SMTP AUTH as ${downstream.authUsername}: ` +
        'the MTA there must not also relay for this host without AUTH (mynetworks), or every local user gets in past the authorization list',
    ];
  }
  if (target.kind !== 'unix') {
    return [
      `warning: downstream.target ${writtenTarget(target)}${which} is a TCP port: every local user can connect to it and hand mail to the MTA past the authorization list; ` +
        `use a Unix socket only ${who} can reach (install.sh --listener private, docs/postfix.md), or SMTP AUTH (auth_username)`,
    ];
  }
  const reach = unixSocketReach(target.path, daemon);
  return reach === null ? [] : [`warning: downstream.target ${writtenTarget(target)}${which}: users other than ${who} can reach it: ${reach}`];
}

/** The `warning:` and `note:` lines for the configuration's downstreams and control socket. */
export function reachFindings(config: DaemonConfig, daemon: DaemonAccount | null): string[] {
  const findings: string[] = [];
  const who = daemon === null || daemon.uid === 0 ? 'root' : `root and ${daemon.name}`;
  for (const downstream of config.downstreams) findings.push(...downstreamReach(downstream, daemon, who, config.downstreams.length > 1));
  let control: Stats | null = null;
  try {
    control = lstatSync(config.control.path);
  } catch {
    // Not running: nothing to check.
  }
  if (control !== null) {
    const owners = new Set<number>([0, ...(daemon === null ? [] : [daemon.uid])]);
    if ((control.mode & 0o077) !== 0 || !owners.has(control.uid)) {
      findings.push(`warning: daemon.control_socket ${config.control.path} is ${octal(control)} uid ${control.uid}: it must be 0600, owned by ${who.replace(' and ', ' or ')}`);
    }
  }
  return findings;
}

/** The daemon's user: given by name, else the owner of its submission socket, else "mailsubmit" if there is one. */
export function daemonAccount(config: DaemonConfig, name: string | undefined): DaemonAccount | null {
  const byName = (n: string): DaemonAccount | null => {
    const line = getent('passwd', n)[0];
    return line === undefined ? null : { name: n, uid: Number(line.split(':')[2]) };
  };
  if (name !== undefined) return byName(name);
  try {
    const socket = lstatSync(config.socket.path);
    if (socket.isSocket()) {
      const line = getent('passwd', String(socket.uid))[0];
      return { uid: socket.uid, name: line?.split(':')[0] ?? `uid ${socket.uid}` };
    }
  } catch {
    // The daemon is not running.
  }
  return byName('mailsubmit');
}
