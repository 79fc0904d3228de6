/**
 * The server's side of PLAIN, LOGIN and SCRAM-SHA-256 for the fake SMTP
 * server's `auth` option, each with the replies Postfix gives through Cyrus
 * SASL. SCRAM is computed here from the password as a server does (salted
 * password, stored key, server key), so the client's proof is really checked
 * and the server's signature can be made wrong on purpose.
 */
import crypto from 'node:crypto';
import type { FakeSaslStep } from './fake-smtp-server.ts';

export const AUTH_OK = '235 2.7.0 Authentication successful';
export const AUTH_FAILED = '535 5.7.8 Error: authentication failed: authentication failure';

function decode(response: string | undefined): string {
  return Buffer.from(response ?? '', 'base64').toString('utf8');
}

function challenge(text: string): string {
  return `334 ${Buffer.from(text, 'utf8').toString('base64')}`;
}

/** RFC 4616: accepts exactly `NUL username NUL secret`. */
export function plainServer(username: string, secret: string): FakeSaslStep {
  let asked = false;
  return (response) => {
    if (response === undefined && !asked) {
      asked = true;
      return '334 ';
    }
    return decode(response) === `\u0000${username}\u0000${secret}` ? AUTH_OK : AUTH_FAILED;
  };
}

/** "Username:" then "Password:"; `prompts` replaces the two challenges (for malformed ones). */
export function loginServer(username: string, secret: string, prompts: readonly [string, string] = ['Username:', 'Password:']): FakeSaslStep {
  const answers: string[] = [];
  return (response) => {
    if (response !== undefined) answers.push(decode(response));
    if (answers.length < 2) return challenge(prompts[answers.length] ?? '');
    return answers[0] === username && answers[1] === secret ? AUTH_OK : AUTH_FAILED;
  };
}

export interface ScramServerOptions {
  /** The password as the server stores it (already SASLprep'd, as a server keeps it). */
  readonly password: string;
  readonly salt?: Buffer;
  readonly iterations?: number;
  /** Rewrites the server-first message before it is sent. */
  readonly serverFirst?: (honest: string) => string;
  /** 'wrong' signs with another key; 'none' answers 235 without a server-final message. */
  readonly signature?: 'right' | 'wrong' | 'none';
}

function hmac(key: Buffer, text: string): Buffer {
  return crypto.createHmac('sha256', key).update(text).digest();
}

function sha256(data: Buffer): Buffer {
  return crypto.createHash('sha256').update(data).digest();
}

/** The server's records of what each step checked, for assertions. */
export interface ScramServerLog {
  clientFirst: string | null;
  proofVerified: boolean;
}

/** RFC 5802 section 3, the server's side, with SHA-256 (RFC 7677). */
export function scramServer(username: string, options: ScramServerOptions, log: ScramServerLog = { clientFirst: null, proofVerified: false }): FakeSaslStep {
  const salt = options.salt ?? crypto.randomBytes(16);
  const iterations = options.iterations ?? 4096;
  let clientFirstBare = '';
  let serverFirst = '';
  let nonce = '';
  let salted = Buffer.alloc(0);
  let step: 'first' | 'final' | 'ack' = 'first';
  return (response) => {
    const text = decode(response);
    if (step === 'first') {
      log.clientFirst = text;
      const match = /^n,,(n=([^,]*),r=([^,]+))$/.exec(text);
      const name = (match?.[2] ?? '').replace(/=2C/g, ',').replace(/=3D/g, '=');
      if (match === null || name !== username) return AUTH_FAILED;
      clientFirstBare = match[1] ?? '';
      nonce = `${match[3] ?? ''}${crypto.randomBytes(12).toString('base64')}`;
      const honest = `r=${nonce},s=${salt.toString('base64')},i=${iterations}`;
      serverFirst = options.serverFirst?.(honest) ?? honest;
      salted = crypto.pbkdf2Sync(options.password, salt, iterations, 32, 'sha256');
      step = 'final';
      return challenge(serverFirst);
    }
    if (step === 'final') {
      const match = /^(c=biws,r=([^,]+)),p=([A-Za-z0-9+/=]+)$/.exec(text);
      if (match === null || match[2] !== nonce) return AUTH_FAILED;
      const authMessage = `${clientFirstBare},${serverFirst},${match[1] ?? ''}`;
      const storedKey = sha256(hmac(salted, 'Client Key'));
      const clientSignature = hmac(storedKey, authMessage);
      const proof = Buffer.from(match[3] ?? '', 'base64');
      const clientKey = Buffer.from(proof.map((byte, i) => byte ^ (clientSignature[i] ?? 0)));
      if (proof.length !== 32 || !sha256(clientKey).equals(storedKey)) return AUTH_FAILED;
      log.proofVerified = true;
      if (options.signature === 'none') return AUTH_OK;
      const serverKey = options.signature === 'wrong' ? hmac(salted, 'Another Key') : hmac(salted, 'Server Key');
      step = 'ack';
      return challenge(`v=${hmac(serverKey, authMessage).toString('base64')}`);
    }
    return text === '' ? AUTH_OK : AUTH_FAILED;
  };
}
