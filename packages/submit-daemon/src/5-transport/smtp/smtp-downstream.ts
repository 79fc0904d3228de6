/**
 * SMTP or LMTP to the configured target, through a small pool of idle
 * connections (reset with RSET between uses).
 *
 * A pooled connection can be closed by the server just as a transaction
 * starts (Postfix drops idle clients after smtpd_timeout). Before DATA no
 * message octet has been sent and the body has not been read, so such a
 * failure is retried once on a fresh connection instead of costing the
 * caller a temporary failure.
 */
import { describeReply, type Envelope } from '@mailsubmit/shared';
import type { DaemonConfig } from '../../config/daemon-config.ts';
import { isSmtpError, sendMessage, SmtpConnectionPool, verifyRecipients, type SmtpError } from './index.ts';
import type { Delivery, DeliveryRequest, Downstream, Verification } from '../downstream.ts';

const RETRYABLE_CODES = new Set(['ERR_SMTP_CLOSED', 'ERR_SMTP_SOCKET', 'ERR_SMTP_NOT_USABLE']);
const RETRYABLE_STAGES = new Set([undefined, 'xforward', 'mail', 'rcpt']);

export class SmtpDownstream implements Downstream {
  readonly description: string;
  private readonly pool: SmtpConnectionPool;
  private readonly sendXforward: boolean;

  constructor(config: DaemonConfig) {
    const { downstream, timeouts } = config;
    this.sendXforward = downstream.xforward;
    const target = downstream.target.kind === 'unix' ? { path: downstream.target.path } : { host: downstream.target.host, port: downstream.target.port };
    this.description = `${downstream.transport} ${downstream.target.kind === 'unix' ? `unix:${downstream.target.path}` : `${downstream.target.host}:${downstream.target.port}`}`;
    this.pool = new SmtpConnectionPool(
      {
        target,
        protocol: downstream.transport === 'lmtp' ? 'lmtp' : 'smtp',
        heloName: downstream.heloName,
        timeouts: {
          connect: timeouts.connect,
          greeting: timeouts.command,
          ehlo: timeouts.command,
          xforward: timeouts.command,
          mail: timeouts.command,
          rcpt: timeouts.command,
          dataInit: timeouts.command,
          dataBlock: timeouts.dataBlock,
          dataEnd: timeouts.dataEnd,
          rset: timeouts.command,
          quit: timeouts.command,
        },
      },
      { maxIdle: downstream.poolSize },
    );
  }

  async deliver(request: DeliveryRequest): Promise<Delivery> {
    // The body is a one-shot stream: once DATA has started reading it, a
    // second attempt would send what is left of it (nothing, after a reset
    // at the dot) as the whole message, and report success. A connection
    // error has no stage, so the stage alone cannot tell; this can.
    let bodyTaken = false;
    const body: AsyncIterable<Uint8Array> = {
      [Symbol.asyncIterator]: () => {
        bodyTaken = true;
        return request.body[Symbol.asyncIterator]();
      },
    };
    const once = { ...request, body };
    try {
      return await this.attempt(once);
    } catch (err) {
      if (bodyTaken || !isRetryable(err)) throw err;
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

  private async attempt(request: DeliveryRequest): Promise<Delivery> {
    const conn = await this.pool.acquire();
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
      };
    } finally {
      void this.pool.release(conn);
    }
  }
}

function isRetryable(err: unknown): err is SmtpError {
  return isSmtpError(err) && RETRYABLE_CODES.has(err.code) && RETRYABLE_STAGES.has(err.stage);
}
