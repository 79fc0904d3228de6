/**
 * A fault-injecting SMTP proxy on loopback, between the daemon under test and
 * the private Postfix's re-injection listener. It relays the conversation
 * and, as its FaultSchedule deals them, answers in Postfix's place (421, 451,
 * 452, 550, 554 at EHLO, MAIL, RCPT or the end of data), drops the
 * connection (at MAIL, at DATA, half-way through the message, at the final
 * dot, or after Postfix accepted the dot), or stalls until the daemon's
 * timeout gives up on it.
 *
 * It speaks just enough SMTP for that: one reply slot per client command,
 * in command order (so PIPELINING stays correct when some replies are its
 * own and some are Postfix's), and the data phase tracked to its final dot.
 * Every transaction is recorded with the sender's ledger id (the driver puts
 * it in MAIL FROM) and the fault it got, so the ledger can say which fault
 * caused what.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import {
  AFTER_COMMIT_FAULTS,
  injectedCode,
  injectedReply,
  type ConnectionFault,
  type FaultKind,
  type FaultSchedule,
  type TransactionFault,
} from './fault-schedule.ts';

export interface FaultRecord {
  readonly fault: FaultKind;
  /** The sender's ledger id; null for connection faults (no MAIL yet). */
  readonly ledgerId: string | null;
  readonly connection: number;
  /** A drop sent RST rather than FIN. */
  readonly reset: boolean;
  /** Postfix answered 2xx to the relayed dot (after-commit faults only). */
  committed: boolean;
}

export interface TransactionRecord {
  readonly ledgerId: string | null;
  /** Which helper run of the message (0 first, then the caller's retries). */
  readonly run: number | null;
  readonly fault: TransactionFault | null;
  readonly connection: number;
  readonly at: number;
}

interface Slot {
  text: string | null;
  ready: boolean;
  /** What to do right after the reply is written. */
  after?: 'close' | 'data';
  /** Never answered, whatever Postfix says. */
  stalled?: boolean;
  /** Postfix's reply is passed on this much later. */
  delayMs?: number;
}

/** How long a stall lasts at most, whatever the daemon does (longer than every timeout in use). */
const STALL_CAP_MS = 60_000;
/** How long a slow reply is held back: well under the daemon's 2 s command timeout. */
const SLOW_REPLY_MS = 1_000;
/** The sender names the message and the helper run: ledger-ID.RUN@example.org. */
const LEDGER_SENDER = /^MAIL FROM:<ledger-([A-Za-z0-9-]+)\.(\d+)@/i;

export class FaultProxy {
  readonly faults: FaultRecord[] = [];
  readonly transactions: TransactionRecord[] = [];
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private connections = 0;

  constructor(
    private readonly upstreamPort: number,
    private readonly schedule: FaultSchedule,
  ) {}

  async listen(): Promise<number> {
    const server = createServer((client) => this.serve(client));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('fault proxy has no TCP address');
    return address.port;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private serve(client: Socket): void {
    const id = ++this.connections;
    const upstream = connect(this.upstreamPort, '127.0.0.1');
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.setNoDelay(true);
      socket.on('error', () => socket.destroy());
      socket.once('close', () => this.sockets.delete(socket));
    }
    new ProxiedConnection(id, client, upstream, this.schedule, this).start();
  }

  /** Called by a connection when it decides on a fault. */
  record(fault: FaultKind, ledgerId: string | null, connection: number, reset = false): FaultRecord {
    const entry: FaultRecord = { fault, ledgerId, connection, reset, committed: false };
    this.faults.push(entry);
    return entry;
  }
}

