/**
 * The I/O floor: what a Node.js daemon doing nothing but mailsubmitd's
 * system calls for one submission costs on this machine. It stands in for
 * mailsubmitd (started the same way: `node io-floor.mjs -c CONFIG`, the
 * same sockets, the same helper) and, per connection, does only:
 *
 *   accept; receive the request frame and its fd; read the fd in libuv's
 *   thread pool until EOF (two reads for a small file) and close it;
 *   RSET, XFORWARD, MAIL and RCPT in one write on a kept SMTP connection,
 *   their replies; DATA, its reply; the message and the dot in one write,
 *   the reply; the reply frame; close.
 *
 * No validation, no limits, no deadlines, no log line, no envelope parsing
 * (the sender and recipient are the bench's own), no error handling: a
 * measuring instrument, never a daemon. The bench (submit.bench.ts) sets
 * MAILSUBMIT_IO_FLOOR_ADDON to the daemon's socket_addon.node and
 * MAILSUBMIT_IO_FLOOR_REPLY to the reply frame (hex, made with the shared
 * frame encoder), and counts the messages at the sink as for mailsubmitd.
 */
import { chmodSync, closeSync, read, readFileSync, renameSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect } from 'node:net';

// The daemon's own socket addon (its build beside the bundle), named by the bench.
const addon = createRequire(import.meta.url)(process.env.MAILSUBMIT_IO_FLOOR_ADDON);
// Event kinds of the addon (packages/socket-addon/src/addon.h).
const EVENT_CONNECTION = 1;
const EVENT_FRAME = 2;

const config = readFileSync(process.argv[process.argv.indexOf('-c') + 1], 'utf8');
const setting = (name) => new RegExp(`^${name} = "(.*)"$`, 'm').exec(config)[1];
const [host, port] = setting('target').split(':');
const okFrame = Buffer.from(process.env.MAILSUBMIT_IO_FLOOR_REPLY, 'hex');

/** A listening socket at `path` (open to all: the bench's test user is the only caller). */
function listen(path, onConnection) {
  const bindPath = `${path}.floor`;
  const handle = addon.listen(path, 0o666, 128, 65536, 16, bindPath);
  chmodSync(bindPath, 0o666);
  renameSync(bindPath, path);
  addon.start(handle, (kind, connection) => {
    if (kind === EVENT_CONNECTION) onConnection(connection);
  });
}

// One SMTP connection for all submissions; each reply line ends the oldest wait.
const smtp = connect(Number(port), host);
const waiting = [];
let partial = '';
smtp.on('data', (chunk) => {
  partial += chunk.toString('latin1');
  for (let end = partial.indexOf('\r\n'); end !== -1; end = partial.indexOf('\r\n')) {
    const line = partial.slice(0, end);
    partial = partial.slice(end + 2);
    if (line[3] !== '-') waiting.shift()(line);
  }
});
const replies = (count) => Promise.all(Array.from({ length: count }, () => new Promise((resolve) => waiting.push(resolve))));

await replies(1);
smtp.write('EHLO io-floor\r\n');
await replies(1);

/** Reads `fd` to its end in the thread pool, as mailsubmitd's regular-file reader does. */
function readAll(fd, done) {
  const buffer = Buffer.allocUnsafe(64 * 1024);
  read(fd, buffer, 0, buffer.length, null, (_error, octets) => {
    const message = Buffer.from(buffer.subarray(0, octets));
    read(fd, buffer, 0, buffer.length, null, () => {
      closeSync(fd);
      done(message);
    });
  });
}

// One transaction at a time on the one connection, as the bench submits one at a time.
let transactions = Promise.resolve();
async function transaction(connection, submission) {
  // The native door's envelope block ends at the first empty line.
  const message = submission.subarray(submission.indexOf('\n\n') + 2);
  smtp.write('RSET\r\nXFORWARD SOURCE=REMOTE\r\nMAIL FROM:<mstbench@example.org>\r\nRCPT TO:<rcpt@example.org>\r\n');
  await replies(4);
  smtp.write('DATA\r\n');
  await replies(1);
  smtp.write(Buffer.concat([message, Buffer.from('.\r\n')]));
  await replies(1);
  addon.send(connection, okFrame);
  addon.close(connection);
}

listen(setting('control_socket'), (connection) => addon.close(connection));
listen(setting('socket'), (connection) => {
  addon.start(connection, (kind, _frame, fds) => {
    if (kind !== EVENT_FRAME) return;
    readAll(fds[0], (submission) => {
      transactions = transactions.then(() => transaction(connection, submission));
    });
  });
});
process.on('SIGTERM', () => process.exit(0));
