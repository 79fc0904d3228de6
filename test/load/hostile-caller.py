"""A hostile listed caller, many times over: speaks the helper's frame
protocol to mailsubmitd directly and mixes every fd kind a caller can pass,
file-status flags the daemon may not set back, sizes from empty to 1 MiB,
the three front doors, broken frames, and callers that leave while the
daemon reads or before it replies. Run as the caller (uid and, in a set-gid
install, the socket's group) by test/load/hostile-callers.test.ts, which
builds the frames with the shared codec and judges the results.

  hostile-caller.py SOCKET SEED COUNT WORKERS FRAMES_JSON WORKDIR [KINDS]

KINDS, a comma-separated list, limits the mix to those kinds (to find which one
costs the daemon something).

Prints one JSON line per submission: {"i", "kind", "reply" (hex or null), "error"}.
"""
import fcntl
import json
import os
import random
import socket
import sys
import threading
import time

path, seed, count, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
frames = {name: bytes.fromhex(value) for name, value in json.loads(sys.argv[5]).items()}
workdir = sys.argv[6]
only = sys.argv[7].split(",") if len(sys.argv) > 7 and sys.argv[7] else None

O_NOATIME = getattr(os, "O_NOATIME", 0o1000000)
F_ADD_SEALS = 1033
F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE = 1, 2, 4, 8
SIZES = [0, 300, 4096, 70_000, 1_048_576]


