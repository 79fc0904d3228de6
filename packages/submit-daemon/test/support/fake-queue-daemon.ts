/**
 * A control socket with nothing behind it but a FakeQueueControl, as its
 * own process, for tests of `mailsubmitctl queue` (which run the built
 * command and may not import the daemon's code):
 *
 *   tsx fake-queue-daemon.ts SOCKET [sample|empty|none]
 *
 * sample: the messages of sampleMessages(); empty: no message; none: a
 * daemon without a local queue. Prints "listening" once the socket answers,
 * and each log line of the control server on standard error; SIGTERM ends it.
 */
import { Writable } from 'node:stream';
import { ControlServer } from '../../src/control/control-server.ts';
import { createLogger } from '../../src/logging/logger.ts';
import { FakeQueueControl, sampleMessages } from './fake-queue-control.ts';

const [path, contents = 'sample'] = process.argv.slice(2);
if (path === undefined || !['sample', 'empty', 'none'].includes(contents)) {
  process.stderr.write('usage: fake-queue-daemon.ts SOCKET [sample|empty|none]\n');
  process.exit(64);
}
const queue = contents === 'none' ? null : new FakeQueueControl(contents === 'sample' ? sampleMessages() : []);
const target = {
  status: () => {
    throw new Error('this control socket has only a queue behind it');
  },
  reload: () => {
    throw new Error('this control socket has only a queue behind it');
  },
};
const stderr = new Writable({ write: (chunk: Buffer, _encoding, done) => process.stderr.write(chunk, () => done()) });
const server = new ControlServer(path, target, createLogger({ level: 'info', destination: stderr }), () => queue);
await server.listen();
process.stdout.write('listening\n');
process.once('SIGTERM', () => void server.close().then(() => process.exit(0)));
