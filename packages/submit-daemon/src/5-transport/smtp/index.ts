/**
 * The transport stage of the daemon: an SMTP/LMTP client connection, one
 * mail transaction with the contract's guarantees, and a pool of idle
 * connections.
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
export { sendMessage, type MessageSource, type SendOptions, type SendResult } from './smtp-transaction.ts';
export { verifyRecipients, type RecipientVerdict, type VerifyOptions, type VerifyResult } from './smtp-verify.ts';
