/**
 * What a local user would try to make the set-gid helper connect somewhere
 * else: the helper's socket path is compiled in, so the only way is to change
 * what that path names. Each attack is a Python program run as the attacker
 * (see setgid-probes.ts runAsCaller); it prints, per step, "ok" or the errno
 * name of the failure. The directory modes (run directory 0750, not writable
 * by its group; every directory above it writable by nobody but root, or
 * sticky with a root-owned entry) must make every step fail.
 */

export interface PathAttack {
  readonly name: string;
  readonly program: string;
  readonly args: (socketPath: string, scratch: string) => string[];
  readonly expected: Record<string, string>;
}

const PRELUDE = String.raw`
import errno, json, os, shutil, socket, stat, sys, tempfile
out = {}
def attempt(step, action):
    try:
        action()
        out[step] = "ok"
    except OSError as e:
        out[step] = errno.errorcode.get(e.errno, str(e.errno))
`;

/** A socket of the attacker's own, in a directory of its own, that it would like the helper to reach. */
const OWN_SOCKET = String.raw`
mine = tempfile.mkdtemp(prefix="mailsubmit-attacker-", dir="/tmp")
own = os.path.join(mine, "evil.sock")
listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
listener.bind(own)
listener.listen(1)
`;

export const ATTACK_PATHS: readonly PathAttack[] = [
  {
    name: 'replaced by a symlink to, or a rename of, a socket the attacker listens on',
    program: `${PRELUDE}${OWN_SOCKET}
path = sys.argv[1]
attempt("unlink", lambda: os.unlink(path))
attempt("symlink-beside", lambda: os.symlink(own, path + ".new"))
attempt("rename-over", lambda: os.rename(own, path))
attempt("bind-beside", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET).bind(path + ".evil"))
shutil.rmtree(mine)
print(json.dumps(out))
`,
    args: (socketPath) => [socketPath],
    expected: { unlink: 'EACCES', 'symlink-beside': 'EACCES', 'rename-over': 'EACCES', 'bind-beside': 'EACCES' },
  },
  {
    name: 'moved away with its directory, or its directory replaced by a symlink',
    program: `${PRELUDE}${OWN_SOCKET}
rundir = os.path.dirname(sys.argv[1])
attempt("rename-directory", lambda: os.rename(rundir, rundir + ".old"))
attempt("remove-directory", lambda: os.rmdir(rundir))
attempt("symlink-beside-directory", lambda: os.symlink(mine, rundir + ".evil"))
shutil.rmtree(mine)
print(json.dumps(out))
`,
    args: (socketPath) => [socketPath],
    expected: { 'rename-directory': 'EACCES', 'remove-directory': 'EACCES', 'symlink-beside-directory': 'EACCES' },
  },
  {
    name: 'redirected through any directory above it',
    // A directory the attacker may write to lets it rename the entry below; a sticky one only if it owns that entry.
    program: `${PRELUDE}
path = sys.argv[1]
weak = []
child = path
while True:
    parent = os.path.dirname(child)
    st = os.stat(parent)
    if os.access(parent, os.W_OK) and not (st.st_mode & stat.S_ISVTX and os.lstat(child).st_uid != os.getuid()):
        weak.append(parent)
    if parent == child or parent == "/":
        break
    child = parent
out["writable"] = ",".join(weak) or "none"
print(json.dumps(out))
`,
    args: (socketPath) => [socketPath],
    expected: { writable: 'none' },
  },
];
