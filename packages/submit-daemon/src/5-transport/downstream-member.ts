/**
 * One configured downstream and how it has been doing: healthy until a
 * failure of the way to it (cannot connect, no answer in time, a broken
 * session, TLS or AUTH refused, 421), then unhealthy and probed in the
 * background every probe_interval (connect, greeting, EHLO, STARTTLS and
 * AUTH as configured: Downstream.probe()) until it answers; a delivery
 * that gets through marks it healthy too. A 4xx or 5xx about one message
 * says nothing about the way, and changes nothing here.
 *
 * A downstream without a probe (sendmail(1), where asking costs a
 * delivery) is given traffic again once probe_interval has passed.
 */
import { SubmissionError, type Outcome } from '@mailsubmit/shared';
import type { DownstreamConfig } from '../config/daemon-config.ts';
import { downstreamName } from '../config/load-config.ts';
import type { Logger } from '../logging/logger.ts';
import type { Downstream } from './downstream.ts';
import { isSmtpError } from './smtp/index.ts';

export interface DownstreamFailure {
  readonly at: number;
  readonly outcome: Outcome;
  readonly text: string;
}

const WAY_OUTCOMES: ReadonlySet<Outcome> = new Set<Outcome>(['mta-unreachable', 'mta-timeout', 'mta-protocol']);

/** Whether this failure is the way to the MTA failing, not the MTA's answer about one message. */
export function isFailureOfTheWay(err: unknown): boolean {
  if (!(err instanceof SubmissionError)) return false;
  if (WAY_OUTCOMES.has(err.outcome)) return true;
  // 421: the server is closing the session (shutting down, overloaded), whatever the command.
  return isSmtpError(err) && err.reply?.code === 421;
}

export class DownstreamMember {
  private lastSuccess: number | null = null;
  private failure: DownstreamFailure | null = null;
  private isHealthy = true;
  private probeTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    readonly config: DownstreamConfig,
    readonly downstream: Downstream,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  get name(): string {
    return downstreamName(this.config);
  }

  get healthy(): boolean {
    return this.isHealthy;
  }

  get lastSuccessAt(): number | null {
    return this.lastSuccess;
  }

  get lastFailure(): DownstreamFailure | null {
    return this.failure;
  }

  /** A delivery, verification or probe got through. */
  answered(): void {
    this.lastSuccess = this.now();
    if (this.isHealthy) return;
    this.isHealthy = true;
    this.stopProbing();
    this.log.info({ downstream: this.name }, 'downstream answers again; it gets traffic');
  }

  /** Something failed here: remembered for status; a failure of the way makes it unhealthy. */
  failed(err: unknown): void {
    const failure = { at: this.now(), outcome: err instanceof SubmissionError ? err.outcome : ('internal' as const), text: err instanceof Error ? err.message : String(err) };
    this.failure = failure;
    if (!isFailureOfTheWay(err) || !this.isHealthy) return;
    this.isHealthy = false;
    this.log.warn({ downstream: this.name, outcome: failure.outcome, reason: failure.text }, 'downstream unhealthy; other downstreams take its traffic while it is probed');
    this.scheduleProbe();
  }

  close(): Promise<void> {
    this.closed = true;
    this.stopProbing();
    return this.downstream.close();
  }

  private scheduleProbe(): void {
    if (this.closed || this.probeTimer !== null) return;
    this.probeTimer = setTimeout(() => void this.probe(), this.config.probeInterval);
    // A probe alone must not keep the daemon alive.
    this.probeTimer.unref();
  }

  private async probe(): Promise<void> {
    this.probeTimer = null;
    if (this.closed || this.isHealthy) return;
    if (this.downstream.probe === undefined) {
      this.answered();
      return;
    }
    try {
      await this.downstream.probe();
      this.answered();
    } catch (err) {
      // Unhealthy already: recorded, and probed again later.
      this.failed(err);
      this.scheduleProbe();
    }
  }

  private stopProbing(): void {
    if (this.probeTimer !== null) clearTimeout(this.probeTimer);
    this.probeTimer = null;
  }
}
