#!/usr/bin/env python3
"""The helper's side of the daemon's SOCK_SEQPACKET socket, for unit tests.

Node cannot open a SEQPACKET client socket, so this process holds the
client ends. It reads one JSON command per line on stdin and answers each
with one JSON line on stdout:
  {"op": "connect", "path": P}                  -> {"id": N}
  {"op": "send", "id": N, "data": HEX, "fds": [SPEC...]}
                                                -> {"sent": OCTETS} or {"error": ERRNO_NAME}
  {"op": "recv", "id": N, "timeout": SECONDS}   -> {"data": HEX}, {"eof": true}, {"timeout": true} or {"error": ...}
  {"op": "close", "id": N}                      -> {}
fd SPECs: "pipe:TEXT" (the read end of a pipe holding TEXT, closed for
writing), "null" (/dev/null read-only). Passed fds are closed here once sent.
"""
import errno
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
    raise ValueError(spec)


def main():
    sockets = {}
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        result = {}
        try:
            if op == "connect":
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                sock.connect(command["path"])
                sockets[len(sockets) + 1] = sock
                result = {"id": len(sockets)}
            elif op == "send":
                fds = [open_fd(spec) for spec in command.get("fds", [])]
                try:
                    sent = socket.send_fds(sockets[command["id"]], [bytes.fromhex(command["data"])], fds)
                finally:
                    for fd in fds:
                        os.close(fd)
                result = {"sent": sent}
            elif op == "recv":
                sock = sockets[command["id"]]
                sock.settimeout(command.get("timeout", 5))
                try:
                    data = sock.recv(70000)
                    result = {"eof": True} if data == b"" else {"data": data.hex()}
                except socket.timeout:
                    result = {"timeout": True}
            elif op == "close":
                sockets[command["id"]].close()
        except OSError as error:
            result = {"error": errno.errorcode.get(error.errno, str(error))}
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


main()
