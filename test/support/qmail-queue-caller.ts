/**
 * Runs the qmail-queue front door the way qmail's own callers (qmail.c) do:
 * the whole message written to fd 0 and closed, and only then the envelope
 * written to fd 1, both pipes. Started as root; the helper runs as the user,
 * with exactly `env` as its environment (tcpserver's TCPREMOTE* facts).
 */
import { spawn } from 'node:child_process';
import { childOutput, type ChildOutput } from './child-output.ts';

const MESSAGE_FIRST = `
import json, os, subprocess, sys
helper, message, envelope, uid, gid, env = sys.argv[1:7]
mr, mw = os.pipe()
er, ew = os.pipe()
child = subprocess.Popen([helper], stdin=mr, stdout=er, user=int(uid), group=int(gid), extra_groups=[], env=json.loads(env))
os.close(mr)
os.close(er)
for fd, path in ((mw, message), (ew, envelope)):
    with open(path, 'rb') as source:
        data = source.read()
    while data:
        data = data[os.write(fd, data):]
    os.close(fd)
sys.exit(child.wait())
`;

export interface QmailQueueCall {
  /** The helper started under a qmail-queue name (a link named mailsubmit-qmail-queue). */
  readonly helper: string;
  readonly user: { readonly uid: number; readonly gid: number };
  /** Files the message and the envelope are read from (readable by root). */
  readonly messageFile: string;
  readonly envelopeFile: string;
  readonly env?: Readonly<Record<string, string>>;
}

export function runQmailQueueMessageFirst(call: QmailQueueCall): Promise<ChildOutput> {
  const { helper, user, messageFile, envelopeFile, env = {} } = call;
  const child = spawn('/usr/bin/python3', ['-c', MESSAGE_FIRST, helper, messageFile, envelopeFile, String(user.uid), String(user.gid), JSON.stringify(env)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {},
  });
  return childOutput(child);
}
