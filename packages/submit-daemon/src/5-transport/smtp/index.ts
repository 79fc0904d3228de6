/**
 * The transport stage of the daemon: an SMTP/LMTP client connection (with
 * STARTTLS under a TLS policy), one mail transaction with the contract's
 * guarantees, and a pool of idle connections; SMTP AUTH (PLAIN, LOGIN,
 * SCRAM-SHA-256) after the last EHLO.
 *
 * Written here rather than taken from nodemailer's SMTP transport (or
 * another client library): none sends XFORWARD, none gives each RCPT its
 * own NOTIFY and ORCPT (they take one DSN setting per message), none reads
 * LMTP's reply per recipient, and none lets a caller abandon the
 * transaction before the final dot with nothing committed, which is the
 * contract's all-or-nothing rule. TLS is Node's own, and SASLprep a
 * maintained package (@mongodb-js/saslprep).
 */
export { DEFAULT_POOL_OPTIONS, SmtpConnectionPool, type ConnectionFactory, type PoolOptions } from './connection-pool.ts';
export { DataGuard } from './data-guard.ts';
export { DEFAULT_MTA_REPLY_LIMITS, MtaReplyReader, type MtaReplyLimits } from './mta-reply-reader.ts';
export {
  DEFAULT_TIMEOUTS,
  replyError,
  SmtpConnection,
  type SmtpConnectionOptions,
  type SmtpTarget,
  type SmtpTimeouts,
} from './smtp-connection.ts';
export { isSmtpError, SmtpError, summarizeCommand, type SmtpErrorCode, type SmtpErrorDetails } from './smtp-error.ts';
export { authenticate, type AuthFacts, type AuthLineSender, type AuthSession, type SmtpAuth } from './smtp-auth.ts';
export { DEFAULT_SASL_MECHANISMS, SaslFailure, type SaslClient, type SaslFailureKind, type SaslMechanismName } from './sasl-mechanism.ts';
export { MAX_SCRAM_ITERATIONS, scramUsername } from './sasl-scram-sha-256.ts';
export { sendMessage, type MessageSource, type SendOptions, type SendResult } from './smtp-transaction.ts';
export { startTls, type StartTlsOptions, type TlsFacts } from './starttls-upgrade.ts';
export {
  announcesStartTls,
  DEFAULT_TLS_MIN_VERSION,
  NO_TLS,
  normalizeFingerprint,
  tlsRequired,
  type TlsMinVersion,
  type TlsPolicy,
  type TlsSecurityLevel,
} from './tls-policy.ts';
export { verifyRecipients, type RecipientVerdict, type VerifyOptions, type VerifyResult } from './smtp-verify.ts';