class ProxiedConnection {
  private readonly slots: Slot[] = [];
  private readonly awaitingUpstream: Array<(reply: string) => void> = [];
  private clientBuffer = Buffer.alloc(0);
  private upstreamBuffer = '';
  private upstreamReply: string[] = [];
  private mode: 'command' | 'data' | 'dead' = 'command';
  private readonly connectionFault: ConnectionFault | null;
  private transaction: { ledgerId: string | null; fault: TransactionFault | null; refused: boolean } | null = null;
  /** Data octets not yet known to be free of the final dot (it may straddle chunks). */
  private dataTail = Buffer.alloc(0);
  private dataSeen = false;
  /**
   * The data phase starts with a CRLF of our own in the tail, so an empty
   * message (the dot right after 354) is found like any other end; it is
   * never passed on.
   */
  private virtualCrlf = false;
  private stallTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly id: number,
    private readonly client: Socket,
    private readonly upstream: Socket,
    private readonly schedule: FaultSchedule,
    private readonly proxy: FaultProxy,
  ) {
    this.connectionFault = schedule.forConnection();
    if (this.connectionFault !== null) proxy.record(this.connectionFault, null, id);
  }

  start(): void {
    const greeting = this.expectUpstream();
    if (this.connectionFault === 'stall-greeting') this.stall(greeting);
    this.client.on('data', (chunk: Buffer) => this.onClient(chunk));
    this.upstream.on('data', (chunk: Buffer) => this.onUpstream(chunk));
    this.client.once('close', () => this.shutDown());
    this.upstream.once('close', () => {
      // Let the last replies (221 to QUIT) reach the client first.
      this.mode = 'dead';
      this.client.end();
    });
  }

  private onClient(chunk: Buffer): void {
    this.clientBuffer = Buffer.concat([this.clientBuffer, chunk]);
    while (this.mode !== 'dead' && this.clientBuffer.length > 0) {
      if (this.mode === 'data') {
        if (!this.onData()) return;
        continue;
      }
      const end = this.clientBuffer.indexOf('\r\n');
      if (end === -1) return;
      const line = this.clientBuffer.subarray(0, end).toString('latin1');
      this.clientBuffer = this.clientBuffer.subarray(end + 2);
      this.onCommand(line);
    }
  }

  private onCommand(line: string): void {
    const verb = line.slice(0, 4).toUpperCase();
    const tx = this.transaction;
    if (verb === 'EHLO' && this.connectionFault !== null && this.connectionFault.startsWith('ehlo-')) {
      const code = injectedCode(this.connectionFault);
      if (code !== null) return this.local(injectedReply(code, 'ehlo'), code === 421 ? 'close' : undefined);
    }
    if (verb === 'EHLO' && this.connectionFault === 'stall-ehlo') return this.stall(this.localSlot());
    if (verb === 'MAIL') {
      const sender = LEDGER_SENDER.exec(line);
      const ledgerId = sender?.[1] ?? null;
      const run = sender?.[2] !== undefined ? Number(sender[2]) : null;
      const fault = this.schedule.forTransaction();
      this.transaction = { ledgerId, fault, refused: false };
      this.proxy.transactions.push({ ledgerId, run, fault, connection: this.id, at: Date.now() });
      if (fault === null) {
        this.forward(line);
        return;
      }
      const reset = fault.startsWith('drop-') && this.schedule.resetOnDrop();
      this.proxy.record(fault, ledgerId, this.id, reset);
      if (fault === 'drop-at-mail') return this.drop(reset);
      if (fault === 'stall-mail') return this.stall(this.localSlot());
      const code = fault.startsWith('mail-') ? injectedCode(fault) : null;
      if (code !== null) {
        this.transaction.refused = true;
        return this.local(injectedReply(code, 'mail'), code === 421 ? 'close' : undefined);
      }
      this.forward(line);
      return;
    }
    if (verb === 'RCPT' && tx !== null) {
      if (tx.refused) return this.local('503 5.5.1 Error: need MAIL command');
      if (tx.fault === 'stall-rcpt') return this.stall(this.localSlot());
      if (tx.fault === 'slow-rcpt') {
        this.forward(line).delayMs = SLOW_REPLY_MS;
        return;
      }
      const code = tx.fault?.startsWith('rcpt-') ? injectedCode(tx.fault) : null;
      if (code !== null) return this.local(injectedReply(code, 'rcpt'), code === 421 ? 'close' : undefined);
      this.forward(line);
      return;
    }
    if (verb === 'DATA' && tx !== null) {
      if (tx.fault === 'drop-before-data') return this.drop(this.lastReset());
      if (tx.fault === 'stall-data-init') return this.stall(this.localSlot());
      // A refusal at the end of data is given without Postfix ever seeing the message.
      if (tx.fault?.startsWith('data-end-')) return this.local('354 End data with <CR><LF>.<CR><LF>', 'data');
      const slot = this.forward(line);
      slot.after = 'data';
      return;
    }
    if (verb === 'RSET' || verb === 'QUIT') this.transaction = null;
    this.forward(line);
  }

  /**
   * Consumes message octets; returns false when it needs more. Octets go on
   * to Postfix as they come, except a tail that may be the start of the
   * final dot, and except when the fault answers the end of data itself.
   */
  private onData(): boolean {
    const tx = this.transaction;
    const fault = tx?.fault ?? null;
    if (fault === 'stall-data') {
      // Stop reading: the daemon's writes back up until its timeout.
      this.client.pause();
      this.stall(this.localSlot());
      return false;
    }
    const data = Buffer.concat([this.dataTail, this.clientBuffer]);
    this.clientBuffer = Buffer.alloc(0);
    const swallow = fault?.startsWith('data-end-') === true;
    if (fault === 'drop-during-data' && !this.dataSeen) {
      // Half of what arrived reaches Postfix, then both sides go away.
      this.passOn(data, Math.floor(data.length / 2));
      this.drop(this.lastReset());
      return false;
    }
    this.dataSeen = true;
    const dot = data.indexOf('\r\n.\r\n');
    if (dot === -1) {
      // Keep what may be the start of the dot line (and our own CRLF whole).
      let cut = data.length - Math.min(4, data.length);
      if (this.virtualCrlf && cut < 2) cut = 0;
      if (!swallow) this.passOn(data, cut);
      this.dataTail = data.subarray(cut);
      return false;
    }
    if (!swallow) this.passOn(data, dot + 2);
    this.clientBuffer = data.subarray(dot + 5);
    this.dataTail = Buffer.alloc(0);
    this.virtualCrlf = false;
    this.dataSeen = false;
    this.mode = 'command';
    this.onFinalDot(fault);
    return true;
  }

  /** Sends message octets up to `end` to Postfix, leaving out the data phase's own CRLF. */
  private passOn(data: Buffer, end: number): void {
    const from = this.virtualCrlf ? 2 : 0;
    if (end > from) this.upstream.write(data.subarray(from, end));
    if (end >= from) this.virtualCrlf = false;
  }

  private onFinalDot(fault: TransactionFault | null): void {
    this.transaction = null;
    const code = fault?.startsWith('data-end-') ? injectedCode(fault) : null;
    if (code !== null) return this.local(injectedReply(code, 'data-end'), code === 421 ? 'close' : undefined);
    if (fault === 'drop-after-dot') return this.drop(this.lastReset());
    if (fault === 'stall-data-end') return this.stall(this.localSlot());
    if (fault !== null && AFTER_COMMIT_FAULTS.has(fault)) {
      const mine = lastOf(this.proxy.faults, (f) => f.connection === this.id && f.fault === fault);
      const slot: Slot = { text: null, ready: false };
      this.slots.push(slot);
      this.upstream.write('.\r\n');
      this.awaitingUpstream.push((reply) => {
        if (mine !== undefined && /^2/.test(reply)) mine.committed = true;
        if (fault === 'drop-after-relay') {
          // Postfix has the message; the daemon never hears so.
          this.upstream.end('QUIT\r\n');
          this.drop(mine?.reset ?? false);
        }
        // stall-after-relay: the slot stays unanswered.
      });
      return;
    }
    this.forward('.');
  }

  private lastReset(): boolean {
    const mine = lastOf(this.proxy.faults, (f) => f.connection === this.id);
    return mine?.reset ?? false;
  }

  /** Relays a command; its reply slot is filled by Postfix's reply. */
  private forward(line: string): Slot {
    const slot = this.expectUpstream();
    this.upstream.write(`${line}\r\n`);
    return slot;
  }

  private expectUpstream(): Slot {
    const slot: Slot = { text: null, ready: false };
    this.slots.push(slot);
    this.awaitingUpstream.push((reply) => {
      if (slot.stalled === true) return;
      const pass = () => {
        slot.text = reply;
        slot.ready = true;
        // Only a 354 opens the data phase.
        if (slot.after === 'data' && !reply.startsWith('354')) delete slot.after;
        this.flush();
      };
      if (slot.delayMs === undefined) pass();
      else setTimeout(pass, slot.delayMs);
    });
    return slot;
  }

  private localSlot(): Slot {
    const slot: Slot = { text: null, ready: false };
    this.slots.push(slot);
    return slot;
  }

  private local(text: string, after?: Slot['after']): void {
    const slot = this.localSlot();
    slot.text = `${text}\r\n`;
    slot.ready = true;
    if (after !== undefined) slot.after = after;
    this.flush();
  }

  /** Writes every reply that is ready, in command order. */
  private flush(): void {
    while (this.slots.length > 0 && (this.slots[0] as Slot).ready) {
      const slot = this.slots.shift() as Slot;
      if (slot.text !== null) this.client.write(slot.text);
      if (slot.after === 'close') {
        this.mode = 'dead';
        this.client.end();
        this.upstream.end('QUIT\r\n');
        return;
      }
      if (slot.after === 'data') {
        this.mode = 'data';
        this.dataTail = Buffer.from('\r\n');
        this.virtualCrlf = true;
        // Message octets may already be waiting (they never are before 354, but be exact).
        if (this.clientBuffer.length > 0) setImmediate(() => this.onClient(Buffer.alloc(0)));
      }
    }
  }

  /** A slot that is never answered; the daemon's timeout ends the connection. */
  private stall(slot: Slot): void {
    slot.ready = false;
    slot.text = null;
    // A reply Postfix gives for it later must not unblock it.
    slot.stalled = true;
    this.stallTimer ??= setTimeout(() => this.shutDown(), STALL_CAP_MS);
  }

  private onUpstream(chunk: Buffer): void {
    this.upstreamBuffer += chunk.toString('latin1');
    for (;;) {
      const end = this.upstreamBuffer.indexOf('\r\n');
      if (end === -1) return;
      const line = this.upstreamBuffer.slice(0, end);
      this.upstreamBuffer = this.upstreamBuffer.slice(end + 2);
      this.upstreamReply.push(line);
      if (line.length > 3 && line[3] === '-') continue;
      const reply = `${this.upstreamReply.join('\r\n')}\r\n`;
      this.upstreamReply = [];
      const handler = this.awaitingUpstream.shift();
      if (handler !== undefined) handler(reply);
    }
  }

  private drop(reset: boolean): void {
    this.mode = 'dead';
    if (reset) this.client.resetAndDestroy();
    else this.client.destroy();
    // Without the final dot Postfix discards what it got.
    this.upstream.destroy();
  }

  private shutDown(): void {
    this.mode = 'dead';
    if (this.stallTimer !== null) clearTimeout(this.stallTimer);
    this.client.destroy();
    this.upstream.destroy();
  }
}

/** Array.prototype.findLast, which the ES2022 library this project targets lacks. */
function lastOf<T>(items: readonly T[], match: (item: T) => boolean): T | undefined {
  for (let i = items.length - 1; i >= 0; i--) if (match(items[i] as T)) return items[i];
  return undefined;
}
