/**
 * SASL SCRAM-SHA-256 (RFC 7677, the SCRAM of RFC 5802 with SHA-256), client
 * side, without channel binding (gs2 header "n,,": TLS is checked by the
 * TLS policy, not by SASL).
 *
 * Written here on Node's crypto: npm has SCRAM clients only for SHA-1
 * (sasl-scram-sha-1 and @xmpp/sasl-scram-sha-1, no SHA-256) or buried in
 * database drivers (pg, mongodb) without a public API. SASLprep (RFC 4013)
 * of the password is @mongodb-js/saslprep, kept by MongoDB for its own
 * driver's SCRAM.
 *
 * The exchange: client-first `n,,n=user,r=cnonce`; server-first
 * `r=cnonce+snonce,s=salt,i=iterations`; client-final `c=biws,r=...,p=proof`;
 * server-final `v=signature`, which is checked: a server that cannot sign
 * does not know the secret and is not the MTA it claims to be. A 235 without
 * a verified signature is refused.
 */
import crypto from 'node:crypto';
import { promisify } from 'node:util';
import saslprep from '@mongodb-js/saslprep';
import { SaslFailure, type SaslClient } from './sasl-mechanism.ts';

const pbkdf2 = promisify(crypto.pbkdf2);

/**
 * A hostile server could ask for billions of PBKDF2 rounds and hold a
 * thread of the pool for minutes. Cyrus SASL stores 10 000 by default,
 * Dovecot 4 096 (the RFC 7677 minimum); this leaves room for a hundred
 * times more.
 */
export const MAX_SCRAM_ITERATIONS = 1_000_000;

const GS2_HEADER = 'n,,';
const HASH = 'sha256';
const KEY_LENGTH = 32;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
// RFC 5802 section 7: printable ASCII except the comma.
const NONCE = /^[\x21-\x2b\x2d-\x7e]+$/;

/** RFC 5802 section 5.1: "=" and "," in a username are written =3D and =2C. */
export function scramUsername(username: string): string {
  return username.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

/** The attributes of a SCRAM message, `a=value` separated by commas, in order. */
function attributes(message: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const part of message.split(',')) {
    const match = /^([A-Za-z])=(.*)$/s.exec(part);
    if (match === null) throw new SaslFailure('malformed', 'the MTA sent a SCRAM message that is not a list of attributes');
    const [, name = '', value = ''] = match;
    if (!found.has(name)) found.set(name, value);
  }
  return found;
}

function hmac(key: Buffer, text: string): Buffer {
  return crypto.createHmac(HASH, key).update(text, 'utf8').digest();
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i += 1) out[i] = (a[i] ?? 0) ^ (b[i] ?? 0);
  return out;
}

export class SaslScramSha256Client implements SaslClient {
  readonly mechanism = 'SCRAM-SHA-256';
  private readonly clientNonce: string;
  private readonly clientFirstBare: string;
  private step: 'server-first' | 'server-final' | 'done' = 'server-first';
  private expectedServerSignature: Buffer | null = null;

  /** `nonce` is for tests that replay the RFC's example; by default 24 random bytes. */
  constructor(
    username: string,
    private readonly secret: string,
    nonce: string = crypto.randomBytes(24).toString('base64'),
  ) {
    // The username is sent as given (not SASLprep'd), as PLAIN and LOGIN send it:
    // the same account name must mean the same account whichever mechanism runs.
    this.clientNonce = nonce;
    this.clientFirstBare = `n=${scramUsername(username)},r=${nonce}`;
  }

  initialResponse(): Buffer {
    return Buffer.from(GS2_HEADER + this.clientFirstBare, 'utf8');
  }

  async respond(challenge: Buffer): Promise<Buffer> {
    const message = challenge.toString('utf8');
    if (this.step === 'server-first') return this.clientFinal(message);
    if (this.step === 'server-final') {
      this.verifyServerFinal(message);
      // RFC 4954 section 4: the server's last data came in a 334; the answer is empty.
      return Buffer.alloc(0);
    }
    throw new SaslFailure('malformed', 'the MTA sent a SCRAM challenge after its signature');
  }

  finish(): void {
    if (this.step !== 'done') throw new SaslFailure('server-unverified', 'the MTA accepted SCRAM-SHA-256 without proving that it knows the secret (no server signature)');
  }

  private async clientFinal(serverFirst: string): Promise<Buffer> {
    const attrs = attributes(serverFirst);
    if (attrs.has('m')) throw new SaslFailure('malformed', 'the MTA asks for a SCRAM extension (m=) this client does not know');
    const error = attrs.get('e');
    if (error !== undefined) throw new SaslFailure('refused', `SCRAM error from the MTA: ${error}`);
    const nonce = attrs.get('r');
    const salt = attrs.get('s');
    const count = attrs.get('i');
    if (nonce === undefined || salt === undefined || count === undefined) {
      throw new SaslFailure('malformed', 'the MTA\'s SCRAM server-first message lacks its nonce, salt or iteration count');
    }
    if (!nonce.startsWith(this.clientNonce) || nonce.length === this.clientNonce.length || !NONCE.test(nonce)) {
      throw new SaslFailure('malformed', 'the MTA\'s SCRAM nonce does not extend this client\'s');
    }
    if (salt === '' || !BASE64.test(salt)) throw new SaslFailure('malformed', 'the MTA\'s SCRAM salt is not base64');
    const iterations = /^[1-9]\d{0,9}$/.test(count) ? Number(count) : 0;
    if (iterations < 1 || iterations > MAX_SCRAM_ITERATIONS) {
      throw new SaslFailure('malformed', `the MTA's SCRAM iteration count is not a number from 1 to ${MAX_SCRAM_ITERATIONS}`);
    }

    let prepared: string;
    try {
      prepared = saslprep(this.secret);
    } catch {
      // The library's message is generic; the character itself is part of the secret and is not named.
      throw new SaslFailure('secret-unusable', 'the secret has a character that SASLprep (RFC 4013) forbids, so SCRAM cannot use it');
    }
    const saltedPassword = await pbkdf2(prepared, Buffer.from(salt, 'base64'), iterations, KEY_LENGTH, HASH);
    const clientFinalWithoutProof = `c=${Buffer.from(GS2_HEADER).toString('base64')},r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${clientFinalWithoutProof}`;
    const clientKey = hmac(saltedPassword, 'Client Key');
    const storedKey = crypto.createHash(HASH).update(clientKey).digest();
    const proof = xor(clientKey, hmac(storedKey, authMessage));
    this.expectedServerSignature = hmac(hmac(saltedPassword, 'Server Key'), authMessage);
    this.step = 'server-final';
    return Buffer.from(`${clientFinalWithoutProof},p=${proof.toString('base64')}`, 'utf8');
  }

  private verifyServerFinal(serverFinal: string): void {
    const attrs = attributes(serverFinal);
    const error = attrs.get('e');
    if (error !== undefined) throw new SaslFailure('refused', `SCRAM error from the MTA: ${error}`);
    const signature = attrs.get('v');
    if (signature === undefined || !BASE64.test(signature)) throw new SaslFailure('malformed', 'the MTA\'s SCRAM server-final message has no signature');
    const expected = this.expectedServerSignature ?? Buffer.alloc(0);
    const given = Buffer.from(signature, 'base64');
    if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) {
      throw new SaslFailure('server-unverified', 'the MTA\'s SCRAM server signature does not verify: it does not know the secret, so it is not the MTA it claims to be');
    }
    this.step = 'done';
  }
}
