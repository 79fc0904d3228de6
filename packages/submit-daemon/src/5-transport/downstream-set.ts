/**
 * The configured downstreams as one way to the MTA: each submission goes
 * to the first of its order of trial (downstream-selection.ts) and, after
 * a temporary failure, moves on to the next, until one commits it or none
 * is left. A permanent refusal (5xx, a message the MTA will never take)
 * is the answer at once: another MTA of the same mail system would say
 * the same, and trying it would only hide the refusal.
 *
 * Moving on must never deliver a message twice. So a submission stops
 * where the MTA may already have it: after the final dot when no reply was
 * read (the MTA may have committed; the caller hears 75, or the local
 * queue keeps the message, as with one downstream), and after an LMTP
 * server's per-recipient replies began. A one-shot body that the first
 * attempt began to read cannot be sent again either; a message read whole
 * (the request's replay) can. The caller going away stops it too.
 *
 * With one downstream this is that downstream, with its health kept for
 * status.
 */
import { SubmissionError, type Envelope } from '@mailsubmit/shared';
import type { Logger } from '../logging/logger.ts';
import { DownstreamTallies } from '../metrics/downstream-metrics.ts';
import type { Delivery, DeliveryRequest, Downstream, Route, Verification } from './downstream.ts';
import type { DownstreamMember } from './downstream-member.ts';
import { orderOfTrial } from './downstream-selection.ts';
import { watchOneShotBody, type WatchedBody } from './one-shot-body.ts';
import { isSmtpError } from './smtp/index.ts';

const TEMPORARY_OUTCOMES = new Set(['mta-unreachable', 'mta-timeout', 'mta-protocol', 'mta-tempfail']);

/** Which downstream a delivery's failure came from, for its log line (several configured only). */
const FAILED_AT = new WeakMap<object, string>();

export function failedAt(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null ? FAILED_AT.get(err) : undefined;
}

export class DownstreamSet implements Downstream {
  readonly description: string;

  constructor(
    readonly members: readonly DownstreamMember[],
    private readonly log: Logger,
    /** Counted per downstream for the metrics; kept by the daemon across reloads. */
    private readonly tallies: DownstreamTallies = new DownstreamTallies(),
    private readonly random: () => number = Math.random,
  ) {
    if (members.length === 0) throw new Error('a downstream set needs at least one downstream');
    this.description = members.map((m) => (members.length === 1 ? m.downstream.description : `${m.name} (${m.downstream.description})`)).join(', ');
  }

  /** This set as one caller's submissions see it: their route fills in each request's. */
  forRoute(route: Route): Downstream {
    return {
      description: this.description,
      deliver: (request) => this.deliver({ route, ...request }),
      verify: (envelope) => this.verify(envelope, route),
      close: () => Promise.resolve(),
    };
  }

  async deliver(request: DeliveryRequest): Promise<Delivery> {
    const order = this.order(request.route, request.envelope);
    let body = watchOneShotBody(request.body);
    for (const [i, member] of order.entries()) {
      try {
        const delivery = await member.downstream.deliver({ ...request, body: body.body });
        member.answered();
        this.tallies.delivered(member.name);
        return this.members.length === 1 ? delivery : { ...delivery, via: member.name };
      } catch (err) {
        member.failed(err);
        this.tallies.failed(member.name, err instanceof SubmissionError ? err.outcome : 'internal');
        const next = order[i + 1];
        const again = next !== undefined && mayMoveOn(err, request.signal) ? bodyAgain(body, request) : null;
        if (next === undefined || again === null) {
          if (this.members.length > 1 && typeof err === 'object' && err !== null) FAILED_AT.set(err, member.name);
          throw err;
        }
        body = again;
        this.log.warn({ downstream: member.name, next: next.name, reason: (err as Error).message }, 'submission moves on to the next downstream');
      }
    }
    throw new Error('unreachable: the order of trial is never empty');
  }

  async verify(envelope: Envelope, route?: Route): Promise<Verification> {
    const order = this.order(route, envelope);
    for (const [i, member] of order.entries()) {
      try {
        const verification = await member.downstream.verify(envelope, route);
        member.answered();
        return verification;
      } catch (err) {
        member.failed(err);
        if (order[i + 1] === undefined || !mayMoveOn(err, undefined)) throw err;
      }
    }
    throw new Error('unreachable: the order of trial is never empty');
  }

  /**
   * Whether any downstream answers, for the local queue's probe: healthy
   * ones first. Without a probe anywhere (sendmail(1) only) the method is
   * absent, as on that downstream.
   */
  get probe(): (() => Promise<void>) | undefined {
    const probing = this.members.filter((m) => m.downstream.probe !== undefined);
    if (probing.length === 0) return undefined;
    return async () => {
      let last: unknown;
      for (const member of [...probing].sort((a, b) => Number(b.healthy) - Number(a.healthy) || a.config.priority - b.config.priority)) {
        try {
          await member.downstream.probe?.();
          member.answered();
          return;
        } catch (err) {
          member.failed(err);
          last = err;
        }
      }
      throw last;
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.members.map((m) => m.close()));
  }

  private order(route: Route | undefined, envelope: Envelope): DownstreamMember[] {
    const order = orderOfTrial(this.members, route, envelope.sender, this.random);
    // The configuration guarantees a downstream without a selector; a set built otherwise is a programming error.
    if (order.length === 0) throw new SubmissionError('internal', 'no downstream takes this submission');
    return order;
  }
}

/** The body for the next attempt: the same stream if nothing read it, else the message once more; null when it cannot be had again. */
function bodyAgain(body: WatchedBody, request: DeliveryRequest): WatchedBody | null {
  if (!body.taken()) return body;
  return request.replay === undefined ? null : watchOneShotBody(request.replay());
}

/**
 * A temporary failure where the MTA cannot have the message: before the
 * final dot, or an explicit 4xx to it. Not after the dot without a reply,
 * not after LMTP's per-recipient replies, not once the caller is gone.
 */
function mayMoveOn(err: unknown, signal: AbortSignal | undefined): boolean {
  if (signal?.aborted === true) return false;
  if (!(err instanceof SubmissionError) || !TEMPORARY_OUTCOMES.has(err.outcome)) return false;
  // sendmail(1): it did not run (unreachable) or said it queued nothing (EX_TEMPFAIL); a timeout may hide a queued message.
  if (!isSmtpError(err)) return err.outcome === 'mta-unreachable' || err.outcome === 'mta-tempfail';
  if (err.stage === 'lmtp-data-end') return false;
  if (err.stage === 'data-end') return err.code === 'ERR_SMTP_REPLY';
  return true;
}
