/**
 * The envelope of one submission after validation. Every string here has been
 * checked against its grammar: none can carry CR, LF, NUL or any byte that its
 * SMTP carrier does not allow.
 */

/** A validated RFC 5321 mailbox, or the null sender. */
export interface Address {
  /** What goes between the angle brackets on the wire; '' for the null sender `<>`. */
  readonly text: string;
  /** Contains non-ASCII (needs SMTPUTF8 downstream). */
  readonly utf8: boolean;
  /** Has no `@domain`: passed as is for the MTA to qualify. */
  readonly unqualified: boolean;
}

/** DSN keywords for RCPT ... NOTIFY= (RFC 3461). 'NEVER' stands alone. */
export type NotifyKeyword = 'SUCCESS' | 'FAILURE' | 'DELAY' | 'NEVER';

/** RCPT ... ORCPT= before xtext encoding: `type;value`. */
export interface OriginalRecipient {
  /** Address type, lower case: `rfc822` or `utf-8` (RFC 6533). */
  readonly type: string;
  /** The original recipient as the caller wrote it (decoded). */
  readonly value: string;
}

export interface Recipient {
  readonly address: Address;
  /** Sorted, without duplicates; ['NEVER'] alone or any of the other three. */
  readonly notify?: readonly NotifyKeyword[];
  readonly orcpt?: OriginalRecipient;
  /** Input line of the `recipient:` attribute, for messages. */
  readonly line: number;
}

export interface ClientAddress {
  readonly family: 4 | 6;
  /** Normalized textual address, without brackets or `IPv6:` prefix. */
  readonly address: string;
}

/** Facts about the original SMTP client (XFORWARD carries them). */
export interface ClientAttributes {
  readonly protocolName?: string;
  readonly heloName?: string;
  readonly clientName?: string;
  readonly clientAddress?: ClientAddress;
  readonly clientPort?: number;
}

/** How the original client authenticated: no SMTP carrier, logged only. */
export interface SaslAttributes {
  readonly method?: string;
  readonly username?: string;
  readonly sender?: Address;
}

/** TLS facts of the original session: no SMTP carrier, logged only. */
export interface TlsAttributes {
  readonly ccertSubject?: string;
  readonly ccertIssuer?: string;
  readonly ccertFingerprint?: string;
  readonly encryptionProtocol?: string;
  readonly encryptionCipher?: string;
  readonly encryptionKeysize?: number;
}

export type ReturnOption = 'FULL' | 'HDRS';

export interface Envelope {
  readonly sender: Address;
  readonly recipients: readonly Recipient[];
  readonly envelopeId?: string;
  readonly returnOption?: ReturnOption;
  /** Declared octet count of the message as written; checked against what is read. */
  readonly size?: number;
  readonly client: ClientAttributes;
  readonly sasl: SaslAttributes;
  readonly tls: TlsAttributes;
  /** Canonical names of every attribute the caller gave a value for, in input order, without repeats. */
  readonly asserted: readonly string[];
}
