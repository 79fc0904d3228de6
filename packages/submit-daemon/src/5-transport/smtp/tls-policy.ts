/**
 * What the SMTP client demands of TLS on one downstream, in the levels of
 * Postfix's smtp_tls_security_level:
 *
 *   none     never STARTTLS
 *   may      STARTTLS when the server offers it; an unverified certificate
 *            is still used (encrypted, marked unverified). A failed
 *            handshake leaves the connection unusable, so the client
 *            connects again once without TLS, as Postfix's smtp client does
 *            for "may" (smtp_proto.c, RETRY_AS_PLAINTEXT; Postfix does not
 *            when it has SASL credentials for the server, which matters
 *            once this client does AUTH). In the clear when not offered,
 *            or when STARTTLS is answered with anything but 220.
 *   encrypt  STARTTLS required, the certificate is not checked (unless pinned)
 *   verify   STARTTLS required; the certificate must chain to the CA file
 *            (or Node's CA store) AND match the expected name
 *
 * Pins (SHA-256 of the DER certificate) are checked under encrypt and verify:
 * with encrypt they are what Postfix's "fingerprint" level does; with verify
 * they come on top of the chain and the name. Under may they are not
 * enforced (a mismatch is only reported in the TLS facts).
 */
export type TlsSecurityLevel = 'none' | 'may' | 'encrypt' | 'verify';

export type TlsMinVersion = 'TLSv1.2' | 'TLSv1.3';

export interface TlsPolicy {
  readonly level: TlsSecurityLevel;
  /**
   * PEM file of the CAs to trust (only these); absent: Node's CA store, the
   * Mozilla list built into Node (the system's under `node --use-openssl-ca`;
   * Debian's system store as a file: /etc/ssl/certs/ca-certificates.crt).
   */
  readonly caFile?: string;
  /** SHA-256 fingerprints of acceptable certificates (hex, colons and case ignored). */
  readonly pins?: readonly string[];
  /** Oldest protocol accepted; TLSv1.2 unless given. */
  readonly minVersion?: TlsMinVersion;
  /** The name sent as SNI and matched against the certificate; default: the target's host. */
  readonly serverName?: string;
}

export const NO_TLS: TlsPolicy = Object.freeze({ level: 'none' });

export const DEFAULT_TLS_MIN_VERSION: TlsMinVersion = 'TLSv1.2';

/** Whether this level fails the connection when STARTTLS cannot be done. */
export function tlsRequired(policy: TlsPolicy): boolean {
  return policy.level === 'encrypt' || policy.level === 'verify';
}

/** 'AB:cd:01...' or 'abcd01...' as plain lower-case hex, for comparison. */
export function normalizeFingerprint(fingerprint: string): string {
  return fingerprint.replace(/:/g, '').trim().toLowerCase();
}

/** Whether a positive EHLO reply (its lines, first = the greeting line) announces STARTTLS. */
export function announcesStartTls(lines: readonly string[]): boolean {
  return lines.slice(1).some((line) => /^(?:\d{3}[ -]?)?STARTTLS\s*$/i.test(line.trim()));
}
