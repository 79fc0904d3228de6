/**
 * The SMTP side of the contract: encoders that turn a validated envelope into
 * command lines, the EHLO capability reader, reply parsing, and the mapping
 * from MTA replies to outcomes. Pure functions, no I/O.
 */
export { assertSafeCommandLine, MAX_COMMAND_LINE_OCTETS, UnsafeCommandLineError } from './command-line-safety.ts';
export { NO_CAPABILITIES, parseEhloReply, type ServerCapabilities } from './capabilities.ts';
export {
  mailFromCommand,
  MAX_ORCPT_CHARACTERS,
  needsSmtpUtf8,
  rcptToCommand,
  type BuiltCommand,
  type MessageFacts,
} from './mail-command.ts';
export { formatPath, pathProblem } from './path.ts';
export {
  describeReply,
  enhancedStatusOf,
  makeReply,
  parseReplyLine,
  queueIdOf,
  type ReplyLine,
  type SmtpReply,
} from './reply.ts';
export { replyOutcome, sendmailExitOutcome, type SmtpStage } from './reply-outcome.ts';
export {
  MAX_XFORWARD_LINE_OCTETS,
  MAX_XFORWARD_VALUE_CHARACTERS,
  xforwardCommands,
  xforwardOmitted,
  type XforwardOptions,
  type XforwardSource,
} from './xforward.ts';
export { decodeUtf8AddrXtext, decodeXtext, encodeUtf8AddrXtext, encodeXtext } from './xtext.ts';
