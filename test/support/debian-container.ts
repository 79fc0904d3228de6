/**
 * A Debian 12 booted with systemd as PID 1, for the tests that install the
 * package the way an administrator does: a fresh copy of the minimal system
 * install/test-tools.sh keeps as a tar (with Postfix delivering to
 * /var/mail), this machine's Node.js package repacked into it, booted by
 * systemd-nspawn without a network of its own. Commands run inside through
 * nsenter, as root or as one of its users.
 *
 *   const reason = await debianContainerUnavailable();
 *   const box = await DebianContainer.create({ name: 'msboot' });
 *   await box.boot(); await box.copyIn(deb, '/root/x.deb'); await box.exec(['dpkg', '-i', '/root/x.deb']);
 *   await box.poweroff(); ... box.destroy();
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { type ChildOutput, openChild, type OpenChild } from './child-output.ts';
import { cgroupProcesses, nspawnInOwnCgroup, removeCgroups } from './nspawn-cgroups.ts';
import { heldWithin, until } from './until.ts';

export const DEBIAN_SYSTEM_DIR = '/var/cache/mailsubmit/debian-system';
const SYSTEM_TAR = join(DEBIAN_SYSTEM_DIR, 'bookworm.tar');
const PATH = '/usr/sbin:/usr/bin:/sbin:/bin';
const BOOT_TIMEOUT_MS = 90_000;
/** Longer than any unit's stop timeout in the tree (mailsubmitd's is 45 s). */
const POWEROFF_TIMEOUT_MS = 90_000;

export interface ExecOptions {
  /** Written to the command's stdin, which is then closed. */
  readonly input?: string | Buffer;
  /** A user of the container (name), with their own groups; root when absent. */
  readonly user?: string;
  readonly timeoutMs?: number;
}

/**
 * How the boot ended. Booted means systemd's start-up is over, no start job
 * left (`systemctl is-system-running --wait` returned): then the state is
 * `running` when every unit started and `degraded` when some failed, which
 * a test wants to see named rather than waited out.
 */
export interface BootState {
  /** systemd's own word for the system once start-up is over. */
  readonly state: string;
  readonly failedUnits: readonly string[];
}

const hasCommand = (name: string) => spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;

