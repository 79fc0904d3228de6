/**
 * The fds a caller passes, made in this process: the read end of a pipe
 * (a FIFO, as blocking as a shell's stdin) or a regular file, and the
 * process's open fd count, to show that a submission closes what it took.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getFileStatusFlags, setFileStatusFlags } from '@mailsubmit/socket-addon';

export interface CallerPipe {
  /** The read end: the fd the caller passes. */
  readonly reader: number;
  /** Writes all of `data`, waiting while the pipe is full. */
  write(data: string | Uint8Array): Promise<void>;
  /** Closes the write end once what was written has gone: end of input. */
  end(): Promise<void>;
  /** Closes the write end at once, whatever is still unwritten (a caller killed mid-write). */
  destroy(): void;
}

export class CallerFds {
  readonly dir = mkdtempSync(join(tmpdir(), 'caller-fds-'));
  private count = 0;
  private readonly writers = new Set<Socket>();

  /** A pipe whose write end this process keeps; `content`, when given, is written and the pipe closed. */
  async pipe(content?: string | Uint8Array): Promise<CallerPipe> {
    const path = join(this.dir, `fifo-${++this.count}`);
    execFileSync('mkfifo', [path]);
    const reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    setFileStatusFlags(reader, getFileStatusFlags(reader) & ~constants.O_NONBLOCK);
    // An event-driven writer: the test's own loop must stay free while the pipe is full.
    const writer = new Socket({ fd: openSync(path, constants.O_WRONLY | constants.O_NONBLOCK), readable: false });
    writer.on('error', () => undefined);
    this.writers.add(writer);
    const pipe: CallerPipe = {
      reader,
      write: (data) => new Promise<void>((resolve, reject) => writer.write(data, (err) => (err ? reject(err) : resolve()))),
      end: () =>
        new Promise<void>((resolve) => {
          this.writers.delete(writer);
          writer.end(() => {
            writer.destroy();
            resolve();
          });
        }),
      destroy: () => {
        this.writers.delete(writer);
        writer.destroy();
      },
    };
    if (content !== undefined) {
      await pipe.write(content);
      await pipe.end();
    }
    return pipe;
  }

  /** A regular file holding `content`, open for reading at its start. */
  file(content: string | Uint8Array): number {
    const path = join(this.dir, `file-${++this.count}`);
    writeFileSync(path, content);
    return openSync(path, 'r');
  }

  /** Closes every write end still open and removes the directory. */
  cleanup(): void {
    for (const writer of this.writers) writer.destroy();
    this.writers.clear();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** close(2), for a test's own fds that may already be closed. */
export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}
