#!/usr/bin/env python3
"""Starts the helper the way a hostile or unusual parent might, for the tests.

argv[1] is a JSON plan:
  binary       path of the helper
  argv         its argv, argv[0] included; [] starts it with argc == 0
  env          its whole environment (default: empty)
  closeStdin   close fd 0 before exec
  closeStdout  close fd 1 before exec
  setid        [uid, gid]: become this user and group first (run as root)
"""
import ctypes
import json
import os
import sys

plan = json.loads(sys.argv[1])
if plan.get("closeStdin"):
    os.close(0)
if plan.get("closeStdout"):
    os.close(1)
if "setid" in plan:
    uid, gid = plan["setid"]
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
env = plan.get("env", {})
# os.execve refuses an empty argv and an empty argv[0]; the C library does not.
libc = ctypes.CDLL(None, use_errno=True)
argv = (ctypes.c_char_p * (len(plan["argv"]) + 1))(*[a.encode() for a in plan["argv"]], None)
envp = (ctypes.c_char_p * (len(env) + 1))(*[f"{k}={v}".encode() for k, v in env.items()], None)
libc.execve(plan["binary"].encode(), argv, envp)
sys.exit(f"execve: {os.strerror(ctypes.get_errno())}")
