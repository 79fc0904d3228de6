/**
 * The daemon's configuration after validation: every value typed, every
 * default filled in. Durations are milliseconds, sizes octets. Each field
 * but `source` and `limits.maxEnvelopeLineOctets` (not configurable) is
 * filled by one key of config-keys.ts, which names it.
 */
import type { Limits } from '@mailsubmit/shared';

/** setgid: peers must hold the mailsubmit group (the set-gid helper's install);
 *  open: the socket is reachable by callers and only the uid is checked. */
export type InstallMode = 'setgid' | 'open';

export type TransportKind = 'smtp' | 'lmtp' | 'sendmail';

export type DownstreamTarget =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | { readonly kind: 'unix'; readonly path: string }
  /** The domain's MX hosts, by preference (its address records when it has none), as a relay to that domain would be reached. */
  | { readonly kind: 'mx'; readonly domain: string; readonly port: number };

export type TlsLevel = 'none' | 'may' | 'encrypt' | 'verify';

/** One [downstream] or [[downstream]] table. */
export interface DownstreamConfig {
  /** For status, metrics and log lines; null: the target as written (load-config.ts, downstreamName). */
  readonly name: string | null;
  readonly transport: TransportKind;
  readonly target: DownstreamTarget;
  readonly heloName: string;
  readonly sendmailPath: string;
  /** sendmail -C DIR: a Postfix instance other than the system's. */
  readonly sendmailConfigDirectory: string | null;
  readonly poolSize: number;
  readonly xforward: boolean;
  /** Lower first; equal priorities share the traffic by weight. */
  readonly priority: number;
  readonly weight: number;
  /** What it is for: empty lists select every submission. */
  readonly doors: readonly string[];
  readonly callers: readonly string[];
  readonly senderDomains: readonly string[];
  /** Milliseconds between background probes while it is unhealthy. */
  readonly probeInterval: number;
  /** null: [timeouts]'s value. */
  readonly connectTimeout: number | null;
  readonly commandTimeout: number | null;
  readonly tls: TlsLevel;
  readonly tlsCaFile: string | null;
  readonly tlsFingerprints: readonly string[];
  readonly tlsMinVersion: 'TLSv1.2' | 'TLSv1.3';
  readonly tlsServerName: string | null;
  /** null: no SMTP AUTH. */
  readonly authUsername: string | null;
  /** The file holding the AUTH secret: owned by the daemon's user, no access for group or others. */
  readonly authSecretFile: string | null;
  readonly authMechanisms: readonly string[];
  readonly authWithoutTls: boolean;
}

export interface DaemonConfig {
  /** The file it was read from, for messages. */
  readonly source: string;
  readonly socket: {
    readonly path: string;
    readonly mode: number;
    readonly group: string;
  };
  readonly installMode: InstallMode;
  readonly authorizationList: string;
  /** The administrator's control socket (mailsubmitctl status/reload): 0600, the daemon's user. */
  readonly control: {
    readonly path: string;
  };
  /** The Prometheus endpoint, loopback only; null when daemon.metrics_listen is absent. */
  readonly metrics: { readonly host: string; readonly port: number } | null;
  /**
   * Where a qmail-queue message waiting for its envelope is held beyond a
   * small memory buffer (unlinked files): the daemon's own directory, owned
   * by its user, mode 0700 (checked at start, config/spool-directory.ts).
   */
  readonly spoolDirectory: string;
  /**
   * The ways to the MTA, in the file's order (one [downstream] table, or
   * several [[downstream]] tables): never empty, names unique, at least one
   * takes every submission (no selector). 5-transport/downstream-set.ts
   * chooses among them.
   */
  readonly downstreams: readonly DownstreamConfig[];
  /**
   * The local queue (5-transport/local-queue/): where a message waits that
   * the MTA could not take yet, who may be queued, and how it is retried.
   * Durations are milliseconds (0: off, for delayWarning), sizes octets.
   */
  readonly queue: {
    readonly directory: string;
    /** Front doors whose every caller is queued on a temporary MTA failure; others need the list's `queue` capability. */
    readonly sendmailDoor: boolean;
    readonly nativeDoor: boolean;
    readonly qmailQueueDoor: boolean;
    readonly minimalBackoff: number;
    readonly maximalBackoff: number;
    readonly maximalLifetime: number;
    readonly delayWarning: number;
    readonly probeInterval: number;
    readonly maxDeliveries: number;
    readonly maxMessages: number;
    readonly maxOctets: number;
    readonly maxOctetsPerUid: number;
    readonly minFree: number;
  };
  readonly limits: Limits & {
    readonly maxConnections: number;
    readonly maxPerUid: number;
    readonly maxFileReads: number;
    // Spool space (3-intake/held-message.ts, 3-intake/spool-space.ts): octets.
    /** Held in the spool directory for one uid at a time. */
    readonly spoolQuotaPerUid: number;
    /** Held in the spool directory for everybody at a time. */
    readonly spoolQuotaTotal: number;
    /** Free space the spool directory's file system keeps; nothing is spooled into it. */
    readonly spoolMinFree: number;
  };
  readonly timeouts: {
    /** Whole time a caller has to write its input. */
    readonly input: number;
    /** Longest pause between two reads of the caller's input. */
    readonly inputIdle: number;
    readonly connect: number;
    readonly command: number;
    readonly dataBlock: number;
    readonly dataEnd: number;
    readonly sendmail: number;
    /** On SIGTERM, how long submissions in progress may take before they are aborted (75). */
    readonly shutdown: number;
  };
  readonly log: {
    readonly level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
  };
}
