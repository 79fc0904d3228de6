/**
 * sd_listen_fds(3) as the daemon reads it: the fds are ours only when
 * LISTEN_PID names this process, and the variables are gone afterwards
 * either way, so that no child (sendmail) takes them for its own. The
 * passed socket itself is adopted in test/e2e/socket-activation.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { takeSystemdSockets } from '../../src/1-accept/systemd-socket.ts';

describe('the sockets systemd passed', () => {
  it('are fds 3 onwards, LISTEN_FDS of them, when LISTEN_PID is this process', () => {
    const env: NodeJS.ProcessEnv = { LISTEN_PID: '4242', LISTEN_FDS: '2', LISTEN_FDNAMES: 'mailsubmitd.socket:x', PATH: '/usr/bin' };
    expect(takeSystemdSockets(env, 4242)).toEqual([3, 4]);
    expect(env).toEqual({ PATH: '/usr/bin' });
  });

  it("are none when they were meant for another process (a parent's), and the variables go all the same", () => {
    const env: NodeJS.ProcessEnv = { LISTEN_PID: '1', LISTEN_FDS: '1' };
    expect(takeSystemdSockets(env, 4242)).toEqual([]);
    expect(env).toEqual({});
  });

  it('are none without the variables, or with a count that is not a positive integer', () => {
    expect(takeSystemdSockets({}, 4242)).toEqual([]);
    for (const count of ['0', '-1', '1.5', 'x', '']) expect(takeSystemdSockets({ LISTEN_PID: '4242', LISTEN_FDS: count }, 4242)).toEqual([]);
  });
});
