/**
 * A small pool of idle SMTP/LMTP connections, so a busy daemon does not pay
 * for connect, greeting and EHLO on every submission (Postfix's smtp client
 * caches connections for the same reason).
 *
 * Rules:
 * - A connection goes back to the pool only after a clean transaction, and
 *   owes an RSET: its next transaction sends RSET first, pipelined with its
 *   envelope where the server allows, and goes no further unless RSET gets a
 *   2xx. RSET both proves the server is still there and clears any
 *   transaction state (XFORWARD attributes are reset by Postfix at the end
 *   of each transaction in any case). Sent before reuse rather than after
 *   each transaction (as Postfix's smtp client sends its RSET probe), it
 *   costs no round trip of its own.
 * - A connection that saw any error, any negative reply, or that the server
 *   closed, is never reused: it gets QUIT (if it still can) and is closed.
 * - At most `maxIdle` idle connections; each is closed after `idleTimeoutMs`
 *   unused, well before Postfix's smtpd_timeout (300 s) would drop it.
 * - Idle connections are taken most-recently-used first, so the rest age out.
 *
 * The pool does not cap connections in use; the daemon caps concurrent
 * submissions before it asks for one.
 */
import { SmtpConnection, type SmtpConnectionOptions } from './smtp-connection.ts';

export interface PoolOptions {
  readonly maxIdle?: number;
  readonly idleTimeoutMs?: number;
}

export const DEFAULT_POOL_OPTIONS: Required<PoolOptions> = Object.freeze({ maxIdle: 4, idleTimeoutMs: 30_000 });

interface Idle {
  readonly conn: SmtpConnection;
  readonly timer: NodeJS.Timeout;
}

export type ConnectionFactory = () => Promise<SmtpConnection>;

export class SmtpConnectionPool {
  private readonly open: ConnectionFactory;
  private readonly maxIdle: number;
  private readonly idleTimeoutMs: number;
  private readonly idle: Idle[] = [];
  private readonly watched = new WeakSet<SmtpConnection>();
  private closing = false;

  /** `target` is either connection options or a factory (tests, or a wrapper that logs). */
  constructor(target: SmtpConnectionOptions | ConnectionFactory, options: PoolOptions = {}) {
    this.open = typeof target === 'function' ? target : () => SmtpConnection.open(target);
    this.maxIdle = options.maxIdle ?? DEFAULT_POOL_OPTIONS.maxIdle;
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_POOL_OPTIONS.idleTimeoutMs;
  }

  get idleCount(): number {
    return this.idle.length;
  }

  /** An idle connection that is still usable, or a new one. Rejects with SmtpError. */
  async acquire(): Promise<SmtpConnection> {
    for (let entry = this.idle.pop(); entry !== undefined; entry = this.idle.pop()) {
      clearTimeout(entry.timer);
      if (entry.conn.usable) return entry.conn;
      entry.conn.destroy();
    }
    return this.open();
  }

  /**
   * Gives a connection back after use. Kept only when it is clean, owing
   * the RSET its next use sends first; otherwise it is closed. Never throws.
   */
  async release(conn: SmtpConnection): Promise<void> {
    if (this.closing || conn.sawError || !conn.usable || this.idle.length >= this.maxIdle) {
      await conn.quit();
      return;
    }
    conn.resetOwed = true;
    const timer = setTimeout(() => {
      this.remove(conn);
      void conn.quit();
    }, this.idleTimeoutMs);
    // An idle connection alone must not keep the daemon alive.
    timer.unref();
    this.idle.push({ conn, timer });
    if (!this.watched.has(conn)) {
      // The server may drop an idle connection (timeout, restart).
      this.watched.add(conn);
      conn.onClose(() => this.remove(conn));
    }
  }

  /** QUITs every idle connection; later releases close their connections. */
  async close(): Promise<void> {
    this.closing = true;
    const entries = this.idle.splice(0);
    await Promise.all(
      entries.map(({ conn, timer }) => {
        clearTimeout(timer);
        return conn.quit();
      }),
    );
  }

  private remove(conn: SmtpConnection): void {
    const index = this.idle.findIndex((entry) => entry.conn === conn);
    if (index < 0) return;
    const [entry] = this.idle.splice(index, 1);
    if (entry !== undefined) clearTimeout(entry.timer);
  }
}
