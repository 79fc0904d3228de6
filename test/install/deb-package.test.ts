/**
 * The Debian package: `npm run deb` builds mailsubmit_VERSION_ARCH.deb from
 * a copy of the tree with dpkg-buildpackage; lintian has nothing to say about
 * it, and it carries install.sh's files in install.sh's default layout under
 * /usr, its configuration as conffiles, and the maintainer scripts that make
 * the accounts and the set-gid override. The package is never installed here.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const run = (command: string, args: readonly string[], cwd = ROOT) =>
  execFileSync(command, args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });

describe('the Debian package', () => {
  let out: string;
  let deb: string;
  let control: string;
  /** What dpkg-buildpackage leaves when run in the tree: debian/'s build files and the .deb beside the tree. */
  const leftovers = () => [
    run('git', ['status', '--porcelain', '--ignored', '--', 'debian']),
    ...readdirSync(dirname(ROOT)).filter((name) => name.startsWith('mailsubmit_') || name.startsWith('mailsubmit-dbgsym_')),
  ];
  let treeBefore: string[];

  beforeAll(() => {
    out = mkdtempSync('/tmp/mailsubmit-deb-test-');
    treeBefore = leftovers();
    // README.md's example, with a directory of the test's own.
    const example = /```sh\n(npm run deb --) \S+\n```/.exec(readFileSync(join(ROOT, 'README.md'), 'utf8'));
    expect(example, "README.md's 'npm run deb -- DIR' block").not.toBeNull();
    run('sh', ['-c', `${example![1]} "$1"`, 'sh', out]);
    const version = run('dpkg-parsechangelog', ['-S', 'Version']).trim();
    const arch = run('dpkg-architecture', ['-qDEB_HOST_ARCH']).trim();
    deb = join(out, `mailsubmit_${version}_${arch}.deb`);
    control = join(out, 'control');
    run('dpkg-deb', ['-e', deb, control]);
  }, 240_000);

  afterAll(() => {
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it('is built into the directory named, leaving nothing in the tree', () => {
    expect(readdirSync(out)).toContain(deb.slice(out.length + 1));
    expect(leftovers()).toEqual(treeBefore);
  });

  it('passes lintian without errors or warnings', () => {
    const lintian = spawnSync('lintian', [deb], { encoding: 'utf8' });
    expect(lintian.stdout.split('\n').filter((line) => /^[EW]: /.test(line))).toEqual([]);
    expect(lintian.status).toBe(0);
  }, 120_000);

  it("holds install.sh's files in the layout the helper was compiled for", () => {
    const listing = run('dpkg-deb', ['-c', deb]);
    const entry = (path: string) => listing.split('\n').find((line) => line.endsWith(` ./${path}`) || line.includes(` ./${path} -> `));
    expect(entry('usr/bin/mailsubmit')).toMatch(/^-rwxr-xr-x root\/root /);
    expect(entry('usr/bin/mailsubmit-sendmail')).toMatch(/-> mailsubmit$/);
    expect(entry('usr/bin/mailsubmit-qmail-queue')).toMatch(/-> mailsubmit$/);
    for (const path of ['usr/sbin/mailsubmitd', 'usr/sbin/mailsubmitctl']) expect(entry(path)).toMatch(/^-rwxr-xr-x /);
    for (const path of ['usr/lib/mailsubmit/mailsubmitd.mjs', 'usr/lib/mailsubmit/mailsubmitctl.cjs', 'usr/lib/mailsubmit/socket_addon.node']) {
      expect(entry(path)).toMatch(/^-rw-r--r-- root\/root /);
    }
    for (const page of ['man1/mailsubmit.1.gz', 'man5/mailsubmit.conf.5.gz', 'man8/mailsubmitd.8.gz', 'man8/mailsubmitctl.8.gz', 'man8/mailsubmit-sendmail.8.gz', 'man8/mailsubmit-postfix-listener.8.gz']) {
      expect(entry(`usr/share/man/${page}`)).toBeDefined();
    }
    for (const path of ['lib/systemd/system/mailsubmitd.service', 'lib/systemd/system/mailsubmitd.socket', 'usr/lib/tmpfiles.d/mailsubmit.conf', 'etc/mailsubmit/mailsubmit.conf', 'etc/mailsubmit/authorized']) {
      expect(entry(path)).toBeDefined();
    }
    expect(listing).not.toMatch(/usr\/local|\.map$/m);
    // The listener's command: install.sh's script and the libraries and block it reads, as in the tree.
    expect(entry('usr/sbin/mailsubmit-postfix-listener')).toMatch(/-> \.\.\/share\/mailsubmit\/install\/postfix-listener\.sh$/);
    expect(entry('usr/share/mailsubmit/install/postfix-listener.sh')).toMatch(/^-rwxr-xr-x root\/root /);
    for (const path of ['lib/common.sh', 'lib/state.sh', 'lib/postfix.sh', 'files/postfix-master.cf']) {
      expect(entry(`usr/share/mailsubmit/install/${path}`)).toMatch(/^-rw-r--r-- root\/root /);
    }

    const file = (path: string) => run('sh', ['-c', `dpkg-deb --fsys-tarfile "$1" | tar -xO "./${path}"`, 'sh', deb]);
    const strings = run('sh', ['-c', `dpkg-deb --fsys-tarfile "$1" | tar -xO ./usr/bin/mailsubmit | strings`, 'sh', deb]);
    const config = file('etc/mailsubmit/mailsubmit.conf');
    expect(strings).toContain('/run/mailsubmit/mailsubmit.sock');
    expect(config).toContain('socket = "/run/mailsubmit/mailsubmit.sock"');
    expect(strings).toContain('/etc/mailsubmit/authorized');
    expect(config).toContain('authorization_list = "/etc/mailsubmit/authorized"');
    expect(file('usr/sbin/mailsubmitd')).toContain('exec /usr/bin/node /usr/lib/mailsubmit/mailsubmitd.mjs');
    const unit = file('lib/systemd/system/mailsubmitd.service');
    expect(unit).toContain('ExecStart=/usr/sbin/mailsubmitd -c /etc/mailsubmit/mailsubmit.conf');
    expect(unit).toContain('SupplementaryGroups=mailsubmit-mta');
    expect(unit).not.toMatch(/@[A-Z_]+@/);
    const socket = file('lib/systemd/system/mailsubmitd.socket');
    expect(socket).toContain('ListenSequentialPacket=/run/mailsubmit/mailsubmit.sock\n');
    expect(config).toContain('socket_mode = "0660"');
    expect(socket).toContain('SocketMode=0660\n');
    expect(socket).toContain('SocketGroup=mailsubmit\n');
  });

  it('names its conffiles, its dependencies and its maintainer scripts', () => {
    expect(readFileSync(join(control, 'conffiles'), 'utf8').split('\n').filter(Boolean).sort()).toEqual([
      '/etc/mailsubmit/authorized',
      '/etc/mailsubmit/mailsubmit.conf',
    ]);
    const depends = run('dpkg-deb', ['-f', deb, 'Depends']);
    expect(depends).toMatch(/(^|, )nodejs \(>= 20\.11\)/);
    expect(depends).toContain('default-mta | mail-transport-agent');
    expect(depends).toContain('adduser');
    expect(run('dpkg-deb', ['-f', deb, 'Recommends'])).toContain('postfix');

    const postinst = readFileSync(join(control, 'postinst'), 'utf8');
    expect(postinst).toMatch(/adduser --system .*mailsubmit/s);
    expect(postinst).toContain('addgroup --system --quiet mailsubmit-mta');
    expect(postinst).toContain('dpkg-statoverride --update --add root mailsubmit 2755 "$helper"');
    expect(postinst).toContain("deb-systemd-helper enable 'mailsubmitd.service'");
    expect(postinst).toContain('systemd-tmpfiles');
    expect(readFileSync(join(control, 'postrm'), 'utf8')).toContain('dpkg-statoverride --remove /usr/bin/mailsubmit');
    const prerm = readFileSync(join(control, 'prerm'), 'utf8');
    expect(prerm).toContain('mailsubmit-postfix-listener remove');
    // Removal stops the socket first: a caller must not start the service again.
    expect(prerm.indexOf("stop 'mailsubmitd.socket'")).toBeGreaterThan(-1);
    expect(prerm.indexOf("stop 'mailsubmitd.socket'")).toBeLessThan(prerm.indexOf("stop 'mailsubmitd.service'"));
    // An upgrade restarts the service, never the socket that holds its callers meanwhile.
    expect(postinst).toMatch(/_dh_action=restart\n[^]*deb-systemd-invoke \$_dh_action 'mailsubmitd\.service'/);
    expect(postinst).not.toMatch(/deb-systemd-invoke \$_dh_action 'mailsubmitd\.socket'/);
    expect(postinst).toContain('mailsubmit-postfix-listener add');
    for (const script of ['postinst', 'postrm', 'prerm']) run('sh', ['-n', join(control, script)]);
  });
});
