/**
 * An SMTP client that shares nothing with mailsubmit's: Python's smtplib and
 * ssl module (python-smtp-client.py), to check a test server from outside:
 * STARTTLS verified against a CA file, AUTH by PLAIN, LOGIN or SCRAM-SHA-256,
 * one message. Each step's reply is returned; the first refusal ends it.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { childOutput } from './child-output.ts';

const CLIENT = fileURLToPath(new URL('./python-smtp-client.py', import.meta.url));
/** Debian's interpreter, as the rest of the suite uses. */
const PYTHON = '/usr/bin/python3';

export interface PythonSmtpRequest {
  /** Also the name the server's certificate must match. Default 127.0.0.1. */
  readonly host?: string;
  readonly port: number;
  readonly starttls?: boolean;
  /** Verify the server's certificate against this CA file; without it, TLS without verification. */
  readonly cafile?: string;
  readonly user?: string;
  readonly password?: string;
  readonly mechanism?: 'PLAIN' | 'LOGIN' | 'SCRAM-SHA-256';
  /** With recipients and message: a transaction after the greeting, TLS and AUTH. */
  readonly sender?: string;
  readonly recipients?: readonly string[];
  readonly message?: string;
}

export type Reply = [code: number, text: string];

export interface PythonSmtpAnswer {
  /** The EHLO keywords with their parameters ("AUTH SCRAM-SHA-256 PLAIN LOGIN"). */
  readonly ehlo?: string[];
  readonly starttls?: Reply;
  readonly tls_version?: string;
  readonly peer_verified?: boolean;
  readonly ehlo_after_tls?: string[];
  readonly auth?: Reply;
  readonly mail?: Reply;
  readonly rcpt?: Reply[];
  readonly data?: Reply;
  /** What ended the conversation early: a refused connection, a certificate that does not verify... */
  readonly error?: string;
}

export async function pythonSmtp(request: PythonSmtpRequest): Promise<PythonSmtpAnswer> {
  const child = spawn(PYTHON, [CLIENT], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.end(JSON.stringify(request));
  const output = await childOutput(child);
  if (output.code !== 0) throw new Error(`python-smtp-client.py exited ${output.code}: ${output.stderr}`);
  return JSON.parse(output.stdout) as PythonSmtpAnswer;
}
