/**
 * The sendmail-style front door in pure functions: the command line, the
 * address lists of arguments and -t fields, the bounded header section,
 * the dot that ends a message without -i, and the envelope and header
 * rewrite the daemon applies.
 */
export { parseAddressList } from './address-list.ts';
export { MAX_FULL_NAME_OCTETS, parseSendmailCommand, SENDMAIL_OPTION_LETTERS, SENDMAIL_PAGE, type SendmailCommand, type SendmailMode } from './sendmail-command.ts';
export { HeaderSectionReader, isHeaderLineStart, unfoldedValue, type HeaderField, type HeaderSection, type HeaderSectionOptions } from './header-section.ts';
export { continueHeader, HeaderTail, type ContinuedHeader } from './header-tail.ts';
export { DotTerminator, type DotScan } from './dot-terminator.ts';
export {
  buildSendmailEnvelope,
  displayName,
  fromValue,
  gecosFullName,
  headerRecipients,
  messageIdHost,
  postfixDate,
  rewriteHeader,
  rfc5322Date,
  sendmailSender,
  type AddedHeaderFacts,
  type HeaderCompletion,
  type RewrittenHeader,
  type SendmailCaller,
} from './sendmail-message.ts';
