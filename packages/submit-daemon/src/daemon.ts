/**
 * mailsubmitd's lifecycle: start (the authorization list, the listening
 * socket), reload (configuration and list, SIGHUP or mailsubmitctl), status,
 * and an orderly stop. Each connection's journey is flow.ts; the daemon
 * owns what the flows share (admission, the downstream in force, the
 * file-read slots, the tally) and lends it to them.
 */
import { SubmissionError } from '@mailsubmit/shared';
import { adoptSeqpacketListener, listenSeqpacket, type SeqpacketListener } from '@mailsubmit/socket-addon';
import { Admission } from './1-accept/admission.ts';
import { RequestBudget } from './1-accept/request-frame.ts';
import { assertPassedSocketFile } from './1-accept/systemd-socket.ts';
import { AuthorizationStore } from './2-authorize/authorization-store.ts';
import { groupIdOf } from './2-authorize/user-database.ts';
import { setCleanupErrorHandler } from './3-intake/passed-fd-input.ts';
import { createDownstream } from './5-transport/create-downstream.ts';
import type { DownstreamSet } from './5-transport/downstream-set.ts';
import { DownstreamTallies } from './metrics/downstream-metrics.ts';
import { DownstreamHealth } from './5-transport/downstream-health.ts';
import { LocalQueue } from './5-transport/local-queue/local-queue.ts';
import { QueueRunner } from './5-transport/local-queue/queue-runner.ts';
import { changedKeys, reloadableMerge } from './config/config-changes.ts';
import type { DaemonConfig } from './config/daemon-config.ts';
import { ConfigError, loadConfig } from './config/load-config.ts';
import type { ReloadReport, StatusReport } from './control/control-protocol.ts';
import { serveConnection, type FlowServices } from './flow.ts';
import { InProgress } from './in-progress.ts';
import type { Logger } from './logging/logger.ts';
import { SubmissionTally } from './metrics/submission-tally.ts';
import type { SubmissionObserver } from './metrics/submission-observer.ts';
import { assertRootOnlyWritable } from './util/safe-path.ts';
import { Semaphore } from './util/semaphore.ts';
import { VERSION } from './version.ts';

/** What `mailsubmitctl status` shows; the wire shape of the control protocol. */
export type DaemonStatus = StatusReport;

export class Daemon {
  private listener: SeqpacketListener | null = null;
  private readonly startedAt = Date.now();
  private stopping = false;
  private readonly authorizations: AuthorizationStore;
  private readonly admission: Admission;
  /** Replaced by a reload that changes the way to the MTA; jobs keep the one they started with. */
  private downstream: DownstreamSet;
  /** Per-downstream counts for the metrics, kept across the rebuilds a reload makes. */
  readonly downstreamTallies = new DownstreamTallies();
  private readonly health = new DownstreamHealth();
  private readonly tally: SubmissionTally;
  private readonly inProgress: InProgress;
  /** The local queue's runner, from start() on. */
  private queue: QueueRunner | null = null;
  /** What each connection's flow is lent: the config and downstream in force when it asks. */
  private readonly services: FlowServices;

  constructor(
    /** Replaced as a whole by reload(); a job keeps the one it was admitted under. */
    private config: DaemonConfig,
    private readonly log: Logger,
    /** The submission socket systemd passed (its fd), or null: the daemon makes its own. */
    private readonly passedSocket: number | null = null,
  ) {
    this.authorizations = new AuthorizationStore(config.authorizationList, log);
    const helperGid = config.installMode === 'setgid' ? this.requireGroup(config.socket.group) : null;
    this.admission = new Admission(config, this.authorizations, helperGid);
    this.downstream = createDownstream(config, log, this.downstreamTallies);
    this.tally = new SubmissionTally(log);
    this.tally.addObserver(this.health);
    this.inProgress = new InProgress(log);
    const daemon = this;
    const fileReads = new Semaphore(config.limits.maxFileReads);
    const requestBudget = new RequestBudget();
    this.services = {
      get config() {
        return daemon.config;
      },
      get downstream() {
        return daemon.downstream;
      },
      get queue() {
        return daemon.queue;
      },
      get stopping() {
        return daemon.stopping;
      },
      authorizations: this.authorizations,
      admission: this.admission,
      fileReads,
      requestBudget,
      inProgress: this.inProgress,
      tally: this.tally,
      log,
    };
  }

  /** The configuration in force (reloads replace it). */
  get currentConfig(): DaemonConfig {
    return this.config;
  }

  /**
   * Loads the authorization list, opens the local queue (its recovery scan
   * runs before anything is queued or delivered) and starts listening.
   * Throws with a message naming what is wrong.
   */
  async start(): Promise<void> {
    this.authorizations.load();
    await this.openQueue();
    const gid = groupIdOf(this.config.socket.group);
    this.listener =
      this.passedSocket === null
        ? listenSeqpacket({ path: this.config.socket.path, mode: this.config.socket.mode, ...(gid !== null ? { gid } : {}) })
        : this.adoptPassedSocket(this.passedSocket, gid);
    setCleanupErrorHandler((err) => this.log.warn({ err: err.message }, 'putting a caller\'s fd away failed; the submission\'s outcome stands'));
    this.listener.on('connection', (connection) => this.inProgress.trackFlow(serveConnection(connection, this.services)));
    this.listener.on('acceptError', (err) => this.log.warn({ err: err.message }, 'accept failed; accepting resumes by itself'));
    this.listener.on('error', (err) => this.log.error({ err: err.message }, 'listening socket failed'));
    this.log.info(
      {
        socket: this.config.socket.path,
        socket_from: this.passedSocket === null ? 'mailsubmitd' : 'systemd',
        install_mode: this.config.installMode,
        downstream: this.downstream.description,
        authorized: this.authorizations.entryCount,
      },
      'mailsubmitd started',
    );
  }

