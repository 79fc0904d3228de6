/**
 * The systemd units install.sh writes, the service and the socket it holds
 * for it: rendered for a staged layout, they must carry that layout (prefix,
 * -c config, user, group, run directory, socket path and mode), pass
 * `systemd-analyze verify`, and keep its hardening (`systemd-analyze
 * security --offline`). systemd need not run for either check; the units are
 * never started here.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from './staged-install.ts';

const ROOT = join(import.meta.dirname, '..', '..');
/** systemd 252 rates the shipped unit 1.3; anything above this means hardening was lost. */
const MAX_EXPOSURE = 2.0;

function systemdAnalyzeAvailable(): boolean {
  try {
    execFileSync('systemd-analyze', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A unit as install.sh would write it for these options (install/lib/daemon.sh's render_unit): the service, or its socket. */
function renderUnit(options: readonly string[], template = 'install/files/mailsubmitd.service'): string {
  const script = '. install/lib/common.sh && parse_options "$@" && . install/lib/daemon.sh && render_unit "$TEMPLATE"';
  return execFileSync('bash', ['-c', script, 'install.sh', ...options], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, TEMPLATE: template } });
}

describe.skipIf(!systemdAnalyzeAvailable())('the systemd unit', () => {
  let dir: string;
  let prefix: string;

  beforeAll(() => {
    dir = mkdtempSync('/tmp/mailsubmit-unit-');
    prefix = join(dir, 'prefix');
    // verify checks that ExecStart= names an executable.
    mkdirSync(join(prefix, 'sbin'), { recursive: true });
    writeFileSync(join(prefix, 'sbin', 'mailsubmitd'), '#!/bin/sh\nexit 0\n');
    chmodSync(join(prefix, 'sbin', 'mailsubmitd'), 0o755);
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const layouts = [
    { name: 'in /run, set-gid', rundir: '/run/mstunit', mode: [], runtime: 'RuntimeDirectory=mstunit', rundirMode: 'RuntimeDirectoryMode=0750', socketMode: '0660', dirMode: '0750' },
    { name: 'outside /run, --no-setgid', rundir: '/var/lib/mstunit/run', mode: ['--no-setgid'], runtime: null, rundirMode: null, socketMode: '0666', dirMode: '0755' },
  ] as const;

  for (const layout of layouts) {
    it(`carries the layout and passes systemd-analyze verify (${layout.name})`, async () => {
      const unit = renderUnit(['--prefix', prefix, '--sysconfdir', join(dir, 'etc'), '--rundir', layout.rundir, '--user', 'mstunitu', '--group', 'mstunitg', ...layout.mode]);
      const lines = unit.split('\n');
      expect(lines).toContain(`ExecStart=${prefix}/sbin/mailsubmitd -c ${join(dir, 'etc')}/mailsubmit.conf`);
      expect(lines).toContain('User=mstunitu');
      expect(lines).toContain('Group=mstunitg');
      expect(lines).toContain(`ReadWritePaths=${layout.rundir}`);
      if (layout.runtime === null) {
        expect(lines.filter((line) => line.startsWith('RuntimeDirectory'))).toEqual([]);
      } else {
        expect(lines).toContain(layout.runtime);
        expect(lines).toContain(layout.rundirMode);
      }
      expect(unit).not.toMatch(/@[A-Z_]+@/);
      expect(lines).toContain('Wants=mailsubmitd.socket');

      // The socket systemd holds for it: the path, owner and mode the daemon checks it against.
      const socket = renderUnit(['--rundir', layout.rundir, '--user', 'mstunitu', '--group', 'mstunitg', ...layout.mode], 'install/files/mailsubmitd.socket');
      const socketLines = socket.split('\n');
      expect(socketLines).toContain(`ListenSequentialPacket=${layout.rundir}/mailsubmit.sock`);
      expect(socketLines).toContain('SocketUser=mstunitu');
      expect(socketLines).toContain('SocketGroup=mstunitg');
      expect(socketLines).toContain(`SocketMode=${layout.socketMode}`);
      expect(socketLines).toContain(`ExecStartPre=/usr/bin/install -d -o mstunitu -g mstunitg -m ${layout.dirMode} ${layout.rundir}`);
      expect(socket).not.toMatch(/@[A-Z_]+@/);

      const path = join(dir, 'mailsubmitd.service');
      writeFileSync(path, unit);
      writeFileSync(join(dir, 'mailsubmitd.socket'), socket);
      const verify = await runCommand('systemd-analyze', ['verify', '--man=no', path, join(dir, 'mailsubmitd.socket')]);
      expect(verify.stderr).toBe('');
      expect(verify.code).toBe(0);
    });
  }

  it(`keeps its hardening: exposure at most ${MAX_EXPOSURE} (systemd-analyze security --offline)`, async () => {
    const path = join(dir, 'mailsubmitd.service');
    writeFileSync(path, renderUnit(['--prefix', prefix]));
    const security = await runCommand('systemd-analyze', ['security', '--offline=true', path]);
    expect(security.code).toBe(0);
    const exposure = /Overall exposure level for mailsubmitd\.service: ([0-9.]+)/.exec(security.stdout)?.[1];
    expect(exposure).toBeDefined();
    expect(Number(exposure)).toBeLessThanOrEqual(MAX_EXPOSURE);
    for (const setting of ['NoNewPrivileges=', 'ProtectSystem=', 'RestrictSUIDSGID=', 'SystemCallFilter=~@swap']) {
      expect(security.stdout).toMatch(new RegExp(`✓ ${setting.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    }
  });
});
