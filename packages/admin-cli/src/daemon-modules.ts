/**
 * The daemon's own modules that mailsubmitctl needs: the configuration
 * parser, the unsafe-permission check, the user database lookups and the
 * control protocol. Importing them (esbuild bundles them in) instead of
 * copying keeps one source of truth, so `mailsubmitctl config check` and
 * `check` can never disagree with what mailsubmitd would decide. This file
 * is the only place that reaches into the daemon's package.
 */
export type { DaemonConfig } from '../../submit-daemon/src/config/daemon-config.ts';
export { assertConfigReadable, ConfigError, DEFAULT_CONFIG_PATH, loadConfig, parseConfig } from '../../submit-daemon/src/config/load-config.ts';
export { controlSocketOfBrokenConfig } from '../../submit-daemon/src/config/control-socket-path.ts';
export { assertRootOnlyWritable, UnsafePathError } from '../../submit-daemon/src/util/safe-path.ts';
export { identityOf } from '../../submit-daemon/src/2-authorize/user-database.ts';
export {
  ControlProtocolError,
  encodeRequest,
  MAX_REQUEST_OCTETS,
  parseReply,
  type ControlCommand,
  type ControlReply,
  type ReloadReport,
  type StatusReport,
} from '../../submit-daemon/src/control/control-protocol.ts';
