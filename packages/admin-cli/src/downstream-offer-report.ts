/**
 * `mailsubmitctl config check --probe`: each downstream asked what it
 * offers, as the daemon would ask it (probeDownstreamOffer in the daemon's
 * package), and one block per downstream in the file's order: whether it
 * answered (or why not, in the daemon's log's words), its TLS, the AUTH
 * result, its capabilities, and a `warning:` for each thing the daemon
 * cannot pass on through it, as docs/integrations.md's table of missing
 * extensions describes. Texts from the server are shown through escapeText.
 * The AUTH secret is in none of it: only the mechanism or the refusal.
 */
import { escapeText, type ServerCapabilities } from '@mailsubmit/shared';
import { downstreamName, probeDownstreamOffer, type DaemonConfig, type DownstreamConfig, type DownstreamOffer } from '@mailsubmit/submit-daemon/admin';

export interface OfferReport {
  readonly text: string;
  /** The names of the downstreams the daemon could not hand mail to as configured. */
  readonly unusable: readonly string[];
}

/** The XFORWARD attributes the daemon sends (shared/smtp/xforward.ts), SOURCE last. */
const XFORWARD_ATTRIBUTES = ['NAME', 'ADDR', 'PORT', 'PROTO', 'HELO'] as const;

/** `secretOf`: the AUTH secret of a downstream with auth_secret_file, as the daemon reads it. */
export async function probeDownstreams(config: DaemonConfig, secretOf: (downstream: DownstreamConfig) => string | null): Promise<OfferReport> {
  const offers = await Promise.all(
    config.downstreams.map((downstream) => (downstream.transport === 'sendmail' ? null : probeDownstreamOffer(downstream, config.timeouts, secretOf(downstream)))),
  );
  const blocks: string[] = [];
  const unusable: string[] = [];
  config.downstreams.forEach((downstream, i) => {
    const offer = offers[i] ?? null;
    blocks.push(offerBlock(downstream, offer, config));
    if (offer !== null && (!offer.answered || offer.error !== null)) unusable.push(downstreamName(downstream));
  });
  return { text: blocks.join(''), unusable };
}

function offerBlock(downstream: DownstreamConfig, offer: DownstreamOffer | null, config: DaemonConfig): string {
  // What an unnamed downstream is called by: its target, or sendmail's path. Said once.
  const what = downstreamName({ ...downstream, name: null });
  const lines = [downstream.name === null ? `downstream ${what} (${downstream.transport}):` : `downstream "${downstream.name}" (${downstream.transport} ${what}):`];
  const field = (name: string, value: string) => lines.push(`  ${`${name}:`.padEnd(12)}${value}`);
  if (offer === null) {
    lines.push('  not probed: transport = "sendmail" runs a program; there is no server to ask');
    return `${lines.join('\n')}\n`;
  }
  if (!offer.answered) {
    field('answered', `no: ${escapeText(offer.error ?? 'no reason given')}`);
    return `${lines.join('\n')}\n`;
  }
  field('answered', 'yes');
  field('TLS', tlsText(downstream, offer));
  if (offer.tlsFailed === null) field('AUTH', authText(downstream, offer));
  const caps = offer.capabilities;
  if (caps === null) return `${lines.join('\n')}\n`;
  field('XFORWARD', caps.xforward.size > 0 ? `${[...caps.xforward].join(' ')}${downstream.xforward ? '' : ' (not used: xforward = false)'}` : 'not offered');
  field('DSN', yesNo(caps.dsn));
  field('SIZE', caps.size === null ? 'not announced' : caps.size === 0 ? 'announced without a limit' : `${caps.size} octets`);
  field('SMTPUTF8', yesNo(caps.smtpUtf8));
  field('8BITMIME', yesNo(caps.eightBitMime));
  field('PIPELINING', yesNo(caps.pipelining));
  for (const warning of losses(downstream, caps, config)) lines.push(`  warning: ${warning}`);
  return `${lines.join('\n')}\n`;
}

