/**
 * One sendmail(1) process, as the sendmail transport drives it: write the
 * message to its stdin, then either commit (close stdin, wait for the exit
 * status) or abort (kill it, and only then close stdin).
 *
 * Why the order matters: Postfix's sendmail takes end of input as the end
 * of the message and queues what it read. Closing stdin of a run whose
 * message is incomplete would deliver half a message. A killed sendmail
 * never writes the end record, and postdrop discards a queue file without
 * one: so abort() sends SIGKILL, waits for the exit, and closes stdin after.
 *
 * The process gets a fixed environment (PATH only: nothing of the daemon's
 * environment, such as MAIL_CONFIG or MAIL_DEBUG, reaches Postfix), `/` as
 * working directory, no stdout, and a pipe for stderr, of which the first
 * 4 KiB are kept for the error text (the rest is read and thrown away, so
 * a chatty child never blocks on a full pipe).
 *
 * Deadline: the timeout runs only while we wait for the child (a write
 * that waits for the pipe to drain, or the exit after stdin is closed),
 * never while we wait for the caller's input, which has its own deadlines.
 * When it expires the child gets SIGTERM, then SIGKILL 2 s later; stdin
 * stays open until it has exited, for the reason above.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export const SENDMAIL_ENVIRONMENT: Readonly<Record<string, string>> = Object.freeze({ PATH: '/usr/sbin:/usr/bin:/sbin:/bin' });
export const STDERR_CAPTURE_OCTETS = 4096;
/** Between SIGTERM and SIGKILL on a timeout. */
export const KILL_GRACE_MS = 2000;
/**
 * How long to wait for stderr to close after the exit: a grandchild (postdrop)
 * may hold the pipe open a moment longer; its last words are wanted, a
 * grandchild that never lets go is not waited for.
 */
const STDERR_DRAIN_MS = 1000;

export interface ChildExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** We killed it because it did not answer within the timeout. */
  readonly timedOut: boolean;
  /** It exited while its stdin was still open: it did not read the whole message. */
  readonly early: boolean;
  /** The program could not be started (spawn failed); code and signal are null. */
  readonly spawnError?: NodeJS.ErrnoException;
  /** The first STDERR_CAPTURE_OCTETS of its stderr. */
  readonly stderr: string;
}

/** A write found the child gone (exited, killed, or never started). */
export class ChildGoneError extends Error {
  constructor(readonly child: SendmailChild) {
    super('sendmail is no longer reading its input');
    this.name = 'ChildGoneError';
  }
}

export class SendmailChild {
  readonly #process: ChildProcess;
  readonly #timeoutMs: number;
  readonly #exited: Promise<ChildExit>;
  readonly #goneWaiters = new Set<() => void>();
  /** Exited, failed to start, or its stdin broke: writes are refused. */
  #gone = false;
  #hasExited = false;
  #stdinClosed = false;
  #timedOut = false;
  #timer: NodeJS.Timeout | undefined;
  #killTimer: NodeJS.Timeout | undefined;

  /**
   * Starts `program args...`. A program that cannot be run usually shows as
   * the exit's spawnError; spawn() itself throws only for arguments it
   * refuses outright.
   */
  constructor(program: string, args: readonly string[], timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
    this.#process = spawn(program, args, {
      stdio: ['pipe', 'ignore', 'pipe'],
      env: SENDMAIL_ENVIRONMENT,
      cwd: '/',
    });
    // EPIPE and the like when the child goes away mid-write: the exit says what happened.
    this.#process.stdin?.on('error', () => this.#markGone());
    this.#process.stdin?.on('close', () => this.#markGone());
    this.#exited = this.#watch();
  }

  /** The exit, once it has happened. */
  get exited(): Promise<ChildExit> {
    return this.#exited;
  }

  /**
   * Writes one chunk; resolves when the child can take more, rejects with
   * ChildGoneError if it is gone or goes while we wait.
   */
  write(chunk: Uint8Array): Promise<void> {
    const stdin = this.#process.stdin;
    if (this.#gone || this.#stdinClosed || stdin === null || stdin.destroyed) return Promise.reject(new ChildGoneError(this));
    if (stdin.write(chunk)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const settle = (gone: boolean): void => {
        stdin.off('drain', onDrain);
        this.#goneWaiters.delete(onGone);
        this.#disarm();
        if (gone) reject(new ChildGoneError(this));
        else resolve();
      };
      const onDrain = (): void => settle(false);
      const onGone = (): void => settle(true);
      stdin.on('drain', onDrain);
      this.#goneWaiters.add(onGone);
      this.#arm();
    });
  }

  /** Closes stdin (the end of the message: sendmail queues it now) and waits for the exit. */
  commit(): Promise<ChildExit> {
    if (!this.#gone && !this.#stdinClosed) {
      this.#stdinClosed = true;
      this.#arm();
      this.#process.stdin?.end();
    }
    return this.#exited;
  }

  /** Kills the child, waits for it to exit, then closes stdin: nothing it read is queued. */
  async abort(): Promise<ChildExit> {
    if (!this.#hasExited) this.#process.kill('SIGKILL');
    const exit = await this.#exited;
    this.#stdinClosed = true;
    this.#process.stdin?.destroy();
    return exit;
  }

  #watch(): Promise<ChildExit> {
    const child = this.#process;
    const parts: Buffer[] = [];
    let captured = 0;
    child.stderr?.on('data', (data: Buffer) => {
      if (captured >= STDERR_CAPTURE_OCTETS) return;
      const part = data.subarray(0, STDERR_CAPTURE_OCTETS - captured);
      captured += part.length;
      parts.push(part);
    });
    child.stderr?.on('error', () => {});

    return new Promise<ChildExit>((resolve) => {
      let done = false;
      const finish = (exit: Omit<ChildExit, 'stderr' | 'timedOut'>): void => {
        if (done) return;
        done = true;
        this.#hasExited = true;
        this.#disarm();
        clearTimeout(this.#killTimer);
        this.#markGone();
        const stream = child.stderr;
        const settle = (): void => resolve({ ...exit, timedOut: this.#timedOut, stderr: Buffer.concat(parts).toString('utf8') });
        if (stream === null || stream.readableEnded || stream.destroyed) {
          settle();
          return;
        }
        const complete = (): void => {
          clearTimeout(drainTimer);
          settle();
        };
        const drainTimer = setTimeout(() => {
          stream.destroy();
          complete();
        }, STDERR_DRAIN_MS);
        stream.once('close', complete);
      };
      child.once('exit', (code, signal) => {
        finish({ code, signal, early: !this.#stdinClosed });
      });
      child.once('error', (error: NodeJS.ErrnoException) => {
        // After a successful start, 'error' means a failed kill(); the exit still comes.
        if (child.pid !== undefined) return;
        child.stderr?.destroy();
        finish({ code: null, signal: null, early: !this.#stdinClosed, spawnError: error });
      });
    });
  }

  #markGone(): void {
    if (this.#gone) return;
    this.#gone = true;
    for (const wake of [...this.#goneWaiters]) wake();
  }

  #arm(): void {
    if (this.#timer !== undefined || this.#gone) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timedOut = true;
      this.#process.kill('SIGTERM');
      this.#killTimer = setTimeout(() => this.#process.kill('SIGKILL'), KILL_GRACE_MS);
      this.#killTimer.unref();
    }, this.#timeoutMs);
  }

  #disarm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