def message(tag, size, envelope=True):
    head = (
        (f"sender: hostile@example.org\nrecipient: rcpt@example.org\n\n" if envelope else "")
        + f"From: hostile@example.org\nTo: rcpt@example.org\nSubject: hostile {tag}\nMessage-ID: <{tag}@hostile.example.org>\n\n"
    ).encode()
    line = b"x" * 76 + b"\n"
    body = line * (size // len(line)) if size > 0 else b"body\n"
    return head + body


class Caller:
    """One submission: the fds it passes and how it behaves around the reply."""

    def __init__(self, rng, tag):
        self.rng, self.tag = rng, tag
        self.keep = []  # objects whose collection would close an fd
        self.close_after = []  # fds of ours to close once sent
        self.close_last = []  # fds of ours the writers use: closed once they are done
        self.writers = []

    def feed(self, fd, data, stop_after=None, midway=None):
        """Writes data into fd from a thread (a pipe holds 64 KiB), optionally only its first stop_after octets;
        midway() runs when half of it is written."""

        def write():
            try:
                view = memoryview(data if stop_after is None else data[:stop_after])
                half = len(view) // 2
                while len(view) > half:
                    view = view[os.write(fd, view[: len(view) - half]) :]
                if midway is not None:
                    midway()
                while view:
                    view = view[os.write(fd, view) :]
            except OSError:
                pass
            if stop_after is None:
                os.close(fd)

        thread = threading.Thread(target=write, daemon=True)
        thread.start()
        self.writers.append((thread, fd, stop_after is not None))

    def pipe(self, data, flags=0, stop_after=None, flip=0):
        """A pipe carrying data; flip: flags the caller clears again on the shared open file while the daemon reads."""
        r, w = os.pipe()
        if flags:
            fcntl.fcntl(r, fcntl.F_SETFL, fcntl.fcntl(r, fcntl.F_GETFL) | flags)
        midway = None
        if flip:
            mine = os.dup(r)
            self.close_last.append(mine)

            def midway():
                try:
                    fcntl.fcntl(mine, fcntl.F_SETFL, fcntl.fcntl(mine, fcntl.F_GETFL) & ~flip)
                except OSError:
                    pass

        self.feed(w, data, stop_after, midway)
        self.close_after.append(r)
        return r

    def file(self, data, flags=0):
        name = os.path.join(workdir, f"{self.tag}.msg")
        with open(name, "wb") as f:
            f.write(data)
        fd = os.open(name, os.O_RDONLY | flags)
        os.unlink(name)
        self.close_after.append(fd)
        return fd

    def memfd(self, data, sealed=False):
        fd = os.memfd_create(self.tag, os.MFD_CLOEXEC | (os.MFD_ALLOW_SEALING if sealed else 0))
        os.write(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
        if sealed:
            fcntl.fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)
        self.close_after.append(fd)
        return fd

    def socket_pair(self, kind, data):
        mine, theirs = socket.socketpair(socket.AF_UNIX, kind)
        self.keep += [mine, theirs]
        if kind == socket.SOCK_STREAM:
            self.feed(os.dup(mine.fileno()), data)
            mine.close()
        else:
            for at in range(0, min(len(data), 200_000), 4096):
                try:
                    mine.send(data[at : at + 4096], socket.MSG_DONTWAIT)
                except OSError:
                    break
        return theirs.fileno()

    def opened(self, name, flags):
        fd = os.open(name, flags)
        self.close_after.append(fd)
        return fd

    def plan(self):
        """Picks a kind of caller; returns (kind, frame, fds, leave) with leave in (None, 'mid-read', 'before-reply')."""
        rng, tag = self.rng, self.tag
        size = rng.choice(SIZES)
        data = message(tag, size)
        kinds = [
            "pipe", "pipe", "pipe", "file", "file", "memfd", "sealed-memfd", "noatime-file", "noatime-pipe", "noatime-flip", "noatime-flip", "nonblock-pipe",
            "append-file", "stream-socketpair", "dgram-socketpair", "seqpacket-socketpair", "udp-socket",
            "tcp-socket", "eventfd", "o-path", "dev-null", "directory", "pty", "write-only", "unconnected-unix",
            "sendmail", "qmail-queue", "leave-mid-read", "leave-before-reply", "bad-envelope", "garbage-frame",
            "no-fd", "two-fds", "stall",
        ]
        kind = rng.choice(only or kinds)
        native = frames["native"]
        if kind == "pipe":
            return kind, native, [self.pipe(data)], None
        if kind == "file":
            return kind, native, [self.file(data)], None
        if kind == "memfd":
            return kind, native, [self.memfd(data)], None
        if kind == "sealed-memfd":
            return kind, native, [self.memfd(data, sealed=True)], None
        if kind == "noatime-file":
            return kind, native, [self.file(data, O_NOATIME)], None
        if kind == "noatime-pipe":
            return kind, native, [self.pipe(data, O_NOATIME)], None
        if kind == "noatime-flip":
            return kind, native, [self.pipe(data + (b"x" * 76 + b"\n") * 2600, O_NOATIME, flip=O_NOATIME)], None
        if kind == "nonblock-pipe":
            return kind, native, [self.pipe(data, os.O_NONBLOCK)], None
        if kind == "append-file":
            name = os.path.join(workdir, f"{tag}.append")
            with open(name, "wb") as f:
                f.write(data)
            fd = os.open(name, os.O_RDWR | os.O_APPEND)
            os.unlink(name)
            self.close_after.append(fd)
            return kind, native, [fd], None
        if kind == "stream-socketpair":
            return kind, native, [self.socket_pair(socket.SOCK_STREAM, data)], None
        if kind == "dgram-socketpair":
            return kind, native, [self.socket_pair(socket.SOCK_DGRAM, data)], None
        if kind == "seqpacket-socketpair":
            return kind, native, [self.socket_pair(socket.SOCK_SEQPACKET, data)], None
        if kind == "udp-socket":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            self.keep.append(s)
            return kind, native, [s.fileno()], None
        if kind == "tcp-socket":
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.keep.append(s)
            return kind, native, [s.fileno()], None
        if kind == "eventfd":
            fd = os.eventfd(1)
            self.close_after.append(fd)
            return kind, native, [fd], None
        if kind == "o-path":
            return kind, native, [self.opened("/etc/hostname", os.O_PATH)], None
        if kind == "dev-null":
            return kind, native, [self.opened("/dev/null", os.O_RDONLY)], None
        if kind == "directory":
            return kind, native, [self.opened("/", os.O_RDONLY | os.O_DIRECTORY)], None
        if kind == "pty":
            main, terminal = os.openpty()
            self.close_after += [main, terminal]
            return kind, native, [terminal], None
        if kind == "write-only":
            return kind, native, [self.opened("/dev/null", os.O_WRONLY)], None
        if kind == "unconnected-unix":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.keep.append(s)
            return kind, native, [s.fileno()], None
        if kind == "sendmail":
            return kind, frames["sendmail"], [self.pipe(message(tag, size, envelope=False))], None
        if kind == "qmail-queue":
            body = message(tag, size, envelope=False)
            return kind, frames["qmail"], [self.pipe(body), self.pipe(b"Fhostile@example.org\0Trcpt@example.org\0\0")], None
        if kind == "leave-mid-read":
            return kind, native, [self.pipe(data + b"x" * 100_000, stop_after=len(data) // 2)], "mid-read"
        if kind == "leave-before-reply":
            return kind, native, [self.pipe(data)], "before-reply"
        if kind == "bad-envelope":
            return kind, native, [self.pipe(b"sender: <\x1b]0;x\x07>\nrecipient: r@example.org\n\nSubject: x\n\nx\n")], None
        if kind == "garbage-frame":
            return kind, bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64))), [self.pipe(data)], None
        if kind == "no-fd":
            return kind, native, [], None
        if kind == "two-fds":
            return kind, native, [self.pipe(data), self.pipe(data)], None
        # stall: half the message, then silence until the daemon's idle deadline.
        return kind, native, [self.pipe(data + b"x" * 100_000, stop_after=len(data) // 2)], None

    def run(self):
        kind, frame, fds, leave = self.plan()
        out = {"kind": kind, "reply": None, "error": None}
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            sock.connect(path)
            if fds:
                socket.send_fds(sock, [frame], fds)
            else:
                sock.send(frame)
            for fd in self.close_after:
                os.close(fd)
            self.close_after = []
            if leave == "mid-read":
                time.sleep(self.rng.random() * 0.02)
                sock.close()
            elif leave == "before-reply":
                sock.close()
            else:
                sock.settimeout(30)
                for attempt in range(2):
                    try:
                        data = sock.recv(4096)
                        out["reply"] = data.hex() if data else None
                        break
                    except ConnectionResetError as e:
                        out["error"] = "ECONNRESET"
        except OSError as e:
            out["error"] = type(e).__name__ + ":" + str(e.errno)
        finally:
            sock.close()
            for fd in self.close_after:
                os.close(fd)
            for thread, fd, partial in self.writers:
                thread.join(5)
                # A half-written input stays open to the end of the run: its end of file
                # would make the half a whole message, and this caller left before that.
                if partial:
                    with lock:
                        held_open.append(fd)
            for fd in self.close_last:
                os.close(fd)
            for obj in self.keep:
                obj.close()
        return out


lock = threading.Lock()
next_index = [0]
held_open = []


def worker(number):
    while True:
        with lock:
            i = next_index[0]
            if i >= count:
                return
            next_index[0] += 1
        caller = Caller(random.Random(seed * 1_000_003 + i), f"h{seed}-{i}")
        out = caller.run()
        out["i"] = i
        with lock:
            sys.stdout.write(json.dumps(out) + "\n")


threads = [threading.Thread(target=worker, args=(n,)) for n in range(workers)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for fd in held_open:
    os.close(fd)
sys.stdout.flush()
