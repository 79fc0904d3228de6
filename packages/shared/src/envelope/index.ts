/**
 * The envelope block: its attribute names, value grammars, parser and writer.
 * Everything a front door needs to turn caller input into a validated
 * Envelope, or an Envelope back into the native block.
 */
export type * from './envelope.ts';
export {
  ATTRIBUTE_NAMES,
  attributeSpec,
  isAttributeName,
  lookupAttribute,
  nameKey,
  type AttributeName,
  type AttributeSpec,
  type PerRecipientName,
  type Placement,
  type SingleName,
} from './attribute-names.ts';
export { MAX_ADDRESS_OCTETS, MAX_LABEL_OCTETS, parseAddress, type AddressRole } from './address.ts';
export { parseClientAddress } from './client-address.ts';
export {
  MAX_ENVELOPE_ID_CHARS,
  MAX_ORCPT_OCTETS,
  parseEnvelopeId,
  parseNotify,
  parseOriginalRecipient,
  parseReturnOption,
} from './dsn-values.ts';
export {
  MAX_FREE_TEXT_OCTETS,
  parseClientName,
  parseClientPort,
  parseEncryptionCipher,
  parseEncryptionProtocol,
  parseFingerprint,
  parseFreeText,
  parseHeloName,
  parseKeysize,
  parseProtocolName,
  parseSaslMethod,
  parseSize,
} from './value-grammars.ts';
export { EnvelopeParser, parseEnvelopeBlock } from './envelope-parser.ts';
export { writeEnvelopeBlock } from './envelope-writer.ts';
export {
  MAX_QMAIL_ENVELOPE_OCTETS,
  parseQmailEnvelope,
  type QmailClientFacts,
  type QmailEnvelopeOptions,
} from './qmail-envelope.ts';