const yesNo = (on: boolean) => (on ? 'yes' : 'no');

function tlsText(downstream: DownstreamConfig, offer: DownstreamOffer): string {
  const level = `(tls = "${downstream.tls}")`;
  const { tls } = offer;
  if (offer.tlsFailed !== null) return `failed: ${escapeText(offer.tlsFailed)} ${level}`;
  if (tls !== null) {
    const verification = tls.verified ? `verified (${escapeText(tls.peerSubject)})` : `not verified: ${escapeText(tls.verifyError ?? 'unknown reason')}`;
    const pin = tls.pinMatched === true ? ', fingerprint pinned' : '';
    return `${tls.protocol} ${tls.cipher}, ${verification}${pin} ${level}`;
  }
  if (downstream.tls === 'none') return `none ${level}`;
  if (offer.tlsFailedBefore !== null) return `none: the handshake failed (${escapeText(offer.tlsFailedBefore)}), so mail goes in the clear ${level}`;
  return `none: STARTTLS not offered, so mail goes in the clear ${level}`;
}

function authText(downstream: DownstreamConfig, offer: DownstreamOffer): string {
  const offered = offer.capabilities === null ? '' : offer.capabilities.auth.size > 0 ? ` (offered: ${[...offer.capabilities.auth].join(' ')})` : ' (none offered)';
  const { auth } = offer;
  if (auth === null) return `not configured${offered}`;
  if ('refused' in auth) return `refused: ${escapeText(auth.refused)}`;
  return `logged in as ${escapeText(auth.loggedIn.username)} with ${auth.loggedIn.mechanism}${offered}`;
}

/** What the daemon cannot pass on through this downstream, as docs/integrations.md says it happens. */
function losses(downstream: DownstreamConfig, caps: ServerCapabilities, config: DaemonConfig): string[] {
  const found: string[] = [];
  if (downstream.xforward) {
    const missing = XFORWARD_ATTRIBUTES.filter((name) => !caps.xforward.has(name));
    if (caps.xforward.size === 0) {
      found.push("no XFORWARD: the callers' client attributes (client_name, client_address, ...) are not passed to the MTA (logged as omitted); its Received: and log name the daemon's connection");
    } else if (missing.length > 0) {
      found.push(`XFORWARD without ${missing.join(' ')}: those client attributes are not passed (logged as omitted)`);
    }
    if (takesSendmailDoor(downstream) && mtaCompletesHeaders(config) && !caps.xforward.has('SOURCE')) {
      found.push(
        "no XFORWARD SOURCE: the sendmail door's mail cannot be marked local, and the daemon leaves its missing Message-Id, Date and From to the MTA, " +
          'which adds them only if it rewrites headers for this client (Postfix: local_header_rewrite_clients); xforward = false has the daemon add them',
      );
    }
  }
  if (!caps.dsn) found.push("no DSN: callers' NOTIFY, ORCPT, RET and ENVID are not passed (logged as omitted); the MTA's defaults apply");
  const limit = config.limits.maxMessageOctets;
  if (caps.size !== null && caps.size > 0 && caps.size < limit) {
    found.push(`SIZE ${caps.size} is below limits.max_message_size (${limit}): a message between the two passes mailsubmit's checks and is refused by the MTA`);
  }
  if (!caps.smtpUtf8) found.push('no SMTPUTF8: mail whose sender or a recipient has a non-ASCII address is refused (69) before anything is sent');
  return found;
}

const takesSendmailDoor = (downstream: DownstreamConfig) => downstream.doors.length === 0 || downstream.doors.includes('sendmail');

/** The daemon's choice (3-intake/sendmail/sendmail-door.ts): the MTA completes the header only where every downstream of the door is SMTP with XFORWARD. */
function mtaCompletesHeaders(config: DaemonConfig): boolean {
  return config.downstreams.filter(takesSendmailDoor).every((d) => d.transport === 'smtp' && d.xforward);
}
