/**
 * What is under way: each connection's flow, each submission job and each
 * session a door serves itself (sendmail -bs). The daemon's stop waits for
 * them, then aborts what is left (daemon.ts).
 */
import type { SubmissionError } from '@mailsubmit/shared';
import type { Logger } from './logging/logger.ts';
import type { SubmissionJob } from './submission-job.ts';

export class InProgress {
  private readonly flows = new Set<Promise<void>>();
  private readonly jobs = new Set<SubmissionJob>();
  /** Door-served requests (between messages a -bs session has no job). */
  private readonly sessions = new Set<AbortController>();

  constructor(private readonly log: Logger) {}

  /** Submission jobs running now. */
  get jobCount(): number {
    return this.jobs.size;
  }

  /**
   * A connection's flow never rejects (flow.ts catches everything); should
   * one do so anyway, it is logged here, never left to end the process.
   */
  trackFlow(flow: Promise<void>): void {
    const settled = flow.catch((err: unknown) => this.log.error({ err: err instanceof Error ? (err.stack ?? err.message) : String(err) }, 'a connection\'s flow failed'));
    this.flows.add(settled);
    void settled.finally(() => this.flows.delete(settled));
  }

  /** Runs `job` as one of those a stop aborts. */
  run<T>(job: SubmissionJob, body: () => Promise<T>): Promise<T> {
    return during(this.jobs, job, body);
  }

  /** Runs a door-served request whose `session` a stop aborts. */
  serve<T>(session: AbortController, body: () => Promise<T>): Promise<T> {
    return during(this.sessions, session, body);
  }

  /** Settles when every flow under way now has, or when `deadline` does. */
  async flowsEnded(deadline?: Promise<void>): Promise<void> {
    const all = Promise.allSettled([...this.flows]).then(() => undefined);
    await (deadline === undefined ? all : Promise.race([all, deadline]));
  }

  abortAll(jobReason: SubmissionError, sessionReason: SubmissionError): void {
    for (const job of this.jobs) job.abort(jobReason);
    for (const session of this.sessions) session.abort(sessionReason);
  }
}

/** `item` is in `set` while `body` runs. */
async function during<I, T>(set: Set<I>, item: I, body: () => Promise<T>): Promise<T> {
  set.add(item);
  try {
    return await body();
  } finally {
    set.delete(item);
  }
}
