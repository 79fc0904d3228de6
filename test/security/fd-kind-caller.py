#!/usr/bin/python3
"""Runs a mailsubmit front door with one kind of fd as its standard input.

Started as root; drops to the user first, so every fd is made by the user
itself (O_NOATIME needs the file's owner), then starts the helper with the
fd as fd 0 and feeds it the message where the kind can carry one. In the
qmail-queue mode fd 1 is a pipe carrying the envelope. Prints one JSON line:
the helper's exit code and what it wrote to stderr.

  fd-kind-caller.py KIND UID GID HELPER MESSAGE_FILE DIR [ARG...]

KIND names the fd; DIR is a directory the user owns (files it needs are
made there; a read-only file system is expected at DIR/ro with ro/message
in it). ENVELOPE_FILE in the environment names the qmail-queue envelope,
if any (read before the privileges are dropped).
"""
import fcntl
import json
import os
import socket
import subprocess
import sys
import threading

kind, uid, gid, helper, message_file, scratch = sys.argv[1:7]
args = sys.argv[7:]
envelope = None
if os.environ.get("ENVELOPE_FILE"):
    with open(os.environ["ENVELOPE_FILE"], "rb") as source:
        envelope = source.read()

with open(message_file, "rb") as source:
    message = source.read()

os.setgroups([])
os.setgid(int(gid))
os.setuid(int(uid))

keep = []  # objects whose fds must outlive the helper's start
feed = None  # (fd or socket, how) written after the helper starts


def user_file(name, data=message):
    path = os.path.join(scratch, name)
    with open(path, "wb") as out:
        out.write(data)
    return path


def make_fd():
    global feed
    if kind == "file":
        return os.open(user_file("plain"), os.O_RDONLY)
    if kind == "noatime-file":
        return os.open(user_file("noatime"), os.O_RDONLY | os.O_NOATIME)
    if kind == "readonly-fs-file":
        return os.open(os.path.join(scratch, "ro", "message"), os.O_RDONLY)
    if kind == "write-only-file":
        return os.open(user_file("write-only"), os.O_WRONLY)
    if kind == "o-path":
        return os.open(user_file("o-path"), os.O_PATH)
    if kind == "directory":
        return os.open(scratch, os.O_RDONLY | os.O_DIRECTORY)
    if kind == "dev-null":
        return os.open("/dev/null", os.O_RDONLY)
    if kind == "pty":
        master, slave = os.openpty()
        keep.append(master)
        return slave
    if kind == "eventfd":
        return os.eventfd(0)
    if kind in ("memfd", "sealed-memfd"):
        sealed = kind == "sealed-memfd"
        fd = os.memfd_create("message", os.MFD_CLOEXEC | (os.MFD_ALLOW_SEALING if sealed else 0))
        os.write(fd, message)
        os.lseek(fd, 0, os.SEEK_SET)
        if sealed:
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
        return fd
    if kind == "pipe":
        r, w = os.pipe()
        feed = (w, "fd")
        return r
    if kind == "fifo":
        path = os.path.join(scratch, "fifo")
        if not os.path.exists(path):
            os.mkfifo(path, 0o600)
        r = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        fcntl.fcntl(r, fcntl.F_SETFL, fcntl.fcntl(r, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        feed = (os.open(path, os.O_WRONLY), "fd")
        return r
    if kind == "tcp-stream":
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        client = socket.create_connection(server.getsockname())
        peer, _ = server.accept()
        server.close()
        feed = (peer, "stream")
        return client.detach()
    if kind == "tcp-unconnected":
        return socket.socket(socket.AF_INET, socket.SOCK_STREAM).detach()
    if kind == "tcp-listening":
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        return server.detach()
    if kind == "udp":
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        a.bind(("127.0.0.1", 0))
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b.bind(("127.0.0.1", 0))
        a.connect(b.getsockname())
        b.connect(a.getsockname())
        b.send(message[:1024])
        keep.append(b)
        return a.detach()
    if kind == "unix-stream":
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        feed = (b, "stream")
        return a.detach()
    if kind == "unix-stream-unconnected":
        return socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).detach()
    if kind in ("unix-dgram", "unix-seqpacket"):
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM if kind == "unix-dgram" else socket.SOCK_SEQPACKET)
        b.send(message[:1024])
        keep.append(b)
        return a.detach()
    if kind in ("unix-dgram-unconnected", "unix-seqpacket-unconnected"):
        return socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM if kind == "unix-dgram-unconnected" else socket.SOCK_SEQPACKET).detach()
    raise SystemExit(f"unknown kind {kind}")


def write_all(target, how, data):
    try:
        if how == "stream":
            target.sendall(data)
            target.shutdown(socket.SHUT_WR)
        else:
            while data:
                data = data[os.write(target, data):]
            os.close(target)
    except OSError:
        pass  # the helper was refused before reading: nothing to write to


fd = make_fd()
stdout = None
envelope_w = None
if envelope is not None:
    stdout, envelope_w = os.pipe()
child = subprocess.Popen([helper, *args], stdin=fd, stdout=stdout, stderr=subprocess.PIPE, env={})
os.close(fd)
if stdout is not None:
    os.close(stdout)
writers = []
if feed is not None:
    writers.append(threading.Thread(target=write_all, args=(feed[0], feed[1], message), daemon=True))
if envelope_w is not None:
    writers.append(threading.Thread(target=write_all, args=(envelope_w, "fd", envelope), daemon=True))
for writer in writers:
    writer.start()
_, stderr = child.communicate(timeout=60)
print(json.dumps({"code": child.returncode, "stderr": stderr.decode("utf-8", "replace")}))
