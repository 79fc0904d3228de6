/**
 * The submission socket as systemd passes it (socket activation,
 * mailsubmitd.socket): systemd holds the listening socket across restarts
 * of the daemon, so a caller who comes while the daemon restarts (an
 * upgrade, `systemctl restart`) waits in its backlog instead of hearing 75.
 *
 * The protocol is sd_listen_fds(3): LISTEN_PID names this process,
 * LISTEN_FDS counts the fds from 3 on. It is four lines of environment
 * reading, so it is done here rather than through a library; the fd itself
 * is taken by the socket addon, which checks that it is the socket the
 * configuration names.
 */
import { lstatSync } from 'node:fs';
import { ConfigError } from '../config/load-config.ts';
import type { DaemonConfig } from '../config/daemon-config.ts';

/** sd_listen_fds(3): the first fd passed. */
const LISTEN_FDS_START = 3;

/**
 * The fds systemd passed to this process, taken out of the environment so
 * that no child (sendmail) sees variables meant for the daemon alone.
 * Empty when the daemon was not socket-activated.
 */
export function takeSystemdSockets(env: NodeJS.ProcessEnv = process.env, pid = process.pid): number[] {
  const forUs = env.LISTEN_PID === String(pid);
  const count = Number(env.LISTEN_FDS);
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
  if (!forUs || !Number.isInteger(count) || count < 1) return [];
  return Array.from({ length: count }, (_, i) => LISTEN_FDS_START + i);
}

/**
 * The passed socket's file must give no one more than the configuration's
 * daemon.socket_mode and belong to its daemon.socket_group: the unit that
 * made it (SocketMode=, SocketGroup=) is checked, not trusted.
 */
export function assertPassedSocketFile(config: DaemonConfig, gid: number | null): void {
  const { path, mode } = config.socket;
  const file = lstatSync(path, { throwIfNoEntry: false });
  const fix = 'set SocketMode= and SocketGroup= in mailsubmitd.socket to match (systemctl edit mailsubmitd.socket)';
  if (file === undefined || !file.isSocket()) {
    throw new ConfigError(config.source, 'daemon.socket', `systemd passed a socket, but ${path} is not a socket file`);
  }
  if ((file.mode & 0o777 & ~mode) !== 0) {
    const octal = (bits: number) => `0${(bits & 0o777).toString(8)}`;
    throw new ConfigError(config.source, 'daemon.socket_mode', `the socket systemd passed (${path}) is mode ${octal(file.mode)}, more than ${octal(mode)}: ${fix}`);
  }
  if (gid !== null && file.gid !== gid) {
    throw new ConfigError(config.source, 'daemon.socket_group', `the socket systemd passed (${path}) has group id ${file.gid}, not ${config.socket.group}'s: ${fix}`);
  }
}
