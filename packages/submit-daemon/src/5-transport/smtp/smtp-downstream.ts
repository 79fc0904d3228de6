/**
 * SMTP or LMTP to the configured target, through a small pool of idle
 * connections (reset with RSET before each reuse).
 *
 * A pooled connection can be closed by the server just as a transaction
 * starts (Postfix drops idle clients after smtpd_timeout). Before DATA no
 * message octet has been sent and the body has not been read, so such a
 * failure is retried once on a fresh connection instead of costing the
 * caller a temporary failure.
 */
import { describeReply, type Envelope } from '@mailsubmit/shared';
import type { DaemonConfig, DownstreamConfig } from '../../config/daemon-config.ts';
import { writtenTarget } from '../../config/config-value-types.ts';
import { connectionSettingsOf, openDownstreamConnection } from './downstream-connection.ts';
import { isSmtpError, sendMessage, SmtpConnectionPool, verifyRecipients, type SmtpConnection, type SmtpError } from './index.ts';
import type { Delivery, DeliveryRequest, Downstream, Verification } from '../downstream.ts';
import { watchOneShotBody } from '../one-shot-body.ts';

const RETRYABLE_CODES = new Set(['ERR_SMTP_CLOSED', 'ERR_SMTP_SOCKET', 'ERR_SMTP_NOT_USABLE']);
const RETRYABLE_STAGES = new Set([undefined, 'rset', 'xforward', 'mail', 'rcpt']);

export class SmtpDownstream implements Downstream {
  readonly description: string;
  private readonly pool: SmtpConnectionPool;
  private readonly sendXforward: boolean;

  /** `secret`: the AUTH password read from auth_secret_file (config/auth-secret.ts); null without AUTH. */
  constructor(downstream: DownstreamConfig, timeouts: DaemonConfig['timeouts'], secret: string | null = null) {
    this.sendXforward = downstream.xforward;
    this.description = `${downstream.transport} ${writtenTarget(downstream.target)}`;
    const settings = connectionSettingsOf(downstream, timeouts, secret);
    this.pool = new SmtpConnectionPool(() => openDownstreamConnection(downstream.target, settings), { maxIdle: downstream.poolSize });
  }

  async deliver(request: DeliveryRequest): Promise<Delivery> {
    const { body, taken } = watchOneShotBody(request.body);
    const once = { ...request, body };
    try {
      return await this.attempt(once);
    } catch (err) {
      if (taken() || !isRetryable(err)) throw err;
      return this.attempt(once);
    }
  }

  /**
   * MAIL with the caller's sender, every RCPT, RSET: the MTA's verdicts, no
   * message. Nothing was sent that a retry could repeat, so a pooled
   * connection found closed is retried once, as before DATA in deliver().
   */
  async verify(envelope: Envelope): Promise<Verification> {
    const attempt = async (): Promise<Verification> => {
      const conn = await this.pool.acquire();
      try {
        const result = await verifyRecipients(conn, envelope, { xforward: this.sendXforward, xforwardSource: 'LOCAL' });
        return { reportedBy: 'daemon', verdicts: result.verdicts, omitted: result.omitted };
      } finally {
        void this.pool.release(conn);
      }
    };
    try {
      return await attempt();
    } catch (err) {
      if (!isRetryable(err)) throw err;
      return attempt();
    }
  }

  /** A connection that greets and answers EHLO goes back to the pool for the next delivery. */
  async probe(): Promise<void> {
    const conn = await this.pool.acquire();
    void this.pool.release(conn);
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  /**
   * A connection, or the abort's reason as soon as the caller is gone: a
   * connection still being opened (connect, greeting, STARTTLS, AUTH) would
   * otherwise keep a dead submission waiting out those timeouts. One that
   * opens after all goes back to the pool.
   */
  private acquire(signal: AbortSignal | undefined): Promise<SmtpConnection> {
    const opening = this.pool.acquire();
    if (signal === undefined) return opening;
    return new Promise((resolve, reject) => {
      const gone = () => {
        opening.then((conn) => void this.pool.release(conn), () => undefined);
        reject(signal.reason);
      };
      if (signal.aborted) return gone();
      signal.addEventListener('abort', gone, { once: true });
      opening.then(
        (conn) => {
          signal.removeEventListener('abort', gone);
          resolve(conn);
        },
        (err: unknown) => {
          signal.removeEventListener('abort', gone);
          reject(err);
        },
      );
    });
  }

  private async attempt(request: DeliveryRequest): Promise<Delivery> {
    const conn = await this.acquire(request.signal);
    try {
      const result = await sendMessage(conn, request.envelope, request.body, {
        eightBit: request.eightBit,
        xforward: this.sendXforward,
        xforwardSource: request.localSubmission === true ? 'LOCAL' : 'REMOTE',
        ...(request.sizeEstimate !== undefined ? { sizeEstimate: request.sizeEstimate } : {}),
        ...(request.signal !== undefined ? { signal: request.signal } : {}),
      });
      return {
        ...(result.queueId !== undefined ? { queueId: result.queueId } : {}),
        text: describeReply(result.reply),
        omitted: result.omitted,
        ...(conn.tls !== null ? { tls: { protocol: conn.tls.protocol, cipher: conn.tls.cipher, verified: conn.tls.verified } } : {}),
      };
    } finally {
      void this.pool.release(conn);
    }
  }
}

function isRetryable(err: unknown): err is SmtpError {
  return isSmtpError(err) && RETRYABLE_CODES.has(err.code) && RETRYABLE_STAGES.has(err.stage);
}
