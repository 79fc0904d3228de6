/**
 * Child process for process.test.ts: a 'frame' handler that throws must
 * surface as an ordinary uncaught exception (not be swallowed inside the
 * addon, and not kill the loop), and the listener must go on serving.
 * Prints one JSON line and exits.
 */
import { closeFd, listenSeqpacket } from '../../src/index.ts';

const path = process.argv[2] as string;
const caught: string[] = [];
let frames = 0;

process.on('uncaughtException', (error) => caught.push(error.message));

const listener = listenSeqpacket({ path, mode: 0o600 });
listener.on('connection', (connection) => {
  connection.on('frame', (data, fds) => {
    fds.forEach(closeFd);
    frames++;
    if (data.toString() === 'throw') {
      connection.close();
      throw new Error('thrown by the handler');
    }
    // A microtask queued here must run before the next loop turn.
    void Promise.resolve().then(() => {
      connection.send(Buffer.from(`ok:${data.toString()}`));
      connection.close();
      if (data.toString() === 'last') {
        listener.close();
        process.stdout.write(`${JSON.stringify({ frames, caught })}\n`);
      }
    });
  });
});
process.stdout.write('ready\n');
