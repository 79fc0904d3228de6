/**
 * mailsubmitd's core: the listening socket, one flow per connection
 * (admit, wait for the request frame, run the submission, reply, log), and
 * an orderly stop. Stages live in their own modules, in the order data flows:
 * accept/ -> intake/ -> submission/ (validation) -> delivery/ -> reply/.
 */
import { randomBytes } from 'node:crypto';
import { isSubmissionError, SubmissionError, type Outcome } from '@mailsubmit/shared';
import { closeFd, listenSeqpacket, type SeqpacketConnection, type SeqpacketListener } from '@mailsubmit/socket-addon';
import { Admission, type Admitted } from './accept/admission.ts';
import { AuthorizationStore } from './authorization/authorization-store.ts';
import type { DaemonConfig } from './config/daemon-config.ts';
import { createDownstream } from './delivery/create-downstream.ts';
import type { Downstream } from './delivery/downstream.ts';
import { groupIdOf } from './identity/user-database.ts';
import type { Logger } from './logging/logger.ts';
import { sendReply } from './reply/reply-sender.ts';
import { checkRequest } from './submission/request-check.ts';
import { SubmissionJob, type JobResult } from './submission/submission-job.ts';
import { SubmissionLog } from './logging/submission-log.ts';
import { Semaphore } from './util/semaphore.ts';

/** The helper sends its frame right after connecting; a silent peer is dropped. */
const REQUEST_TIMEOUT_MS = 10_000;

export interface DaemonStatus {
  readonly startedAt: number;
  readonly inFlight: number;
  readonly byOutcome: Readonly<Record<string, number>>;
  readonly downstream: string;
  readonly lastErrors: readonly { readonly at: number; readonly outcome: string; readonly text: string }[];
}

export class Daemon {
  private listener: SeqpacketListener | null = null;
  private readonly jobs = new Set<SubmissionJob>();
  private readonly finished = new Set<Promise<void>>();
  private readonly byOutcome: Record<string, number> = {};
  private readonly lastErrors: { at: number; outcome: string; text: string }[] = [];
  private readonly startedAt = Date.now();
  private stopping = false;
  private readonly authorizations: AuthorizationStore;
  private readonly admission: Admission;
  private readonly downstream: Downstream;
  private readonly fileReads: Semaphore;
  private readonly submissions: SubmissionLog;

  constructor(
    private readonly config: DaemonConfig,
    private readonly log: Logger,
  ) {
    this.authorizations = new AuthorizationStore(config.authorizationList);
    const helperGid = config.installMode === 'setgid' ? this.requireGroup(config.socket.group) : null;
    this.admission = new Admission(config, this.authorizations, helperGid);
    this.downstream = createDownstream(config);
    this.fileReads = new Semaphore(config.limits.maxFileReads);
    this.submissions = new SubmissionLog(log);
  }

  /** Loads the authorization list and starts listening. Throws with a message naming what is wrong. */
  start(): void {
    this.authorizations.load();
    const gid = groupIdOf(this.config.socket.group);
    this.listener = listenSeqpacket({
      path: this.config.socket.path,
      mode: this.config.socket.mode,
      ...(gid !== null ? { gid } : {}),
    });
    this.listener.on('connection', (connection) => this.track(this.serve(connection)));
    this.listener.on('acceptError', (err) => this.log.warn({ err: err.message }, 'accept failed; accepting resumes by itself'));
    this.listener.on('error', (err) => this.log.error({ err: err.message }, 'listening socket failed'));
    this.log.info(
      { socket: this.config.socket.path, install_mode: this.config.installMode, downstream: this.downstream.description, authorized: this.authorizations.entries.length },
      'mailsubmitd started',
    );
  }

