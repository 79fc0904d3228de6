/**
 * The daemon's Prometheus metrics (prom-client), fed by the submission
 * observer hook. A private registry, not prom-client's global one, so that
 * nothing else in the process can add series to the daemon's endpoint.
 *
 *   mailsubmit_submissions_total{status}          every outcome of the status table
 *   mailsubmit_submission_duration_seconds        accept to reply
 *   mailsubmit_message_bytes                      size of messages read to the end
 *   mailsubmit_in_flight                          admitted, not yet answered
 *   mailsubmit_downstream_errors_total{outcome}   failures at or on the way to the MTA
 *
 * Every known label value starts at 0, so rate() and alerts work from the
 * first scrape instead of from the first failure. Node's process metrics
 * (memory, event-loop delay, open fds) come with them, and the local
 * queue's (local-queue-metrics.ts) share the registry.
 */
import { OUTCOMES } from '@mailsubmit/shared';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { DOWNSTREAM_OUTCOMES, type SubmissionEnd, type SubmissionObserver } from './submission-observer.ts';

/** Most submissions take milliseconds; the tail is a slow caller or a slow MTA (timeouts run to minutes). */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
/** Powers of four from 1 KiB to 64 MiB: a text mail, a mail with a picture, an attachment, the limit. */
const SIZE_BUCKETS = [1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];

export class SubmissionMetrics implements SubmissionObserver {
  readonly registry = new Registry();
  private readonly submissions: Counter<'status'>;
  private readonly duration: Histogram;
  private readonly size: Histogram;
  private readonly downstreamErrors: Counter<'outcome'>;

  /** `inFlight` is read at each scrape. */
  constructor(inFlight: () => number) {
    const registers = [this.registry];
    this.submissions = new Counter({
      name: 'mailsubmit_submissions_total',
      help: 'Submissions answered, by outcome (the status table key; ok is success).',
      labelNames: ['status'],
      registers,
    });
    this.duration = new Histogram({
      name: 'mailsubmit_submission_duration_seconds',
      help: 'Time from accepting the connection to the reply, in seconds.',
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.size = new Histogram({
      name: 'mailsubmit_message_bytes',
      help: 'Size of each message read to the end, in octets as the caller wrote it.',
      buckets: SIZE_BUCKETS,
      registers,
    });
    new Gauge({
      name: 'mailsubmit_in_flight',
      help: 'Submissions admitted and not yet answered.',
      registers,
      collect() {
        this.set(inFlight());
      },
    });
    this.downstreamErrors = new Counter({
      name: 'mailsubmit_downstream_errors_total',
      help: 'Submissions that failed at the MTA or on the way to it, by outcome.',
      labelNames: ['outcome'],
      registers,
    });
    for (const status of OUTCOMES) this.submissions.inc({ status }, 0);
    for (const outcome of DOWNSTREAM_OUTCOMES) this.downstreamErrors.inc({ outcome }, 0);
    collectDefaultMetrics({ register: this.registry });
  }

  submissionEnded(end: SubmissionEnd): void {
    this.submissions.inc({ status: end.outcome });
    this.duration.observe(end.durationMs / 1000);
    if (end.octets !== null) this.size.observe(end.octets);
    if (DOWNSTREAM_OUTCOMES.has(end.outcome)) this.downstreamErrors.inc({ outcome: end.outcome });
  }

  /** The exposition text and its content type. */
  async exposition(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }
}
