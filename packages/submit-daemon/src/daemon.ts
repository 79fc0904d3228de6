/**
 * mailsubmitd's core: the listening socket, one flow per connection
 * (admit, wait for the request frame, run the submission, reply, log), and
 * an orderly stop. Stages live in their own modules, in the order data flows:
 * accept/ -> intake/ -> submission/ (validation) -> delivery/ -> reply/.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { describeStatus, requestModeOf, isSubmissionError, SubmissionError, type Outcome, type RequestMode } from '@mailsubmit/shared';
import { senderPermitted, type SendmailCommand } from '@mailsubmit/shared';
import { listenSeqpacket, type SeqpacketConnection, type SeqpacketListener } from '@mailsubmit/socket-addon';
import { Admission, type Admitted } from './1-accept/admission.ts';
import { closeAll, receiveRequest, RequestBudget, type ReceivedRequest } from './1-accept/request-frame.ts';
import { AuthorizationStore } from './2-authorize/authorization-store.ts';
import { changedKeys, reloadableMerge } from './config/config-changes.ts';
import type { DaemonConfig } from './config/daemon-config.ts';
import { ConfigError } from './config/load-config.ts';
import { loadConfig } from './config/load-config.ts';
import type { ReloadReport, StatusReport } from './control/control-protocol.ts';
import { createDownstream } from './5-transport/create-downstream.ts';
import type { Downstream } from './5-transport/downstream.ts';
import { DownstreamHealth } from './5-transport/downstream-health.ts';
import { groupIdOf } from './2-authorize/user-database.ts';
import type { Logger } from './logging/logger.ts';
import { setCleanupErrorHandler } from './3-intake/passed-fd-input.ts';
import { exitStatus, sendReply } from './6-reply/reply-sender.ts';
import { checkRequest, type CheckedRequest } from './3-intake/request-check.ts';
import { SubmissionJob, type JobResult } from './submission-job.ts';
import { sendmailModeResult, serveSmtpMode, serveVerifyMode } from './3-intake/sendmail/sendmail-modes.ts';
import { SubmissionLog } from './logging/submission-log.ts';
import type { SubmissionEnd, SubmissionObserver } from './metrics/submission-observer.ts';
import { assertRootOnlyWritable } from './util/safe-path.ts';
import { Semaphore } from './util/semaphore.ts';
import { VERSION } from './version.ts';

/** The helper sends its request right after connecting; a silent peer (or one whose request does not come whole) is dropped. */
const REQUEST_TIMEOUT_MS = 10_000;
/**
 * A refused caller's frame is still read, briefly, for its front door alone:
 * a qmail-queue caller must get qmail's exit code for the refusal too.
 */
const REFUSED_REQUEST_TIMEOUT_MS = 1_000;

/** What `mailsubmitctl status` shows; the wire shape of the control protocol. */
export type DaemonStatus = StatusReport;

export class Daemon {
  private listener: SeqpacketListener | null = null;
  private readonly jobs = new Set<SubmissionJob>();
  /** sendmail -bs sessions, stopped with the daemon (between messages they have no job). */
  private readonly sessions = new Set<AbortController>();
  private readonly finished = new Set<Promise<void>>();
  private readonly byOutcome: Record<string, number> = {};
  private readonly lastErrors: { at: number; outcome: string; text: string }[] = [];
  private readonly startedAt = Date.now();
  private stopping = false;
  private readonly authorizations: AuthorizationStore;
  private readonly admission: Admission;
  /** Replaced by a reload that changes the way to the MTA; jobs keep the one they started with. */
  private downstream: Downstream;
  private readonly fileReads: Semaphore;
  /** Long requests (command lines over one packet) held by submissions in progress (1-accept/request-frame.ts). */
  private readonly requestBudget = new RequestBudget();
  private readonly submissions: SubmissionLog;
  private readonly health = new DownstreamHealth();
  private readonly observers: SubmissionObserver[] = [this.health];

  constructor(
    /** Replaced as a whole by reload(); a job keeps the one it was admitted under. */
    private config: DaemonConfig,
    private readonly log: Logger,
  ) {
    this.authorizations = new AuthorizationStore(config.authorizationList, log);
    const helperGid = config.installMode === 'setgid' ? this.requireGroup(config.socket.group) : null;
    this.admission = new Admission(config, this.authorizations, helperGid);
    this.downstream = createDownstream(config);
    this.fileReads = new Semaphore(config.limits.maxFileReads);
    this.submissions = new SubmissionLog(log);
  }

