/**
 * SMTP AUTH (RFC 4954) on a connection, after the EHLO that counts (the
 * second one when STARTTLS ran): the first mechanism of the administrator's
 * list that the server announces, its exchange carried as base64 in 334
 * challenges and response lines, until 235 or a refusal.
 *
 * Every failure here is temporary for the caller (exit 75, never 5xx):
 * a wrong secret or a missing mechanism is the administrator's to fix, and
 * the message itself was never offered. The outcome is 'mta-protocol' ("the
 * conversation with the MTA failed"), as for the TLS failures before it:
 * 'mta-tempfail' reads "refused the message for now", which no message was;
 * 'config' would be 78; and replyOutcome() is not used, since it turns a
 * 5xx into a permanent refusal.
 *
 * The secret is never in what this side says about the exchange: lines
 * carrying it are shown as "AUTH <mechanism>" (or "... response") in
 * errors and timeouts, and a server reply that echoes it is redacted.
 */
import { describeReply, makeReply, MAX_COMMAND_LINE_OCTETS, type ServerCapabilities, type SmtpReply } from '@mailsubmit/shared';
import { DEFAULT_SASL_MECHANISMS, SaslFailure, type SaslClient, type SaslFailureKind, type SaslMechanismName } from './sasl-mechanism.ts';
import { SaslLoginClient } from './sasl-login.ts';
import { SaslPlainClient } from './sasl-plain.ts';
import { SaslScramSha256Client } from './sasl-scram-sha-256.ts';
import { SmtpError, type SmtpErrorCode } from './smtp-error.ts';

export interface SmtpAuth {
  readonly username: string;
  readonly secret: string;
  /** The mechanisms allowed, in order of preference; default SCRAM-SHA-256, PLAIN, LOGIN. */
  readonly mechanisms?: readonly SaslMechanismName[];
  /** Authenticate on a connection without TLS (the secret, or with SCRAM a proof, crosses in the clear). */
  readonly allowWithoutTls: boolean;
}

/** What a successful AUTH leaves for the log line. */
export interface AuthFacts {
  readonly mechanism: SaslMechanismName;
  readonly username: string;
}

/** One line out and its reply; `shownAs` is all that errors, timeouts and logs may show of the line. */
export type AuthLineSender = (line: string, shownAs: string) => Promise<SmtpReply>;

export interface AuthSession {
  readonly capabilities: ServerCapabilities;
  readonly tlsActive: boolean;
}

// RFC 4954 section 4: an AUTH command with its initial response fits in 512
// octets; a longer response is sent after the server's empty 334 instead.
const MAX_AUTH_LINE_OCTETS = 512;
// No mechanism here needs more than three challenges; a server that keeps asking is looping.
const MAX_CHALLENGES = 5;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
// Shorter strings would be found by chance in ordinary reply text.
const MIN_REDACTED_LENGTH = 4;

const FAILURE_CODES: Readonly<Record<SaslFailureKind, SmtpErrorCode>> = {
  malformed: 'ERR_SMTP_AUTH_BAD_CHALLENGE',
  'server-unverified': 'ERR_SMTP_AUTH_SERVER_UNVERIFIED',
  refused: 'ERR_SMTP_AUTH_REFUSED',
  'secret-unusable': 'ERR_SMTP_AUTH_SECRET_UNUSABLE',
};

function saslClient(mechanism: SaslMechanismName, auth: SmtpAuth): SaslClient {
  switch (mechanism) {
    case 'SCRAM-SHA-256':
      return new SaslScramSha256Client(auth.username, auth.secret);
    case 'PLAIN':
      return new SaslPlainClient(auth.username, auth.secret);
    case 'LOGIN':
      return new SaslLoginClient(auth.username, auth.secret);
  }
}

/** The forms in which the secret could come back in a server's reply text. */
function secretForms(auth: SmtpAuth): string[] {
  const plainMessage = new SaslPlainClient(auth.username, auth.secret).initialResponse();
  const forms = [auth.secret, Buffer.from(auth.secret, 'utf8').toString('base64'), plainMessage.toString('base64')];
  return forms.filter((form) => form.length >= MIN_REDACTED_LENGTH);
}

class AuthExchange {
  private readonly secrets: string[];

  constructor(
    private readonly auth: SmtpAuth,
    private readonly mechanism: SaslMechanismName | null,
  ) {
    this.secrets = secretForms(auth);
  }

  redact(text: string): string {
    let out = text;
    for (const form of this.secrets) out = out.split(form).join('[secret]');
    return out;
  }

