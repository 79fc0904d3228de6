/**
 * What mailsubmitctl may use of the daemon (exported as
 * "@mailsubmit/submit-daemon/admin"): the configuration parser, the control
 * protocol (and what a queue id looks like), the unsafe-permission check,
 * the user database lookup and the probe of what a downstream offers. The
 * CLI imports these (esbuild bundles them in) instead of keeping copies, so
 * `mailsubmitctl config check` and `check` can never disagree with what
 * mailsubmitd would decide. Anything else in the daemon may move or change
 * without the CLI noticing.
 */
export type { DaemonConfig, DownstreamConfig } from './config/daemon-config.ts';
export { assertConfigReadable, ConfigError, DEFAULT_CONFIG_PATH, downstreamName, loadConfig, parseConfig } from './config/load-config.ts';
export { controlSocketOfBrokenConfig } from './config/control-socket-path.ts';
export { AuthSecretError, readAuthSecret } from './config/auth-secret.ts';
export { writtenTarget } from './config/config-value-types.ts';
export { probeDownstreamOffer, type AuthOutcome, type DownstreamOffer } from './5-transport/smtp/downstream-offer.ts';
export {
  ControlProtocolError,
  encodeRequest,
  parseReply,
  type ControlCommand,
  type ControlFailureReason,
  type ControlReply,
  type QueueActionReport,
  type QueueListReport,
  type ReloadReport,
  type StatusReport,
} from './control/control-protocol.ts';
export type { QueuedMessageDetail, QueueListing, QueueSummary } from './control/queue-control.ts';
export { isQueueId } from './5-transport/local-queue/queue-id.ts';
export { assertRootOnlyWritable, UnsafePathError } from './util/safe-path.ts';
export { identityOf } from './2-authorize/user-database.ts';