  /** The configuration in force (reloads replace it). */
  get currentConfig(): DaemonConfig {
    return this.config;
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
    setCleanupErrorHandler((err) => this.log.warn({ err: err.message }, 'putting a caller\'s fd away failed; the submission\'s outcome stands'));
    this.listener.on('connection', (connection) => this.track(this.serve(connection)));
    this.listener.on('acceptError', (err) => this.log.warn({ err: err.message }, 'accept failed; accepting resumes by itself'));
    this.listener.on('error', (err) => this.log.error({ err: err.message }, 'listening socket failed'));
    this.log.info(
      { socket: this.config.socket.path, install_mode: this.config.installMode, downstream: this.downstream.description, authorized: this.authorizations.entryCount },
      'mailsubmitd started',
    );
  }

  /** Tells `observer` about every submission that ends from now on (metrics). */
  addObserver(observer: SubmissionObserver): void {
    this.observers.push(observer);
  }

  /**
   * SIGHUP and `mailsubmitctl reload`: re-reads the configuration file and
   * the authorization list. A configuration that cannot be used is reported
   * and the running one stays in force; an authorization list that cannot
   * be used answers every submission with 75 until it is fixed. Changed
   * keys that need a restart are named, not applied
   * (config/config-changes.ts). Submissions in progress finish as they
   * were admitted.
   */
  reload(): ReloadReport {
    return { config: this.reloadConfig(), authorization_list: this.reloadAuthorizations() };
  }

