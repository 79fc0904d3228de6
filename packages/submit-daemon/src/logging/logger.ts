/**
 * The daemon's logger: pino, JSON lines on standard output (journald or a
 * file takes them from there). One line per submission, plus lifecycle
 * lines; message content is never logged.
 */
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  readonly level: string;
  /** Human-readable lines for a terminal instead of JSON. */
  readonly pretty?: boolean;
  /** Where to write; standard output when absent. */
  readonly destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const base = { name: 'mailsubmitd' };
  const stream = options.destination ?? (options.pretty ? prettyStream() : pino.destination({ fd: 1, sync: false }));
  return pino({ level: options.level, base, timestamp: pino.stdTimeFunctions.isoTime }, stream);
}

/** A dependency-free readable form: time, level, msg, then key=value pairs. */
function prettyStream(): NodeJS.WritableStream {
  const levels: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line === '') continue;
        const { time, level, msg, name: _name, ...rest } = JSON.parse(line) as Record<string, unknown>;
        const pairs = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
        process.stdout.write(`${String(time)} ${levels[level as number] ?? String(level)} ${String(msg ?? '')} ${pairs.join(' ')}\n`);
      }
      callback();
    },
  });
}
