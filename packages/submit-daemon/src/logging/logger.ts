/**
 * The daemon's logger: pino, JSON lines on standard output (journald or a
 * file takes them from there). One line per submission, plus lifecycle
 * lines; message content is never logged.
 *
 * Much of what is logged comes from callers (addresses, client names, argv,
 * the MTA's reply, error texts quoting them). Every string goes through
 * escapeText at one place, pino's logMethod hook (and child() for a child
 * logger's bindings), so no call site can forget it: controls,
 * bidi and other format characters and lone surrogates appear as visible
 * escapes (\u202e, \x1b), in JSON and in the pretty form alike. pino's own
 * JSON escapes C0 controls only.
 */
import { Writable } from 'node:stream';
import { escapeBytes, escapeText } from '@mailsubmit/shared';
import { pino, type DestinationStream, type Logger } from 'pino';

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
  const stream = options.destination ?? (options.pretty ? prettyStream() : batchedStdout());
  const logger = pino(
    {
      level: options.level,
      base,
      timestamp: pino.stdTimeFunctions.isoTime,
      hooks: {
        logMethod(args, method) {
          method.apply(this, args.map((arg) => escapeForLog(arg)) as Parameters<typeof method>);
        },
      },
    },
    stream,
  );
  // A child's bindings skip pino's bindings formatter; children inherit this from their parent.
  type ChildFn = (this: unknown, bindings: pino.Bindings, options?: pino.ChildLoggerOptions) => unknown;
  const child = logger.child as unknown as ChildFn;
  const escapedChild: ChildFn = function (this: unknown, bindings, options) {
    return child.call(this, escapeForLog(bindings) as pino.Bindings, options);
  };
  logger.child = escapedChild as unknown as typeof logger.child;
  return logger;
}

/** Nesting deeper than this is not followed (log fields are flat or one level deep); it is shown as a marker. */
const MAX_DEPTH = 6;

/**
 * A copy of a log argument with every string, and every key, escaped.
 * An error becomes a copy with its texts escaped; octets are shown as
 * escapeBytes shows them.
 */
export function escapeForLog(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return escapeText(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return '[nested too deep]';
  if (value instanceof Uint8Array) return escapeBytes(value);
  if (Array.isArray(value)) return value.map((item) => escapeForLog(item, depth + 1));
  if (value instanceof Error) {
    // Same prototype, so pino's error serializer still names the class; the caller's error is not touched.
    const copy = Object.create(Object.getPrototypeOf(value) as object) as Error & Record<string, unknown>;
    for (const [key, item] of Object.entries(value)) copy[escapeText(key)] = escapeForLog(item, depth + 1);
    copy.message = escapeText(value.message);
    if (value.stack !== undefined) copy.stack = escapeText(value.stack);
    return copy;
  }
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) out[escapeText(key)] = escapeForLog(item, depth + 1);
  return out;
}

/** Longest a log line waits in the buffer before it is written. */
export const LOG_FLUSH_DELAY_MS = 50;
/** A buffer this full is written at once (about six submission lines). */
const LOG_BATCH_OCTETS = 4096;

/**
 * Standard output, written in batches: one write(2) per LOG_BATCH_OCTETS
 * or per LOG_FLUSH_DELAY_MS, whichever comes first, instead of one per
 * line. A line per submission written on its own was about 10 % of the
 * daemon's CPU per submission (docs/performance.md, "Hot spots fixed").
 * The timer runs only while something is buffered, so an idle daemon
 * does not wake up for it. What is buffered is written synchronously when
 * the process exits (pino registers the exit hook for its destination), so
 * only a SIGKILL can lose the last few lines, as it could lose a write in
 * flight before.
 */
function batchedStdout(): DestinationStream & { flush(cb?: (err?: Error) => void): void } {
  const sonic = pino.destination({ fd: 1, sync: false, minLength: LOG_BATCH_OCTETS });
  // Standard output gone (EPIPE: whoever read it went away) must not stop the mail: the lines
  // are lost, the submissions go on. Said once on standard error, which may be gone too.
  sonic.on('error', (err: Error) => reportLostLog(err));
  // Octets handed over and not yet written; SonicBoom reports each write.
  let buffered = 0;
  // Doubles (up to 1 s) while nothing gets written, e.g. with standard output gone.
  let delay = LOG_FLUSH_DELAY_MS;
  sonic.on('write', (written: number) => {
    buffered -= written;
    delay = LOG_FLUSH_DELAY_MS;
  });
  let timer: NodeJS.Timeout | null = null;
  const arm = () => {
    if (timer !== null) return;
    timer = setTimeout(flushLater, delay);
    timer.unref();
  };
  function flushLater(): void {
    timer = null;
    // `destroyed` is SonicBoom's, missing from its type definitions.
    if (buffered <= 0 || (sonic as unknown as { destroyed: boolean }).destroyed) return;
    // No callback: SonicBoom would fsync after it. While a write is under
    // way this does nothing, so the timer goes on until all is written.
    sonic.flush();
    delay = Math.min(delay * 2, 1000);
    arm();
  }
  return {
    write(line: string): boolean {
      buffered += Buffer.byteLength(line);
      arm();
      return sonic.write(line);
    },
    flush(cb?: (err?: Error) => void): void {
      sonic.flush(cb);
    },
  };
}

let logLossReported = false;
function reportLostLog(err: Error): void {
  if (logLossReported) return;
  logLossReported = true;
  process.stderr.on('error', () => undefined);
  try {
    process.stderr.write(`mailsubmitd: cannot write the log to standard output (${(err as NodeJS.ErrnoException).code ?? err.message}); log lines are lost from here on\n`);
  } catch {
    // Nowhere left to say it.
  }
}

/** A dependency-free readable form: time, level, msg, then key=value pairs. */
function prettyStream(): NodeJS.WritableStream {
  process.stdout.on('error', reportLostLog);
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