  /** Re-reads the authorization list; a bad list keeps the old one in force. */
  reload(): boolean {
    try {
      this.authorizations.load();
      this.log.info({ authorized: this.authorizations.entries.length }, 'authorization list reloaded');
      return true;
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'reload failed: the previous authorization list stays in force');
      return false;
    }
  }

  status(): DaemonStatus {
    return {
      startedAt: this.startedAt,
      inFlight: this.admission.inFlight,
      byOutcome: { ...this.byOutcome },
      downstream: this.downstream.description,
      lastErrors: [...this.lastErrors],
    };
  }

  /**
   * Stops accepting, lets submissions in progress finish until the deadline,
   * then aborts the rest: their transactions are abandoned without the final
   * dot and their callers get 75.
   */
  async stop(graceMs: number): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.listener?.close();
    this.log.info({ in_flight: this.jobs.size, grace_ms: graceMs }, 'stopping');
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
    await Promise.race([Promise.allSettled([...this.finished]), deadline]);
    for (const job of this.jobs) job.abort(new SubmissionError('shutting-down', 'the submission was stopped before the MTA had it'));
    await Promise.allSettled([...this.finished]);
    await this.downstream.close();
    this.log.info('mailsubmitd stopped');
  }

  private track(flow: Promise<void>): void {
    this.finished.add(flow);
    void flow.finally(() => this.finished.delete(flow));
  }

  private async serve(connection: SeqpacketConnection): Promise<void> {
    const started = process.hrtime.bigint();
    const id = randomBytes(6).toString('hex');
    let credentials;
    try {
      credentials = connection.peerCredentials();
    } catch (err) {
      connection.close();
      this.log.warn({ sid: id, err: (err as Error).message }, 'no peer credentials; connection dropped');
      return;
    }
    const context = { sid: id, uid: credentials.uid, pid: credentials.pid };
    let admitted: Admitted;
    try {
      if (this.stopping) throw new SubmissionError('shutting-down', 'mailsubmitd is stopping; try again shortly');
      const problem = this.authorizations.refresh();
      if (problem !== null) this.log.error({ err: problem }, 'the changed authorization list is not used; the previous one stays in force');
      admitted = this.admission.admit(credentials);
    } catch (err) {
      this.finish(connection, context, started, this.failure(err));
      return;
    }
    try {
      const result = await this.handleRequest(connection, admitted);
      this.finish(connection, { ...context, user: admitted.caller.userName }, started, result);
    } finally {
      this.admission.release(credentials.uid);
    }
  }

  private async handleRequest(connection: SeqpacketConnection, admitted: Admitted): Promise<JobResult> {
    let frame: { data: Buffer; fds: number[]; flags: { truncated: boolean; ctruncated: boolean } };
    try {
      frame = await waitForFrame(connection);
    } catch (err) {
      return this.failure(err);
    }
    let inputFd: number;
    let verbose: boolean;
    try {
      ({ inputFd, verbose } = checkRequest(frame.data, frame.fds, frame.flags));
    } catch (err) {
      for (const fd of frame.fds) closeFd(fd);
      return this.failure(err);
    }
    const job = new SubmissionJob({ config: this.config, downstream: this.downstream, fileReads: this.fileReads, ...admitted }, inputFd);
    this.jobs.add(job);
    const onGone = () => job.abort(new SubmissionError('caller-gone', 'the mailsubmit helper went away before the message was committed'));
    connection.once('end', onGone);
    try {
      const result = await job.run();
      // Success is silent on the caller's terminal unless it asked with -v.
      return result.outcome === 'ok' && !verbose ? { ...result, text: '' } : result;
    } finally {
      connection.off('end', onGone);
      this.jobs.delete(job);
    }
  }

  private failure(err: unknown): JobResult {
    const failure = isSubmissionError(err) ? err : new SubmissionError('internal', err instanceof Error ? err.message : String(err));
    return { outcome: failure.outcome, text: `${failure.message}` };
  }

  private finish(connection: SeqpacketConnection, context: Record<string, unknown>, started: bigint, result: JobResult): void {
    const replyError = sendReply(connection, result.outcome, result.text);
    const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
    this.count(result.outcome, result.text);
    this.submissions.record(context, result, durationMs, replyError);
  }

  private count(outcome: Outcome, text: string): void {
    this.byOutcome[outcome] = (this.byOutcome[outcome] ?? 0) + 1;
    if (outcome === 'ok') return;
    this.lastErrors.push({ at: Date.now(), outcome, text });
    if (this.lastErrors.length > 10) this.lastErrors.shift();
  }

  private requireGroup(name: string): number {
    const gid = groupIdOf(name);
    if (gid === null) throw new Error(`group "${name}" does not exist: create it (groupadd --system ${name}) or set daemon.socket_group`);
    return gid;
  }
}

function waitForFrame(connection: SeqpacketConnection): Promise<{ data: Buffer; fds: number[]; flags: { truncated: boolean; ctruncated: boolean } }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new SubmissionError('usage', `no request within ${REQUEST_TIMEOUT_MS / 1000} s`));
    }, REQUEST_TIMEOUT_MS);
    const onFrame = (data: Buffer, fds: number[], flags: { truncated: boolean; ctruncated: boolean }) => {
      cleanup();
      resolve({ data, fds, flags });
    };
    const onEnd = () => {
      cleanup();
      reject(new SubmissionError('caller-gone', 'the helper closed the connection without a request'));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(new SubmissionError('caller-gone', `connection error: ${err.message}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      connection.off('frame', onFrame);
      connection.off('end', onEnd);
      connection.off('error', onError);
    };
    connection.on('frame', onFrame);
    connection.once('end', onEnd);
    connection.once('error', onError);
  });
}
