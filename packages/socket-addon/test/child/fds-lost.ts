/**
 * Child process for process.test.ts: at the fd limit, the fds a peer passes
 * cannot be installed, and the user database cannot open its files. The
 * frame must say its fds were lost (not that the peer sent too many), and a
 * lookup must fail with EMFILE rather than answer "no such user".
 * Prints one JSON line and exits.
 */
import { closeSync, openSync } from 'node:fs';
import { closeFd, listenSeqpacket, lookupGroupById, lookupUserById } from '../../src/index.ts';

const path = process.argv[2] as string;
const uid = Number(process.argv[3]);
const filler: number[] = [];

function fill(): void {
  for (;;) {
    try {
      filler.push(openSync('/dev/null', 'r'));
    } catch {
      return;
    }
  }
}

function attempt(lookup: () => unknown): unknown {
  try {
    const found = lookup();
    return found === null ? 'none' : 'found';
  } catch (error) {
    return (error as { code?: string }).code;
  }
}

const listener = listenSeqpacket({ path, mode: 0o600 });
listener.on('connection', (connection) => {
  // The connection has its fd; now take every other one before the frame is read.
  fill();
  const atLimit = { user: attempt(() => lookupUserById(uid)), group: attempt(() => lookupGroupById(0)) };
  connection.on('frame', (_data, fds, flags) => {
    fds.forEach(closeFd);
    for (const fd of filler.splice(0)) closeSync(fd);
    const afterwards = { user: attempt(() => lookupUserById(uid)), group: attempt(() => lookupGroupById(0)) };
    connection.send(Buffer.from('ok'));
    connection.close();
    listener.close();
    process.stdout.write(`${JSON.stringify({ flags, fds: fds.length, atLimit, afterwards })}\n`);
  });
});
process.stdout.write('ready\n');
