/**
 * A cgroup of its own for each container DebianContainer boots. Without a
 * systemd on the host, systemd-nspawn keeps the cgroup it was started in
 * (--keep-unit) and puts the container below it, so two containers started
 * from one process would share one: each is started from a shell that first
 * moves itself into a cgroup named after the machine, in every hierarchy the
 * host has (cgroup v1 and v2 side by side, or v2 alone). Where the host runs
 * systemd, nspawn registers its own scope and none of this is used.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';

const hostHasSystemd = () => existsSync('/run/systemd/system');

const cgroupName = (machine: string) => `mailsubmit-${machine}`;

/** The container's cgroup of its own, in each hierarchy the host has (cgroup v1 and v2 side by side, or v2 alone). */
function cgroupDirs(machine: string): string[] {
  if (hostHasSystemd()) return [];
  const hybrid = ['/sys/fs/cgroup/unified', '/sys/fs/cgroup/systemd'].filter((dir) => existsSync(join(dir, 'cgroup.procs')));
  const roots = hybrid.length > 0 ? hybrid : ['/sys/fs/cgroup'];
  return roots.map((root) => join(root, cgroupName(machine)));
}

export function cgroupProcesses(machine: string): number[] {
  const pids: number[] = [];
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const line of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n')) if (Number(line) > 0) pids.push(Number(line));
    for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) walk(join(dir, entry.name));
  };
  for (const dir of cgroupDirs(machine)) walk(dir);
  return pids;
}

/** Children first: a cgroup directory goes only once it is empty. */
export function removeCgroups(machine: string): void {
  const remove = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) remove(join(dir, entry.name));
    try {
      rmdirSync(dir);
    } catch {
      // Still has a process: destroy() kills it and tries again.
    }
  };
  for (const dir of cgroupDirs(machine)) remove(dir);
}

/** Moves the shell into the container's cgroup in every hierarchy, then becomes systemd-nspawn. */
const joinCgroupScript = `name=$1; shift
for h in /sys/fs/cgroup/unified /sys/fs/cgroup/systemd /sys/fs/cgroup; do
  [ -d "$h/$name" ] && echo $$ > "$h/$name/cgroup.procs"
done
exec "$@" </dev/null`;

/**
 * The command that boots a container with systemd-nspawn `args`, in a cgroup
 * of its own (made here) where the host has no systemd.
 */
export function nspawnInOwnCgroup(machine: string, args: readonly string[]): string[] {
  if (hostHasSystemd()) return ['systemd-nspawn', ...args];
  for (const dir of cgroupDirs(machine)) mkdirSync(dir, { recursive: true });
  return ['sh', '-c', joinCgroupScript, 'sh', cgroupName(machine), 'systemd-nspawn', ...args, '--keep-unit'];
}
