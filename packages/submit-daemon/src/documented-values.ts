/**
 * Values of the daemon that its documentation states (exported as
 * "@mailsubmit/submit-daemon/documented-values"), so that the tests holding
 * the man pages and docs to the code read them from one declared place
 * rather than from wherever they live inside the daemon.
 */
/** The configuration keys that take effect only after a restart (mailsubmit.conf(5)). */
export { RESTART_KEYS } from './config/config-changes.ts';
/** Every key of mailsubmit.conf with its type, default and reload effect (mailsubmit.conf(5), install/files/mailsubmit.conf). */
export { CONFIG_KEYS, writtenDefault, type ConfigKey } from './config/config-keys.ts';
/** How much of a message is read before the MTA is contacted (docs/reliability.md). */
export { LOOKAHEAD_OCTETS } from './4-validate/message-lookahead.ts';
