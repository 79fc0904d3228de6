/**
 * The TLS handshake after a 220 to STARTTLS, and the checks a policy asks
 * for afterwards. Node's tls module does the cryptography and the chain
 * check; the name check and the pins are done here, after the handshake,
 * so that each failure gets its own message (Node would fold them into one
 * "authorization error") and so that "may" can go on with an unverified
 * certificate while still recording why it is unverified.
 */
import net from 'node:net';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { SmtpError } from './smtp-error.ts';
import { DEFAULT_TLS_MIN_VERSION, normalizeFingerprint, type TlsPolicy } from './tls-policy.ts';

/** What a connection's TLS turned out to be, for the log line of each delivery. */
export interface TlsFacts {
  /** 'TLSv1.3', 'TLSv1.2'. */
  readonly protocol: string;
  /** OpenSSL's name of the cipher suite. */
  readonly cipher: string;
  /** The chain verified AND the certificate matched the expected name. */
  readonly verified: boolean;
  /** Why it did not verify (null when verified). */
  readonly verifyError: string | null;
  /** The name the certificate was checked against (and sent as SNI unless an address). */
  readonly expectedName: string;
  /** The peer certificate's subject, as `CN=...` (empty if none). */
  readonly peerSubject: string;
  /** SHA-256 of the peer certificate's DER, lower-case hex without colons. */
  readonly peerFingerprint: string;
  /** null when no pins were configured. */
  readonly pinMatched: boolean | null;
}

// OpenSSL's verify codes as Node reports them, in the words `openssl verify` uses.
const CHAIN_ERROR_TEXT: Readonly<Record<string, string>> = {
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unable to get local issuer certificate',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unable to verify the first certificate',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed certificate',
  SELF_SIGNED_CERT_IN_CHAIN: 'self-signed certificate in certificate chain',
  CERT_HAS_EXPIRED: 'certificate has expired',
  CERT_NOT_YET_VALID: 'certificate is not yet valid',
};

function chainErrorText(code: string): string {
  return CHAIN_ERROR_TEXT[code] ?? code;
}

function subjectText(subject: tls.PeerCertificate['subject'] | undefined): string {
  if (subject === undefined || subject === null) return '';
  return Object.entries(subject)
    .map(([key, value]) => `${key}=${Array.isArray(value) ? value.join('+') : String(value)}`)
    .join(', ');
}

function tlsError(code: 'ERR_SMTP_TLS_HANDSHAKE' | 'ERR_SMTP_TLS_UNVERIFIED' | 'ERR_SMTP_TLS_PIN', detail: string, cause?: unknown): SmtpError {
  // Never a permanent outcome: the MTA may be fixed, or another one tried; the caller gets 75.
  return new SmtpError(code, 'mta-protocol', detail, { stage: 'ehlo', command: 'STARTTLS', cause });
}

export interface StartTlsOptions {
  readonly policy: TlsPolicy;
  /** The target's host, used when the policy names no server. */
  readonly host: string;
  /** Longest wait for the handshake, in ms. */
  readonly timeout: number;
}

/**
 * Runs the handshake over `socket` (whose reader must already be detached)
 * and applies the policy's checks. Resolves with the TLS socket to read and
 * write from now on; rejects with an SmtpError after destroying it.
 */
export async function startTls(socket: net.Socket, options: StartTlsOptions): Promise<{ socket: tls.TLSSocket; facts: TlsFacts }> {
  const { policy } = options;
  const expectedName = policy.serverName ?? options.host;
  const secure = await handshake(socket, expectedName, options);
  try {
    const facts = factsOf(secure, expectedName, policy);
    enforce(policy, facts);
    return { socket: secure, facts };
  } catch (err) {
    secure.destroy();
    throw err;
  }
}

function handshake(socket: net.Socket, expectedName: string, options: StartTlsOptions): Promise<tls.TLSSocket> {
  const { policy } = options;
  // Under may and encrypt the CA file only decides what the facts say (verified or not).
  const ca = policy.caFile !== undefined ? readFileSync(policy.caFile) : undefined;
  return new Promise((resolve, reject) => {
    const secure = tls.connect({
      socket,
      // An IP address is not a valid SNI name (RFC 6066 section 3).
      servername: net.isIP(expectedName) === 0 ? expectedName : undefined,
      ca,
      minVersion: policy.minVersion ?? DEFAULT_TLS_MIN_VERSION,
      // The checks are made below, each with its own message.
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
    });
    const timer = setTimeout(() => {
      secure.destroy();
      reject(tlsError('ERR_SMTP_TLS_HANDSHAKE', `the TLS handshake with the MTA took more than ${options.timeout} ms`));
    }, options.timeout);
    const onError = (err: NodeJS.ErrnoException): void => {
      clearTimeout(timer);
      secure.destroy();
      reject(tlsError('ERR_SMTP_TLS_HANDSHAKE', `the TLS handshake with the MTA failed: ${err.code ?? ''} ${err.message}`.replace(/\s+/g, ' ').trim(), err));
    };
    const onClose = (): void => onError(Object.assign(new Error('the MTA closed the connection'), { code: 'ECONNRESET' }));
    secure.once('error', onError);
    secure.once('close', onClose);
    secure.once('secureConnect', () => {
      clearTimeout(timer);
      secure.off('close', onClose);
      secure.off('error', onError);
      resolve(secure);
    });
  });
}

function factsOf(secure: tls.TLSSocket, expectedName: string, policy: TlsPolicy): TlsFacts {
  const cert = secure.getPeerCertificate();
  const hasCert = cert !== null && typeof cert === 'object' && cert.raw !== undefined;
  const chainError = secure.authorized ? null : chainErrorText(String(secure.authorizationError ?? 'no certificate'));
  const nameError = hasCert ? tls.checkServerIdentity(expectedName, cert) : new Error('no certificate');
  const verifyError =
    chainError !== null ? `the MTA's certificate does not verify: ${chainError}` : nameError !== undefined ? `the MTA's certificate does not match ${expectedName}: ${nameError.message}` : null;
  const peerFingerprint = hasCert ? normalizeFingerprint(cert.fingerprint256) : '';
  const pins = policy.pins ?? [];
  return {
    protocol: secure.getProtocol() ?? 'unknown',
    cipher: secure.getCipher().name,
    verified: verifyError === null,
    verifyError,
    expectedName,
    peerSubject: hasCert ? subjectText(cert.subject) : '',
    peerFingerprint,
    pinMatched: pins.length === 0 ? null : pins.some((pin) => normalizeFingerprint(pin) === peerFingerprint),
  };
}

function enforce(policy: TlsPolicy, facts: TlsFacts): void {
  if (policy.level === 'verify' && facts.verifyError !== null) throw tlsError('ERR_SMTP_TLS_UNVERIFIED', facts.verifyError);
  if ((policy.level === 'verify' || policy.level === 'encrypt') && facts.pinMatched === false) {
    throw tlsError('ERR_SMTP_TLS_PIN', `the MTA's certificate (SHA-256 ${facts.peerFingerprint}) is none of the pinned ones`);
  }
}