/** The host's Node.js as a Debian package, made once per version with dpkg-repack (it takes a minute) and kept. */
export function repackedNodejs(): string {
  const query = spawnSync('dpkg-query', ['-W', '-f', '${Version} ${Architecture} ${Status}', 'nodejs'], { encoding: 'utf8' });
  const [version, arch] = query.stdout.split(' ');
  if (query.status !== 0 || !query.stdout.endsWith('installed')) throw new Error("this machine's Node.js is not the Debian package nodejs");
  const deb = join(DEBIAN_SYSTEM_DIR, `nodejs_${version!.replace(/^\d+:/, '')}_${arch}.deb`);
  if (existsSync(deb)) return deb;
  // Under a lock, in a directory of its own, then renamed: test files that
  // start together wait for one repack, and none sees half a package.
  const work = mkdtempSync(join(DEBIAN_SYSTEM_DIR, 'repack-'));
  try {
    const repack = '[ -e "$1" ] || { dpkg-repack nodejs >/dev/null && mv -f ./*.deb "$1"; }';
    execFileSync('flock', [join(DEBIAN_SYSTEM_DIR, '.repack.lock'), 'sh', '-c', repack, 'sh', deb], { cwd: work, stdio: 'ignore' });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  if (!existsSync(deb)) throw new Error('dpkg-repack nodejs made no package');
  return deb;
}

let probed: Promise<string | null> | undefined;

/**
 * Why this machine cannot boot a container, or null when it can. Past the
 * tools and the tar, the answer comes from a boot of the bare system, before
 * anything of mailsubmit is in it: a failure there is the machine's.
 */
export function debianContainerUnavailable(): Promise<string | null> {
  probed ??= probe();
  return probed;
}

async function probe(): Promise<string | null> {
  if (process.getuid?.() !== 0) return 'booting a container needs root';
  if (!existsSync(SYSTEM_TAR)) return `${SYSTEM_TAR} is missing (install/test-tools.sh makes it)`;
  for (const tool of ['systemd-nspawn', 'nsenter', 'setpriv', 'tar', 'flock', 'dpkg-query']) {
    if (!hasCommand(tool)) return `${tool} is not installed (install/test-tools.sh installs it)`;
  }
  const query = spawnSync('dpkg-query', ['-W', '-f', '${Status}', 'nodejs'], { encoding: 'utf8' });
  if (!query.stdout.endsWith('installed')) return "this machine's Node.js is not the Debian package nodejs, so it cannot be put into the container";
  if (!hasCommand('dpkg-repack')) return 'dpkg-repack is not installed (install/test-tools.sh installs it)';
  let box: DebianContainer | undefined;
  try {
    box = await DebianContainer.create({ name: 'msprobe', nodejs: false });
    const booted = await box.boot();
    if (booted.state !== 'running') return `the bare system booted ${booted.state} (failed: ${booted.failedUnits.join(', ')}); console: ${box.consoleTail()}`;
    await box.poweroff();
    return null;
  } catch (error) {
    return `the bare system does not boot here: ${(error as Error).message}${box ? `; console: ${box.consoleTail()}` : ''}`;
  } finally {
    box?.destroy();
  }
}

export class DebianContainer {
  private nspawn: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  /** The container's PID 1 as the host sees it, while booted. */
  private leader: number | undefined;

  private constructor(
    /** Holds the tree (`root`) and the console log. */
    private readonly base: string,
    /** The machine name, unique to this container. */
    readonly name: string,
  ) {}

  /** The container's file system, as the host sees it. */
  get root(): string {
    return join(this.base, 'root');
  }

  get consoleLog(): string {
    return join(this.base, 'console.log');
  }

  /** A fresh copy of the system, not yet booted; `nodejs: false` leaves the repacked Node.js out. */
  static async create(options: { name: string; nodejs?: boolean }): Promise<DebianContainer> {
    removeAbandoned();
    const base = mkdtempSync(join(CONTAINERS_DIR, `${CONTAINER_PREFIX}${options.name}-`));
    const box = new DebianContainer(base, `${options.name}-${basename(base).slice(-6)}`);
    writeFileSync(join(base, 'owner'), String(process.pid));
    writeFileSync(join(base, 'machine'), box.name);
    try {
      mkdirSync(box.root);
      execFileSync('tar', ['-xf', SYSTEM_TAR, '-C', box.root]);
      // The tar keeps the mode of the directory debootstrap was given (0700):
      // no service that drops root could reach a file.
      chmodSync(box.root, 0o755);
      if (options.nodejs !== false) {
        const deb = repackedNodejs();
        copyFileSync(deb, join(box.root, 'root', basename(deb)));
        execFileSync('chroot', [box.root, 'dpkg', '-i', `/root/${basename(deb)}`], { stdio: 'ignore', env: { PATH } });
        rmSync(join(box.root, 'root', basename(deb)));
      }
    } catch (error) {
      box.destroy();
      throw error;
    }
    return box;
  }

  /** Boots the tree and waits until systemd's start-up is over; throws if it never is. */
  async boot(): Promise<BootState> {
    if (this.nspawn) throw new Error(`${this.name} is already booted`);
    const args = ['-D', this.root, '--boot', `--machine=${this.name}`, '--private-network', '--register=no'];
    const spawnArgs = nspawnInOwnCgroup(this.name, args);
    writeFileSync(this.consoleLog, '');
    const child = spawn(spawnArgs[0]!, spawnArgs.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH } });
    const append = (chunk: Buffer) => writeFileSync(this.consoleLog, chunk, { flag: 'a' });
    child.stdout!.on('data', append);
    child.stderr!.on('data', append);
    this.nspawn = child;
    this.exited = new Promise((resolve) => child.once('close', () => resolve()));
    void this.exited.then(() => {
      this.nspawn = undefined;
      this.leader = undefined;
    });
    await until(() => this.nspawn === undefined || (this.leader = leaderOf(child.pid!)) !== undefined, `${this.name}'s PID 1`, BOOT_TIMEOUT_MS);
    if (this.leader === undefined) throw new Error(`systemd-nspawn ended at once: ${this.consoleTail()}`);
    // systemctl answers once PID 1 has its private socket; --wait then returns when no start job is left.
    let state = '';
    const settled = await heldWithin(
      BOOT_TIMEOUT_MS,
      async () => {
        if (!this.nspawn) throw new Error(`${this.name} ended while booting: ${this.consoleTail()}`);
        const answer = await this.exec(['systemctl', 'is-system-running', '--wait'], { timeoutMs: BOOT_TIMEOUT_MS });
        state = answer.stdout.trim();
        return ['running', 'degraded', 'maintenance', 'stopping'].includes(state);
      },
      200,
    );
    if (!settled) throw new Error(`${this.name} did not finish booting within ${BOOT_TIMEOUT_MS / 1000} s (${state}): ${this.consoleTail()}`);
    const failed = await this.exec(['systemctl', 'list-units', '--failed', '--plain', '--no-legend', '--no-pager']);
    return { state, failedUnits: failed.stdout.split('\n').filter(Boolean).map((line) => line.split(' ')[0]!) };
  }

  /** Runs a command inside, as root or `user`, to its end; never throws for a non-zero exit. */
  exec(argv: readonly string[], options: ExecOptions = {}): Promise<ChildOutput> {
    return this.start(argv, options).end(options.input ?? '');
  }

  /** Runs a command inside, as exec does, and gives its standard output without the surrounding white space. */
  async output(argv: readonly string[], options: ExecOptions = {}): Promise<string> {
    return (await this.exec(argv, options)).stdout.trim();
  }

  /** Starts a command inside and leaves its stdin open. */
  start(argv: readonly string[], options: Omit<ExecOptions, 'input'> = {}): OpenChild {
    if (this.leader === undefined) throw new Error(`${this.name} is not booted`);
    const env = ['env', '-i', `PATH=${PATH}`, 'LANG=C.UTF-8', `HOME=${options.user === undefined ? '/root' : '/'}`];
    // The user's primary group and supplementary groups, as a login gives them.
    const asUser = options.user === undefined ? [] : ['sh', '-c', 'exec setpriv --reuid="$0" --regid="$(id -g "$0")" --init-groups -- "$@"', options.user];
    const child = spawn('nsenter', ['-t', String(this.leader), '-m', '-u', '-i', '-n', '-p', '-r', '-w', '--', ...env, ...asUser, ...argv], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { PATH },
      timeout: options.timeoutMs ?? 120_000,
    });
    return openChild(child);
  }

  /** Puts a host file at `path` in the container (booted or not). */
  async copyIn(hostPath: string, path: string): Promise<void> {
    if (this.leader === undefined) {
      copyFileSync(hostPath, join(this.root, path));
      return;
    }
    // Through the running system: nspawn mounts its own /tmp and /run over the tree's.
    const copied = await this.exec(['sh', '-c', 'cat > "$1"', 'sh', path], { input: readFileSync(hostPath) });
    if (copied.code !== 0) throw new Error(`copying ${hostPath} to ${path} in ${this.name}: ${copied.stderr}`);
  }

  /** `systemctl poweroff` inside, and waits for systemd-nspawn to end. */
  async poweroff(): Promise<void> {
    const exited = this.exited;
    if (!this.nspawn || !exited) return;
    await this.exec(['systemctl', 'poweroff']);
    if (!(await heldWithin(POWEROFF_TIMEOUT_MS, () => this.nspawn === undefined, 100))) {
      throw new Error(`${this.name} did not power off within ${POWEROFF_TIMEOUT_MS / 1000} s: ${this.consoleTail()}`);
    }
    await exited;
    removeCgroups(this.name);
  }

  /** The last lines the container wrote on its console. */
  consoleTail(lines = 15): string {
    if (!existsSync(this.consoleLog)) return '';
    return readFileSync(this.consoleLog, 'utf8').split('\n').slice(-lines).join('\n');
  }

  /** Kills whatever still runs and removes the tree; safe after a failed create or boot, and twice. */
  destroy(): void {
    removeContainer(this.base, this.name, this.nspawn?.pid, this.leader);
  }
}

