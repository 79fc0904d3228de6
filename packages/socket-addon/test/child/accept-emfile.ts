/**
 * Child process for process.test.ts, run with a low RLIMIT_NOFILE: fills its
 * fd table, so accept fails with EMFILE. The listener must report
 * 'acceptError', stop polling (a readable listener that cannot accept would
 * spin the loop), and accept again by itself once fds are free.
 * Prints one JSON line and exits.
 */
import { closeSync, openSync } from 'node:fs';
import { closeFd, listenSeqpacket } from '../../src/index.ts';

const path = process.argv[2] as string;
const filler: number[] = [];
const errors: string[] = [];

const listener = listenSeqpacket({ path, mode: 0o600 });
listener.on('acceptError', (error) => {
  errors.push(error.code);
  for (const fd of filler.splice(0)) closeSync(fd);
});
listener.on('connection', (connection) => {
  connection.on('frame', (data, fds) => {
    fds.forEach(closeFd);
    connection.send(Buffer.from(`ok:${data.toString()}`));
    connection.close();
    listener.close();
    process.stdout.write(`${JSON.stringify({ errors })}\n`);
  });
});
for (;;) {
  try {
    filler.push(openSync('/dev/null', 'r'));
  } catch {
    break;
  }
}
process.stdout.write('ready\n');
