/**
 * What one SMTP or LMTP downstream offers the daemon, asked as the daemon
 * asks it: the same target, helo name, TLS policy, AUTH and timeouts
 * (downstream-connection.ts), greeting, EHLO/LHLO, STARTTLS and AUTH where the
 * configuration says so, then QUIT. No MAIL FROM: nothing is delivered.
 * For `mailsubmitctl config check --probe`.
 *
 * When the login fails, a second connection without AUTH (same TLS) reads
 * what the server announces, so the report still shows its capabilities.
 */
import type { ServerCapabilities } from '@mailsubmit/shared';
import type { DaemonConfig, DownstreamConfig } from '../../config/daemon-config.ts';
import { connectionSettingsOf, openDownstreamConnection, type ConnectionSettings } from './downstream-connection.ts';
import type { SmtpConnection } from './smtp-connection.ts';
import { isSmtpError } from './smtp-error.ts';
import type { AuthFacts } from './smtp-auth.ts';
import type { TlsFacts } from './starttls-upgrade.ts';

export type AuthOutcome = { readonly loggedIn: AuthFacts } | { readonly refused: string };

export interface DownstreamOffer {
  /** The server greeted and answered EHLO/LHLO (under STARTTLS where the policy asks for it). */
  readonly answered: boolean;
  /** Why the daemon could not hand mail to it, in the words of the daemon's log; null when it could. */
  readonly error: string | null;
  /** What the last EHLO/LHLO announced (the one under TLS after STARTTLS); null when it did not answer. */
  readonly capabilities: ServerCapabilities | null;
  /** The TLS the connection has; null in the clear. */
  readonly tls: TlsFacts | null;
  /** tls = "may": why the handshake failed before the connection went on in the clear. */
  readonly tlsFailedBefore: string | null;
  /** Why STARTTLS failed where the policy requires it (the connection was given up); null otherwise. */
  readonly tlsFailed: string | null;
  /** null: no AUTH configured (or the server did not answer). */
  readonly auth: AuthOutcome | null;
}

const AUTH_FAILURE = /^ERR_SMTP_AUTH_/;
const TLS_FAILURE = /^ERR_SMTP_TLS_/;
const NOTHING = { capabilities: null, tls: null, tlsFailedBefore: null, tlsFailed: null, auth: null } as const;

/** `secret`: the AUTH password (config/auth-secret.ts), null without AUTH. Never rejects. */
export async function probeDownstreamOffer(downstream: DownstreamConfig, timeouts: DaemonConfig['timeouts'], secret: string | null): Promise<DownstreamOffer> {
  const options = connectionSettingsOf(downstream, timeouts, secret);
  try {
    const conn = await openDownstreamConnection(downstream.target, options);
    const auth = conn.authenticated;
    return await described(conn, auth === null ? null : { loggedIn: auth }, null);
  } catch (err) {
    const reason = (err as Error).message;
    const code = isSmtpError(err) ? err.code : '';
    // The server greeted and answered EHLO: what failed was STARTTLS, or the login.
    if (TLS_FAILURE.test(code)) return { ...NOTHING, answered: true, error: reason, tlsFailed: reason };
    if (AUTH_FAILURE.test(code) && options.auth !== undefined) return withoutAuth(downstream, options, reason);
    return { ...NOTHING, answered: false, error: reason };
  }
}

/** After a failed login: what the server announces to a client that does not log in. */
async function withoutAuth(downstream: DownstreamConfig, options: ConnectionSettings, refused: string): Promise<DownstreamOffer> {
  const { auth: _auth, ...rest } = options;
  try {
    return await described(await openDownstreamConnection(downstream.target, rest), { refused }, refused);
  } catch {
    // It answered a moment ago: report the refusal without its capabilities.
    return { ...NOTHING, answered: true, error: refused, auth: { refused } };
  }
}

async function described(conn: SmtpConnection, auth: AuthOutcome | null, error: string | null): Promise<DownstreamOffer> {
  const offer: DownstreamOffer = { answered: true, error, capabilities: conn.capabilities, tls: conn.tls, tlsFailedBefore: conn.tlsFailedBefore, tlsFailed: null, auth };
  await conn.quit();
  return offer;
}
