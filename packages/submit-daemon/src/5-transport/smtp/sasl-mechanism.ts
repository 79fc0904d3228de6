/**
 * What the SMTP AUTH exchange (smtp-auth.ts) asks of one SASL mechanism's
 * client side, and how a mechanism says an exchange went wrong. The
 * mechanisms know nothing of SMTP: they turn decoded challenges into
 * responses, and smtp-auth.ts carries them as base64 in 334 replies and
 * response lines (RFC 4954 section 4).
 *
 * A SaslFailure's text is shown to the administrator: it names the cause
 * and never carries the secret or anything derived from it.
 */

export type SaslMechanismName = 'SCRAM-SHA-256' | 'PLAIN' | 'LOGIN';

/** The administrator's default, strongest first: SCRAM never shows the secret to the server. */
export const DEFAULT_SASL_MECHANISMS: readonly SaslMechanismName[] = Object.freeze(['SCRAM-SHA-256', 'PLAIN', 'LOGIN']);

export interface SaslClient {
  readonly mechanism: SaslMechanismName;
  /** The response sent on the AUTH line itself (RFC 4954 initial response), or null to wait for the first challenge. */
  initialResponse(): Buffer | null;
  /** Answers one 334 challenge (decoded from base64). Rejects with SaslFailure. */
  respond(challenge: Buffer): Promise<Buffer>;
  /** The server said 235: throws SaslFailure unless this side is satisfied too (SCRAM: the server proved it knows the secret). */
  finish(): void;
}

export type SaslFailureKind =
  /** A challenge this mechanism cannot read, or one too many. */
  | 'malformed'
  /** SCRAM: the server's signature does not verify, or it accepted without giving one. */
  | 'server-unverified'
  /** The server's own refusal inside the mechanism (SCRAM's e= attribute). */
  | 'refused'
  /** The secret cannot be used by this mechanism (SASLprep forbids one of its characters). */
  | 'secret-unusable';

export class SaslFailure extends Error {
  constructor(
    readonly kind: SaslFailureKind,
    message: string,
  ) {
    super(message);
    this.name = 'SaslFailure';
  }
}
