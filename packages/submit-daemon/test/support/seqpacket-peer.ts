/**
 * The helper's end of the daemon's socket, for unit tests of what the
 * daemon reads from it and writes to it: a listener on a temp path and a
 * client held by one Python process (seqpacket-peer.py; Node has no
 * SEQPACKET client), driven one command at a time. connect() gives the
 * daemon's accepted SeqpacketConnection together with the client's end.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { listenSeqpacket, type SeqpacketConnection, type SeqpacketListener } from '@mailsubmit/socket-addon';

/** What the daemon's listener takes per packet (socket-addon ListenOptions). */
export interface ListenerLimits {
  readonly maxFrameOctets?: number;
  readonly maxFds?: number;
}

export type PeerRecv = { readonly data: Buffer } | { readonly eof: true } | { readonly timeout: true } | { readonly error: string };

/** The client's end of one connection. */
export interface HelperEnd {
  /** One packet, with fds ("pipe:TEXT", "null") passed beside it. Resolves with the octets sent or the errno name. */
  send(data: Uint8Array, fds?: readonly string[]): Promise<{ sent?: number; error?: string }>;
  /** The next packet the daemon sent, end of file, or nothing within `timeoutS`. */
  recv(timeoutS?: number): Promise<PeerRecv>;
  close(): Promise<void>;
}

export class SeqpacketPeer {
  private readonly dir = mkdtempSync(join(tmpdir(), 'seqpacket-peer-'));
  /** One listener per set of options: a peer process is slow to start, and one serves them all. */
  private readonly listeners = new Map<string, SeqpacketListener>();
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: Interface;
  private readonly answers: ((line: string) => void)[] = [];
  private queue: Promise<unknown> = Promise.resolve();

  constructor() {
    this.child = spawn('python3', [join(import.meta.dirname, 'seqpacket-peer.py')], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr.on('data', (chunk: Buffer) => process.stderr.write(chunk));
    this.lines = createInterface({ input: this.child.stdout });
    this.lines.on('line', (line) => this.answers.shift()?.(line));
  }

  /** A new connection: the daemon's side as accepted (with the listener's limits), and the helper's side. */
  async connect(limits: ListenerLimits = {}): Promise<{ daemon: SeqpacketConnection; helper: HelperEnd }> {
    const listener = this.listener(limits);
    const accepted = new Promise<SeqpacketConnection>((resolve) => listener.once('connection', resolve));
    const { id } = (await this.ask({ op: 'connect', path: listener.path })) as { id: number };
    const daemon = await accepted;
    const helper: HelperEnd = {
      send: async (data, fds = []) => (await this.ask({ op: 'send', id, data: Buffer.from(data).toString('hex'), fds })) as { sent?: number; error?: string },
      recv: async (timeoutS = 5) => {
        const answer = (await this.ask({ op: 'recv', id, timeout: timeoutS })) as { data?: string; eof?: true; timeout?: true; error?: string };
        if (answer.data !== undefined) return { data: Buffer.from(answer.data, 'hex') };
        if (answer.eof) return { eof: true };
        if (answer.timeout) return { timeout: true };
        return { error: answer.error ?? 'unknown' };
      },
      close: async () => {
        await this.ask({ op: 'close', id });
      },
    };
    return { daemon, helper };
  }

  async stop(): Promise<void> {
    for (const listener of this.listeners.values()) listener.close();
    this.child.stdin.end();
    if (this.child.exitCode === null) await new Promise((resolve) => this.child.once('exit', resolve));
    rmSync(this.dir, { recursive: true, force: true });
  }

  private listener(limits: ListenerLimits): SeqpacketListener {
    const key = JSON.stringify([limits.maxFrameOctets, limits.maxFds]);
    let listener = this.listeners.get(key);
    if (listener === undefined) {
      listener = listenSeqpacket({ path: join(this.dir, `sock-${this.listeners.size}`), mode: 0o600, ...limits });
      this.listeners.set(key, listener);
    }
    return listener;
  }

  /** Commands go one at a time: the peer answers in order. */
  private ask(command: object): Promise<unknown> {
    const answer = this.queue.then(
      () =>
        new Promise<unknown>((resolve) => {
          this.answers.push((line) => resolve(JSON.parse(line)));
          this.child.stdin.write(`${JSON.stringify(command)}\n`);
        }),
    );
    this.queue = answer.catch(() => undefined);
    return answer;
  }
}