  error(code: SmtpErrorCode, detail: string, reply?: SmtpReply): SmtpError {
    const what = this.mechanism === null ? 'AUTH' : `AUTH ${this.mechanism}`;
    const safeReply = reply === undefined ? undefined : makeReply(reply.code, reply.lines.map((line) => this.redact(line)));
    return new SmtpError(code, 'mta-protocol', this.redact(detail), { stage: 'ehlo', command: what, reply: safeReply });
  }

  refused(reply: SmtpReply): SmtpError {
    return this.error('ERR_SMTP_AUTH_REFUSED', `the MTA refused the credentials for ${this.auth.username}: ${describeReply(reply)}`, reply);
  }

  failed(failure: unknown): SmtpError {
    if (!(failure instanceof SaslFailure)) throw failure;
    const detail =
      failure.kind === 'refused'
        ? `the MTA refused the credentials for ${this.auth.username}: ${failure.message}`
        : `${this.mechanism ?? 'AUTH'} as ${this.auth.username}: ${failure.message}`;
    return this.error(FAILURE_CODES[failure.kind], detail);
  }
}

/** The first allowed mechanism the server announces, or an error that names what each side has. */
function chooseMechanism(auth: SmtpAuth, offered: ReadonlySet<string>): SaslMechanismName {
  const allowed = auth.mechanisms ?? DEFAULT_SASL_MECHANISMS;
  const chosen = allowed.find((mechanism) => offered.has(mechanism));
  if (chosen !== undefined) return chosen;
  const exchange = new AuthExchange(auth, null);
  if (offered.size === 0) throw exchange.error('ERR_SMTP_AUTH_UNAVAILABLE', `the MTA offers no AUTH, and ${auth.username} is to log in`);
  throw exchange.error('ERR_SMTP_AUTH_UNAVAILABLE', `the MTA offers AUTH ${[...offered].join(' ')}, none of the allowed ${allowed.join(' ')}`);
}

/** Logs in as `auth.username`; rejects with SmtpError (outcome mta-protocol) on any failure. */
export async function authenticate(send: AuthLineSender, auth: SmtpAuth, session: AuthSession): Promise<AuthFacts> {
  if (!session.tlsActive && !auth.allowWithoutTls) {
    throw new AuthExchange(auth, null).error(
      'ERR_SMTP_AUTH_NEEDS_TLS',
      `TLS is not active on this connection, and AUTH as ${auth.username} is allowed only under TLS (nothing of the secret was sent)`,
    );
  }
  const mechanism = chooseMechanism(auth, session.capabilities.auth);
  const exchange = new AuthExchange(auth, mechanism);
  const client = saslClient(mechanism, auth);
  const command = `AUTH ${mechanism}`;

  const initial = client.initialResponse();
  // RFC 4954 section 4: an empty initial response is written "=".
  const withInitial = initial === null ? command : `${command} ${initial.length === 0 ? '=' : initial.toString('base64')}`;
  let pending = Buffer.byteLength(withInitial) > MAX_AUTH_LINE_OCTETS ? initial : null;
  let line = pending === null ? withInitial : command;
  let shownAs = command;

  for (let challenges = 0; ; challenges += 1) {
    // The connection's own check would throw a bare error; say which setting is at fault.
    if (Buffer.byteLength(line) > MAX_COMMAND_LINE_OCTETS) {
      throw exchange.error('ERR_SMTP_AUTH_SECRET_UNUSABLE', `${mechanism} as ${auth.username}: a response is over the ${MAX_COMMAND_LINE_OCTETS}-octet line limit (the username or secret is too long)`);
    }
    const reply = await send(line, shownAs);
    if (reply.code === 235) {
      try {
        client.finish();
      } catch (failure) {
        throw exchange.failed(failure);
      }
      return { mechanism, username: auth.username };
    }
    if (reply.code !== 334) throw exchange.refused(reply);
    if (challenges === MAX_CHALLENGES) throw exchange.error('ERR_SMTP_AUTH_BAD_CHALLENGE', `${mechanism} as ${auth.username}: the MTA sent more than ${MAX_CHALLENGES} challenges`);

    const text = (reply.lines[0] ?? '').trim();
    shownAs = `${command} response`;
    if (pending !== null && text === '') {
      line = pending.toString('base64');
      pending = null;
      continue;
    }
    if (!BASE64.test(text)) throw exchange.error('ERR_SMTP_AUTH_BAD_CHALLENGE', `${mechanism} as ${auth.username}: the MTA's challenge is not base64`);
    try {
      line = (await client.respond(Buffer.from(text, 'base64'))).toString('base64');
    } catch (failure) {
      throw exchange.failed(failure);
    }
  }
}
