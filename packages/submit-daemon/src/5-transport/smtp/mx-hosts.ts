/**
 * target = "mx:DOMAIN": the hosts a relay for DOMAIN is reached at, as an
 * MTA finds them (RFC 5321 section 5.1): its MX records by preference,
 * hosts of equal preference in random order (spreading the load as the
 * domain's owner meant), and the domain itself when it has no MX record.
 * Each host is tried in turn until one greets; the connection's TLS name
 * is the host's (Postfix's "verify" matches the MX host name too).
 */
import { promises as dns } from 'node:dns';
import { SmtpError } from './smtp-error.ts';
import type { SmtpConnection } from './smtp-connection.ts';

export type MxResolver = (domain: string) => Promise<readonly { readonly exchange: string; readonly priority: number }[]>;

/** The hosts to try, in order; rejects with an SmtpError (mta-unreachable) naming the DNS problem. */
export async function mxHosts(domain: string, resolveMx: MxResolver = (d) => dns.resolveMx(d), random: () => number = Math.random): Promise<string[]> {
  let records;
  try {
    records = await resolveMx(domain);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // ENODATA: the domain exists without MX records; its own address is the mail host.
    if (code === 'ENODATA') return [domain];
    throw new SmtpError('ERR_SMTP_CONNECT', 'mta-unreachable', `cannot find the MX hosts of ${domain} (${code ?? String(err)})`, { stage: 'connect', cause: err });
  }
  // RFC 7505: a single MX of "." says the domain takes no mail.
  if (records.length === 0 || records.every((r) => r.exchange === '' || r.exchange === '.')) {
    if (records.length === 0) return [domain];
    throw new SmtpError('ERR_SMTP_CONNECT', 'mta-unreachable', `${domain} publishes a null MX: it takes no mail`, { stage: 'connect' });
  }
  return records
    .map((r) => ({ host: r.exchange.replace(/\.$/, ''), priority: r.priority, draw: random() }))
    .sort((a, b) => a.priority - b.priority || a.draw - b.draw)
    .map((r) => r.host);
}

/** The first of `hosts` that greets; the last failure when none does. */
export async function connectToFirst(hosts: readonly string[], open: (host: string) => Promise<SmtpConnection>): Promise<SmtpConnection> {
  let last: unknown = new SmtpError('ERR_SMTP_CONNECT', 'mta-unreachable', 'no host to connect to', { stage: 'connect' });
  for (const host of hosts) {
    try {
      return await open(host);
    } catch (err) {
      last = err;
    }
  }
  throw last;
}