  status(): DaemonStatus {
    const failure = this.health.lastFailure;
    const loadedAt = this.authorizations.loadedAtMs;
    return {
      version: VERSION,
      pid: process.pid,
      config_path: this.config.source,
      started_at: new Date(this.startedAt).toISOString(),
      uptime_s: Math.floor((Date.now() - this.startedAt) / 1000),
      log_level: this.log.level,
      in_flight: this.admission.inFlight,
      submissions: { total: Object.values(this.byOutcome).reduce((sum, n) => sum + n, 0), by_outcome: { ...this.byOutcome } },
      downstream: {
        description: this.downstream.description,
        healthy: this.health.healthy,
        last_success_at: this.health.lastSuccessAt === null ? null : new Date(this.health.lastSuccessAt).toISOString(),
        last_error: failure === null ? null : { at: new Date(failure.at).toISOString(), outcome: failure.outcome, text: failure.text },
      },
      authorization_list: {
        path: this.authorizations.path,
        entries: this.authorizations.entryCount,
        loaded_at: loadedAt === 0 ? null : new Date(loadedAt).toISOString(),
        invalid: this.authorizations.problem,
      },
      last_errors: this.lastErrors.map((e) => ({ at: new Date(e.at).toISOString(), outcome: e.outcome, text: e.text })),
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
    for (const session of this.sessions) session.abort(new SubmissionError('shutting-down', 'mailsubmitd is stopping'));
    await Promise.allSettled([...this.finished]);
    await this.downstream.close();
    this.log.info('mailsubmitd stopped');
  }

  private reloadConfig(): ReloadReport['config'] {
    const path = this.config.source;
    let next: DaemonConfig;
    try {
      // The same checks as at start: a reload must not be a way around them.
      assertRootOnlyWritable(path);
      next = loadConfig(path);
    } catch (err) {
      const error = (err as Error).message;
      this.log.error({ err: error }, 'configuration not reloaded: the running configuration stays in force');
      return { path, reloaded: false, error, changed: [], restart_required: [] };
    }
    const changes = changedKeys(this.config, next);
    const config = reloadableMerge(this.config, next);
    this.config = config;
    this.admission.configure(config);
    if (changes.some((c) => c.effect === 'log')) this.log.level = config.log.level;
    if (changes.some((c) => c.effect === 'downstream')) {
      const previous = this.downstream;
      this.downstream = createDownstream(config);
      // Deliveries under way on the previous one finish; its idle connections close now.
      previous.close().catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'closing the previous downstream failed'));
    }
    const changed = changes.filter((c) => c.effect !== 'restart').map((c) => c.key);
    const restartRequired = changes.filter((c) => c.effect === 'restart').map((c) => c.key);
    this.log.info({ changed, downstream: this.downstream.description }, 'configuration reloaded');
    if (restartRequired.length > 0) this.log.warn({ keys: restartRequired }, 'these changes take effect only after a restart');
    return { path, reloaded: true, error: null, changed, restart_required: restartRequired };
  }

  private reloadAuthorizations(): ReloadReport['authorization_list'] {
    const store = this.authorizations;
    let error: string | null = null;
    try {
      store.load();
      this.log.info({ authorized: store.entries.length }, 'authorization list reloaded');
    } catch (err) {
      error = (err as Error).message;
      this.log.error({ err: error }, 'authorization list INVALID: every submission gets 75 (temporary) until it is fixed');
    }
    return {
      path: store.path,
      reloaded: error === null,
      error,
      entries: store.entryCount,
      loaded_at: store.loadedAtMs === 0 ? null : new Date(store.loadedAtMs).toISOString(),
    };
  }

  /**
   * A connection's flow never rejects (serve catches everything); should one
   * do so anyway, it is logged here, never left to end the process.
   */
  private track(flow: Promise<void>): void {
    const settled = flow.catch((err: unknown) => this.log.error({ err: err instanceof Error ? (err.stack ?? err.message) : String(err) }, 'a connection\'s flow failed'));
    this.finished.add(settled);
    void settled.finally(() => this.finished.delete(settled));
  }

  /**
   * One connection, start to end. Whatever goes wrong in it ends in a reply
   * (or, with the caller gone, a log line), never in an exception that
   * reaches the process: one caller must not stop everyone's mail.
   */
  private async serve(connection: SeqpacketConnection): Promise<void> {
    const started = process.hrtime.bigint();
    const id = randomBytes(6).toString('hex');
    // An 'error' event nobody listens to would be thrown from the addon's callback.
    connection.on('error', (err) => this.log.debug({ sid: id, err: err.message }, 'connection error'));
    let credentials;
    try {
      credentials = connection.peerCredentials();
    } catch (err) {
      closeQuietly(connection);
      this.log.warn({ sid: id, err: (err as Error).message }, 'no peer credentials; connection dropped');
      return;
    }
    const context = { sid: id, uid: credentials.uid, pid: credentials.pid };
    let admitted: Admitted;
    try {
      if (this.stopping) throw new SubmissionError('shutting-down', 'mailsubmitd is stopping; try again shortly');
      // Logs a list that became unusable (once); admission then answers 75 until it is fixed.
      this.authorizations.refresh();
      admitted = this.admission.admit(credentials);
    } catch (err) {
      this.finish(connection, context, started, this.failure(err), await refusedCallerMode(connection));
      return;
    }
    try {
      let outcome: { result: JobResult; mode: RequestMode | null };
      try {
        outcome = await this.handleRequest(connection, admitted, credentials.uid);
      } catch (err) {
        outcome = { result: this.failure(err), mode: null };
      }
      this.finish(connection, { ...context, user: admitted.caller.userName }, started, outcome.result, outcome.mode);
    } finally {
      this.admission.release(credentials.uid);
    }
  }

  private async handleRequest(connection: SeqpacketConnection, admitted: Admitted, uid: number): Promise<{ result: JobResult; mode: RequestMode | null }> {
    let frame: ReceivedRequest;
    try {
      frame = await receiveRequest(connection, { timeoutMs: REQUEST_TIMEOUT_MS, uid, budget: this.requestBudget });
    } catch (err) {
      return { result: this.failure(err), mode: null };
    }
    try {
      return await this.runRequest(connection, admitted, frame);
    } finally {
      frame.release();
    }
  }

  private async runRequest(connection: SeqpacketConnection, admitted: Admitted, frame: ReceivedRequest): Promise<{ result: JobResult; mode: RequestMode | null }> {
    let checked: CheckedRequest;
    try {
      // fds the kernel could not install here are the daemon's shortage, not a malformed request.
      if (frame.flags.fdsLost) throw new SubmissionError('overload', 'mailsubmitd is out of file descriptors; try again shortly');
      if (frame.refusal !== null) throw frame.refusal;
      checked = checkRequest(frame.data, frame.fds, frame.flags);
    } catch (err) {
      closeAll(frame.fds);
      return { result: this.failure(err), mode: modeOf(frame) };
    }
    const { inputFd, verbose, envelopeFd, qmailClient, sendmail } = checked;
    const mode = checked.request.mode;
    if (sendmail !== undefined && (sendmail.mode !== 'deliver' || sendmail.verify)) return { result: await this.runSendmailMode(connection, admitted, checked), mode };
    const modeResult = sendmail !== undefined ? sendmailModeResult(sendmail) : null;
    if (modeResult !== null) {
      closeAll([inputFd]);
      return { result: modeResult, mode };
    }
    const qmail = envelopeFd !== undefined ? { envelopeFd, client: qmailClient ?? {} } : undefined;
    // Every wait for a file-read slot ends by the input deadline, or at once when the caller goes.
    const gone = new AbortController();
    const inputMs = this.config.timeouts.input;
    const fileReads = this.fileReads.forWaiter({
      signal: gone.signal,
      timeoutMs: inputMs,
      timeoutError: () => new SubmissionError('overload', `busy: no file-read slot came free within ${inputMs / 1000} s (limits.max_file_reads = ${this.fileReads.capacity})`),
    });
    const job = new SubmissionJob({ config: this.config, downstream: this.downstream, fileReads, ...admitted }, inputFd, qmail, sendmail);
    this.jobs.add(job);
    const onGone = () => {
      const reason = new SubmissionError('caller-gone', 'the mailsubmit helper went away before the message was committed');
      gone.abort(reason);
      job.abort(reason);
    };
    connection.once('end', onGone);
    try {
      const result = await job.run();
      for (const err of job.cleanupErrors) this.log.warn({ err: err.message, outcome: result.outcome }, 'cleanup after a submission failed; its outcome stands');
      // Success is silent on the caller's terminal unless it asked with -v.
      return { result: result.outcome === 'ok' && !verbose ? { ...result, text: '' } : result, mode };
    } finally {
      connection.off('end', onGone);
      this.jobs.delete(job);
    }
  }

  /**
   * sendmail modes other than delivery (3-intake/sendmail/sendmail-modes.ts): -bs
   * runs an SMTP dialogue whose every transaction is a submission of its
   * own, logged and counted as one; the MTA's tools and -bh answer at once.
   */
  private async runSendmailMode(connection: SeqpacketConnection, admitted: Admitted, checked: CheckedRequest): Promise<JobResult> {
    const command = checked.sendmail as SendmailCommand;
    if (command.mode === 'deliver' && command.verify) return this.runVerification(connection, admitted, checked);
    const immediate = command.mode !== 'smtp' ? sendmailModeResult(command) : null;
    if (immediate !== null || checked.outputFd === undefined) {
      closeAll([checked.inputFd, ...(checked.outputFd !== undefined ? [checked.outputFd] : [])]);
      return immediate ?? { outcome: 'internal', text: 'no answer for this sendmail mode' };
    }
    const gone = new AbortController();
    const onGone = () => gone.abort(new SubmissionError('caller-gone', 'the mailsubmit helper went away during the SMTP session'));
    connection.once('end', onGone);
    this.sessions.add(gone);
    const fileReads = this.fileReads.forWaiter({ signal: gone.signal, timeoutMs: this.config.timeouts.input, timeoutError: () => new SubmissionError('overload', 'busy: no file-read slot came free') });
    const context = { config: this.config, downstream: this.downstream, fileReads, ...admitted };
    try {
      const result = await serveSmtpMode({
        config: this.config,
        inputFd: checked.inputFd,
        outputFd: checked.outputFd,
        fileReads,
        hostName: hostname(),
        signal: gone.signal,
        senderAllowed: (sender) => senderPermitted(admitted.grant, admitted.caller, sender.text),
        deliver: async (message, data) => {
          const started = process.hrtime.bigint();
          const job = new SubmissionJob(context, data, undefined, message);
          this.jobs.add(job);
          const abort = () => job.abort(gone.signal.reason as SubmissionError);
          gone.signal.addEventListener('abort', abort, { once: true });
          try {
            const result = await job.run();
            const status = exitStatus(result.outcome, checked.request.mode);
            this.count(result.outcome, result.text);
            this.submissions.record({ uid: admitted.caller.uid, user: admitted.caller.userName, door: 'sendmail -bs' }, result, status, Number(process.hrtime.bigint() - started) / 1e6, null);
            this.notify({ outcome: result.outcome, text: result.text, durationMs: Number(process.hrtime.bigint() - started) / 1e6, octets: result.stats?.octets ?? null, at: Date.now() });
            return result;
          } finally {
            gone.signal.removeEventListener('abort', abort);
            this.jobs.delete(job);
          }
        },
      });
      this.log.info({ uid: admitted.caller.uid, user: admitted.caller.userName }, result.text);
      return { ...result, text: '' };
    } finally {
      connection.off('end', onGone);
      this.sessions.delete(gone);
    }
  }

  /** -bv (3-intake/sendmail/address-verification.ts): nothing is read; the report goes by mail, one line to standard output. */
  private async runVerification(connection: SeqpacketConnection, admitted: Admitted, checked: CheckedRequest): Promise<JobResult> {
    closeAll([checked.inputFd]);
    const gone = new AbortController();
    const onGone = () => gone.abort(new SubmissionError('caller-gone', 'the mailsubmit helper went away during address verification'));
    connection.once('end', onGone);
    try {
      const context = { config: this.config, downstream: this.downstream, ...admitted, hostName: hostname(), signal: gone.signal };
      const result = await serveVerifyMode(context, checked.sendmail as SendmailCommand, checked.outputFd);
      if (result.outcome !== 'ok') return result;
      this.log.info({ uid: admitted.caller.uid, user: admitted.caller.userName, queueId: result.queueId }, result.text);
      // Success is the line on standard output, as from Postfix's sendmail -bv.
      return { ...result, text: '' };
    } finally {
      connection.off('end', onGone);
    }
  }

  private failure(err: unknown): JobResult {
    const failure = isSubmissionError(err) ? err : new SubmissionError('internal', err instanceof Error ? err.message : String(err));
    return { outcome: failure.outcome, text: describeStatus(failure.outcome, failure.message) };
  }

  /**
   * Reply, count, log, notify: each step on its own, so that a failure in
   * one (a logger that throws, a reply nobody reads) neither skips the
   * others nor escapes. The outcome was decided before; nothing here changes it.
   */
  private finish(connection: SeqpacketConnection, context: Record<string, unknown>, started: bigint, result: JobResult, mode: RequestMode | null): void {
    const status = result.exitCode ?? exitStatus(result.outcome, mode);
    let replyError: Error | null;
    try {
      replyError = sendReply(connection, status, result.outcome, result.text);
    } catch (err) {
      replyError = err instanceof Error ? err : new Error(String(err));
      closeQuietly(connection);
    }
    const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
    this.count(result.outcome, result.text);
    this.submissions.record(context, result, status, durationMs, replyError);
    this.notify({ outcome: result.outcome, text: result.text, durationMs, octets: result.stats?.octets ?? null, at: Date.now() });
  }

  private notify(end: SubmissionEnd): void {
    for (const observer of this.observers) {
      try {
        observer.submissionEnded(end);
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'a submission observer failed');
      }
    }
  }

  private count(outcome: Outcome, text: string): void {
    this.byOutcome[outcome] = (this.byOutcome[outcome] ?? 0) + 1;
    if (outcome === 'ok') return;
    this.lastErrors.push({ at: Date.now(), outcome, text });
    if (this.lastErrors.length > 10) this.lastErrors.shift();
  }

  private requireGroup(name: string): number {
    const gid = groupIdOf(name);
    if (gid === null) throw new ConfigError(this.config.source, 'daemon.socket_group', `group "${name}" does not exist: create it (groupadd --system ${name}) or name another group`);
    return gid;
  }
}

function closeQuietly(connection: SeqpacketConnection): void {
  try {
    connection.close();
  } catch {
    // Already gone.
  }
}

/** The front door a request names, when it can be read at all (its first packet is enough). */
function modeOf(frame: { readonly data: Buffer }): RequestMode | null {
  return requestModeOf(frame.data);
}

/** The front door of a caller refused before its request was read; its fds are closed unread. */
async function refusedCallerMode(connection: SeqpacketConnection): Promise<RequestMode | null> {
  try {
    const frame = await receiveRequest(connection, { timeoutMs: REFUSED_REQUEST_TIMEOUT_MS });
    closeAll(frame.fds);
    return modeOf(frame);
  } catch {
    return null;
  }
}
