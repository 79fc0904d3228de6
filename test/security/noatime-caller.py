#!/usr/bin/python3
"""A caller that changes its stdin's flags while the daemon reads it.

Started as root, drops to the user, makes a pipe, sets O_NOATIME on its read
end (the pipe is the user's, so it may), starts the helper with that end as
fd 0 and keeps its own copy: both share one open file description. Once the
daemon has made the description non-blocking (it is reading), the caller
clears O_NOATIME again, then writes the rest of the message. A daemon that
then writes back the flags it saw at the start sets O_NOATIME on a pipe it
does not own, and gets EPERM. Prints one JSON line: the helper's exit code
and stderr.

  noatime-caller.py UID GID HELPER MESSAGE_FILE
"""
import fcntl
import json
import os
import subprocess
import sys
import time

uid, gid, helper, message_file = sys.argv[1:5]
with open(message_file, "rb") as source:
    message = source.read()
os.setgroups([])
os.setgid(int(gid))
os.setuid(int(uid))

r, w = os.pipe()
fcntl.fcntl(r, fcntl.F_SETFL, fcntl.fcntl(r, fcntl.F_GETFL) | os.O_NOATIME)
child = subprocess.Popen([helper], stdin=r, stderr=subprocess.PIPE, env={})
half = len(message) // 2
os.write(w, message[:half])
deadline = time.monotonic() + 20
while not fcntl.fcntl(r, fcntl.F_GETFL) & os.O_NONBLOCK:
    if time.monotonic() > deadline:
        raise SystemExit("the daemon never started reading")
    time.sleep(0.01)
fcntl.fcntl(r, fcntl.F_SETFL, fcntl.fcntl(r, fcntl.F_GETFL) & ~os.O_NOATIME)
os.write(w, message[half:])
os.close(w)
_, stderr = child.communicate(timeout=60)
flags = fcntl.fcntl(r, fcntl.F_GETFL)
print(json.dumps({"code": child.returncode, "stderr": stderr.decode("utf-8", "replace"), "nonblock": bool(flags & os.O_NONBLOCK)}))
