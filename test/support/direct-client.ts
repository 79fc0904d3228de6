/**
 * A client that speaks the helper's frame protocol to mailsubmitd directly,
 * bypassing the set-gid helper: what a hostile local user can do with the
 * socket once it can reach it. The daemon must hold on its own (SO_PEERCRED,
 * frame checks, fd checks), so tests need a peer that is not the helper.
 *
 * The peer is a small Python program run as the given uid and gid (Node's
 * `net` cannot connect to SOCK_SEQPACKET, and the process must really be that
 * user for SO_PEERCRED to say so). The frame is built here, with the shared
 * codec, and travels ahead of `input` on the program's stdin (an argument
 * would cap it at 128 KiB, and over-long frames are a probe too): the program
 * reads exactly its length, so the rest of stdin is what it passes on. It
 * opens the files to pass as the user, connects, sends the frame with the
 * fds as SCM_RIGHTS, and prints the reply frame in hex.
 *
 *   const r = await directRequest({ socketPath, user, frame: encodeRequest({...}), fds: [{ open: '/dev/zero' }] });
 *   r.reply?.status // 66
 */
import { spawn } from 'node:child_process';
import { decodeReply, type FrameReply } from '@mailsubmit/shared';

/** System Python: root's pyenv shims are not reachable by test users. */
const PYTHON = '/usr/bin/python3';

/**
 * One fd to pass: the program's stdin (fed with `input`), a file opened as
 * the user, a pipe's write end, the terminal side of a new pseudo-terminal,
 * an eventfd, one end of a stream socketpair whose other end is written
 * `socketpair` and then shut for writing, or a Unix stream socket that is
 * connected to nothing.
 */
export type PassedFd =
  | { readonly stdin: true }
  | { readonly open: string; readonly flags: 'read' | 'write' | 'read-write' | 'directory' }
  | { readonly pipeWriteEnd: true }
  | { readonly pty: true }
  | { readonly eventfd: true }
  | { readonly socketpair: string }
  | { readonly unconnectedSocket: true };

export interface DirectRequest {
  readonly socketPath: string;
  readonly uid: number;
  readonly gid: number;
  /**
   * Run through `setpriv --init-groups` so the user's supplementary groups
   * are set (Node's spawn clears them).
   */
  readonly initGroups?: boolean;
  /** The request frame; null sends nothing and only waits for what the daemon says. */
  readonly frame: Uint8Array | null;
  readonly fds?: readonly PassedFd[];
  /** Written to the program's stdin, for a `{ stdin: true }` fd. */
  readonly input?: string | Buffer;
  /** How long the program waits for the reply. */
  readonly replyTimeoutMs?: number;
  /** Sends the frame, with the same fds, this many times more right after the first (the daemon reads one). */
  readonly repeat?: number;
}

export interface DirectResult {
  /** errno name when connect() failed (EACCES: the socket's permissions kept the peer out). */
  readonly connectError: string | null;
  /** errno name when sending the frame failed (EPIPE: the daemon had already answered and closed). */
  readonly sendError: string | null;
  /** errno name of a failed read before the reply (ECONNRESET: the daemon closed with the frame unread). */
  readonly recvError: string | null;
  /** The decoded reply, or null when none came in time (`timedOut`) or the daemon closed silently. */
  readonly reply: FrameReply | null;
  readonly rawReply: Buffer | null;
  readonly timedOut: boolean;
}

const PROGRAM = String.raw`
import errno, json, os, select, socket, sys

path, frame_length, specs, timeout_ms, repeat = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
frame = b""
while len(frame) < frame_length:
    chunk = os.read(0, frame_length - len(frame))
    if not chunk:
        sys.exit("stdin ended inside the frame")
    frame += chunk
FLAGS = {"read": os.O_RDONLY, "write": os.O_WRONLY, "read-write": os.O_RDWR, "directory": os.O_RDONLY | os.O_DIRECTORY}
name = lambda e: errno.errorcode.get(e.errno, str(e.errno))
fds = []
keep = []  # socket objects close their fd when collected
for spec in specs:
    if "stdin" in spec:
        fds.append(0)
    elif "pipeWriteEnd" in spec:
        fds.append(os.pipe()[1])
    elif "pty" in spec:
        fds.append(os.openpty()[1])
    elif "eventfd" in spec:
        fds.append(os.eventfd(0))
    elif "socketpair" in spec:
        mine, theirs = socket.socketpair()
        mine.sendall(spec["socketpair"].encode("latin-1"))
        mine.shutdown(socket.SHUT_WR)
        keep.append(mine)
        fds.append(theirs.fileno())
        keep.append(theirs)
    elif "unconnectedSocket" in spec:
        lone = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        keep.append(lone)
        fds.append(lone.fileno())
    else:
        fds.append(os.open(spec["open"], FLAGS[spec["flags"]]))
out = {"connectError": None, "sendError": None, "recvError": None, "reply": None, "timedOut": False}
sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
try:
    sock.connect(path)
except OSError as e:
    out["connectError"] = name(e)
    print(json.dumps(out))
    sys.exit(0)
if frame_length >= 0:
    try:
        for attempt in range(1 + repeat):
            if fds:
                socket.send_fds(sock, [frame], fds)
            else:
                sock.send(frame)
    except OSError as e:
        # EPIPE: the daemon answered at connect and closed; its reply is read below.
        out["sendError"] = name(e)
ready, _, _ = select.select([sock], [], [], timeout_ms / 1000)
if ready:
    # A daemon that closes with our frame unread makes the kernel report
    # ECONNRESET once, ahead of the reply still queued: read again, as the helper does.
    for attempt in range(2):
        try:
            data = sock.recv(4096)
            out["reply"] = data.hex() if data else None
            break
        except ConnectionResetError as e:
            out["recvError"] = name(e)
else:
    out["timedOut"] = True
print(json.dumps(out))
`;

/** Runs one request as the given user and returns what came back. */
export function directRequest(request: DirectRequest): Promise<DirectResult> {
  const timeout = request.replyTimeoutMs ?? 15_000;
  const args = [
    '-c',
    PROGRAM,
    request.socketPath,
    String(request.frame === null ? -1 : request.frame.byteLength),
    JSON.stringify(request.fds ?? []),
    String(timeout),
    String(request.repeat ?? 0),
  ];
  const child = request.initGroups
    ? spawn('setpriv', [`--reuid=${request.uid}`, `--regid=${request.gid}`, '--init-groups', PYTHON, ...args], { stdio: 'pipe', env: {}, cwd: '/' })
    : spawn(PYTHON, args, { uid: request.uid, gid: request.gid, stdio: 'pipe', env: {}, cwd: '/' });
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) {
        reject(new Error(`direct client exited ${code}: ${stderr}`));
        return;
      }
      const out = JSON.parse(stdout) as Omit<DirectResult, 'reply' | 'rawReply'> & { reply: string | null };
      const rawReply = out.reply === null ? null : Buffer.from(out.reply, 'hex');
      resolve({
        connectError: out.connectError,
        sendError: out.sendError,
        recvError: out.recvError,
        reply: rawReply === null ? null : decodeReply(rawReply),
        rawReply,
        timedOut: out.timedOut,
      });
    });
    child.stdin.on('error', () => undefined);
    const input = typeof request.input === 'string' ? Buffer.from(request.input) : (request.input ?? Buffer.alloc(0));
    child.stdin.end(request.frame === null ? input : Buffer.concat([request.frame, input]));
  });
}