const CONTAINERS_DIR = '/var/tmp';
const CONTAINER_PREFIX = 'mailsubmit-container-';

/**
 * Containers whose test process was killed before its afterAll: the process
 * that made one is recorded in it (`owner`), and once that has gone nothing
 * else will remove it.
 */
function removeAbandoned(): void {
  for (const entry of readdirSync(CONTAINERS_DIR)) {
    if (!entry.startsWith(CONTAINER_PREFIX)) continue;
    const base = join(CONTAINERS_DIR, entry);
    const owner = Number(readOr(join(base, 'owner'), '0'));
    const name = readOr(join(base, 'machine'), '');
    if (owner > 0 && existsSync(`/proc/${owner}`)) continue;
    if (name === '') continue; // being made: mkdtemp, then the two names
    const nspawn = readdirSync('/proc')
      .filter((pid) => /^\d+$/.test(pid))
      .find((pid) => readOr(`/proc/${pid}/cmdline`, '').split('\0').includes(join(base, 'root')));
    removeContainer(base, name, nspawn === undefined ? undefined : Number(nspawn), undefined);
  }
}

function removeContainer(base: string, name: string, nspawnPid: number | undefined, leader: number | undefined): void {
  // Killing the PID 1 of a PID namespace kills every process in it; nspawn then ends.
  leader ??= nspawnPid === undefined ? undefined : leaderOf(nspawnPid);
  for (const pid of [leader, ...cgroupProcesses(name), nspawnPid]) if (pid !== undefined) tryKill(pid);
  // A killed process leaves its cgroup only once it is reaped.
  for (let tries = 0; tries < 100 && (isRunning(nspawnPid) || cgroupProcesses(name).length > 0); tries++) {
    spawnSync('sleep', ['0.05']);
  }
  removeCgroups(name);
  rmSync(join('/run/systemd/nspawn/propagate', name), { recursive: true, force: true });
  rmSync(base, { recursive: true, force: true });
}

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return fallback;
  }
}

/** The child of systemd-nspawn: the container's PID 1. */
function leaderOf(nspawnPid: number): number | undefined {
  try {
    const first = Number(readFileSync(`/proc/${nspawnPid}/task/${nspawnPid}/children`, 'utf8').trim().split(' ')[0]);
    // Until nspawn's child has exec'd the init, it is still nspawn.
    return first > 0 && readFileSync(`/proc/${first}/comm`, 'utf8').trim() === 'systemd' ? first : undefined;
  } catch {
    return undefined; // nspawn or its child just ended
  }
}

/** Not ended: a zombie has (our own nspawn stays one until the event loop reaps it, which a synchronous wait never lets it do). */
function isRunning(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  const state = /^\d+ \(.*\) (\S)/.exec(readOr(`/proc/${pid}/stat`, ''))?.[1];
  return state !== undefined && state !== 'Z' && state !== 'X';
}

function tryKill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}
