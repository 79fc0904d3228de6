#!/usr/bin/env python3
"""A real SOCK_SEQPACKET client for the addon's tests, playing the helper.

Takes one JSON plan as argv[1] and prints one JSON result line:
  path      socket to connect to
  count     connections to make one after another (default 1)
  payload   frame to send, as text; "{i}" is replaced by the round number
  size      instead of payload: a frame of this many 'x' octets
  fds       fds to pass: "pipe:TEXT" (read end of a pipe holding TEXT),
            "null" (/dev/null read-only), "wo:PATH" (PATH opened write-only),
            "sock" (one end of a socketpair), "dgram" and "seqpacket"
            (one end of a socketpair of that type), "listening" (a
            listening Unix stream socket)
  expect    reply expected, "{i}" replaced; rounds that differ are counted bad
  silent    connect and close without sending anything
  noReply   close right after sending, without waiting for a reply
  nonblock  report, after the reply, whether each passed fd is O_NONBLOCK on
            this side (the daemon shares the open file description)
  setid     [uid, gid]: drop to these ids before connecting (run as root)
"""
import fcntl
import json
import os
import socket
import sys


def open_fd(spec):
    if spec == "null":
        return os.open("/dev/null", os.O_RDONLY)
    if spec.startswith("pipe:"):
        r, w = os.pipe()
        os.write(w, spec[5:].encode())
        os.close(w)
        return r
    if spec == "sock":
        a, b = socket.socketpair()
        b.close()
        return a.detach()
    if spec in ("dgram", "seqpacket"):
        kind = socket.SOCK_DGRAM if spec == "dgram" else socket.SOCK_SEQPACKET
        a, b = socket.socketpair(socket.AF_UNIX, kind)
        b.close()
        return a.detach()
    if spec == "listening":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind("")  # autobind: an abstract name of its own
        s.listen(1)
        return s.detach()
    if spec.startswith("wo:"):
        return os.open(spec[3:], os.O_WRONLY | os.O_CREAT, 0o600)
    raise ValueError(spec)


def round_trip(plan, i):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.settimeout(20)  # only so a broken daemon cannot hang the test run
    try:
        sock.connect(plan["path"])
        if plan.get("silent"):
            return {"sent": 0}
        if "size" in plan:
            data = b"x" * plan["size"]
        else:
            data = plan["payload"].replace("{i}", str(i)).encode()
        fds = [open_fd(spec) for spec in plan.get("fds", [])]
        try:
            socket.send_fds(sock, [data], fds)
            if plan.get("noReply"):
                return {"sent": len(data)}
            try:
                reply = sock.recv(70000)
            except socket.timeout:
                return {"timeout": True}
            except ConnectionResetError:
                return {"reset": True}
            result = {"eof": True} if reply == b"" else {"reply": reply.decode("utf-8", "replace")}
            if plan.get("nonblock"):
                result["nonblock"] = [bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK) for fd in fds]
            return result
        finally:
            for fd in fds:
                os.close(fd)
    finally:
        sock.close()


def main():
    plan = json.loads(sys.argv[1])
    if "setid" in plan:
        uid, gid = plan["setid"]
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    count = plan.get("count", 1)
    results, bad = [], 0
    for i in range(count):
        result = round_trip(plan, i)
        if "expect" in plan and result.get("reply") != plan["expect"].replace("{i}", str(i)):
            bad += 1
        if len(results) < 3:
            results.append(result)
    print(json.dumps({"pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid(),
                      "rounds": count, "bad": bad, "results": results}))


main()