  /** The socket systemd holds: checked to be the one the configuration names, with no more access than it allows. */
  private adoptPassedSocket(fd: number, gid: number | null): SeqpacketListener {
    assertPassedSocketFile(this.config, this.config.installMode === 'setgid' ? gid : null);
    try {
      return adoptSeqpacketListener({ fd, path: this.config.socket.path });
    } catch (err) {
      throw new ConfigError(this.config.source, 'daemon.socket', `systemd passed ${(err as Error).message}: ListenSequentialPacket= in mailsubmitd.socket must name this path`);
    }
  }

  private async openQueue(): Promise<void> {
    const { queue } = this.config;
    const opened = await LocalQueue.open(queue.directory, {
      limits: { maxCount: queue.maxMessages, maxOctets: queue.maxOctets, maxOctetsPerUid: queue.maxOctetsPerUid, minFree: queue.minFree },
    });
    const runner = new QueueRunner(opened.queue, { config: () => this.config, downstream: () => this.downstream, log: this.log });
    runner.start(opened.recovery);
    this.tally.addObserver(runner);
    this.queue = runner;
  }

  /** The local queue, for the control socket and the metrics; null before start(). */
  get localQueue(): QueueRunner | null {
    return this.queue;
  }

  /** Each downstream in force, for the metrics' health gauge. */
  get downstreamHealth(): readonly { readonly name: string; readonly healthy: boolean }[] {
    return this.downstream.members;
  }

  /** Tells `observer` about every submission that ends from now on (metrics). */
  addObserver(observer: SubmissionObserver): void {
    this.tally.addObserver(observer);
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
      submissions: { total: this.tally.total, by_outcome: this.tally.byOutcome },
      downstream: {
        description: this.downstream.description,
        healthy: this.health.healthy,
        last_success_at: this.health.lastSuccessAt === null ? null : new Date(this.health.lastSuccessAt).toISOString(),
        last_error: failure === null ? null : { at: new Date(failure.at).toISOString(), outcome: failure.outcome, text: failure.text },
      },
      downstreams: this.downstream.members.map((member) => ({
        name: member.name,
        description: member.downstream.description,
        priority: member.config.priority,
        weight: member.config.weight,
        healthy: member.healthy,
        last_success_at: member.lastSuccessAt === null ? null : new Date(member.lastSuccessAt).toISOString(),
        last_error: member.lastFailure === null ? null : { ...member.lastFailure, at: new Date(member.lastFailure.at).toISOString() },
      })),
      authorization_list: {
        path: this.authorizations.path,
        entries: this.authorizations.entryCount,
        loaded_at: loadedAt === 0 ? null : new Date(loadedAt).toISOString(),
        invalid: this.authorizations.problem,
      },
      local_queue: this.queue === null ? null : { directory: this.config.queue.directory, ...this.queue.summary() },
      last_errors: this.tally.lastErrors.map((e) => ({ at: new Date(e.at).toISOString(), outcome: e.outcome, text: e.text })),
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
    this.log.info({ in_flight: this.inProgress.jobCount, grace_ms: graceMs }, 'stopping');
    // Deliveries from the queue share the grace period; cut short, their messages stay queued.
    const queueStopped = this.queue?.stop(graceMs);
    await this.inProgress.flowsEnded(new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref()));
    this.inProgress.abortAll(
      new SubmissionError('shutting-down', 'the submission was stopped before the MTA had it'),
      new SubmissionError('shutting-down', 'mailsubmitd is stopping'),
    );
    await this.inProgress.flowsEnded();
    await queueStopped;
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
    let downstream: DownstreamSet | null = null;
    if (changes.some((c) => c.effect === 'downstream')) {
      try {
        downstream = createDownstream(config, this.log, this.downstreamTallies);
      } catch (err) {
        const error = (err as Error).message;
        this.log.error({ err: error }, 'configuration not reloaded: the running configuration stays in force');
        return { path, reloaded: false, error, changed: [], restart_required: [] };
      }
    }
    this.config = config;
    this.admission.configure(config);
    if (changes.some((c) => c.effect === 'log')) this.log.level = config.log.level;
    if (downstream !== null) {
      const previous = this.downstream;
      this.downstream = downstream;
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

  private requireGroup(name: string): number {
    const gid = groupIdOf(name);
    if (gid === null) throw new ConfigError(this.config.source, 'daemon.socket_group', `group "${name}" does not exist: create it (groupadd --system ${name}) or name another group`);
    return gid;
  }
}
