/**
 * How the daemon connects to one [downstream] table: the settings every
 * connection shares (protocol, helo name, TLS policy, AUTH, timeouts) and
 * where it connects: a Unix socket, host:port (the name looked up at each
 * connection), or a domain's MX hosts tried in turn (mx-hosts.ts). The
 * pool opens its connections here, and `mailsubmitctl config check
 * --probe` asks the same way (downstream-offer.ts).
 */
import type { DaemonConfig, DownstreamConfig, DownstreamTarget } from '../../config/daemon-config.ts';
import { connectToFirst, mxHosts, type MxResolver } from './mx-hosts.ts';
import type { SaslMechanismName } from './sasl-mechanism.ts';
import { SmtpConnection, type SmtpConnectionOptions } from './smtp-connection.ts';
import type { TlsPolicy } from './tls-policy.ts';

/** Everything but where to connect. */
export type ConnectionSettings = Omit<SmtpConnectionOptions, 'target'>;

/** `secret`: the AUTH password read from auth_secret_file; null without AUTH. */
export function connectionSettingsOf(downstream: DownstreamConfig, timeouts: DaemonConfig['timeouts'], secret: string | null): ConnectionSettings {
  const command = downstream.commandTimeout ?? timeouts.command;
  return {
    protocol: downstream.transport === 'lmtp' ? 'lmtp' : 'smtp',
    heloName: downstream.heloName,
    tls: tlsPolicyOf(downstream),
    ...(downstream.authUsername !== null && secret !== null
      ? { auth: { username: downstream.authUsername, secret, mechanisms: downstream.authMechanisms as SaslMechanismName[], allowWithoutTls: downstream.authWithoutTls } }
      : {}),
    timeouts: {
      connect: downstream.connectTimeout ?? timeouts.connect,
      greeting: command,
      ehlo: command,
      xforward: command,
      mail: command,
      rcpt: command,
      dataInit: command,
      dataBlock: timeouts.dataBlock,
      dataEnd: timeouts.dataEnd,
      rset: command,
      quit: command,
    },
  };
}

/** A connection that has greeted and answered EHLO (STARTTLS and AUTH done as configured); rejects with SmtpError. */
export async function openDownstreamConnection(target: DownstreamTarget, settings: ConnectionSettings, resolveMx?: MxResolver): Promise<SmtpConnection> {
  switch (target.kind) {
    case 'unix':
      return SmtpConnection.open({ ...settings, target: { path: target.path } });
    case 'tcp':
      return SmtpConnection.open({ ...settings, target: { host: target.host, port: target.port } });
    case 'mx':
      return connectToFirst(await mxHosts(target.domain, resolveMx), (host) => SmtpConnection.open({ ...settings, target: { host, port: target.port } }));
  }
}

/** The [downstream] table's tls keys as the connection's policy. */
function tlsPolicyOf(downstream: DownstreamConfig): TlsPolicy {
  return {
    level: downstream.tls,
    minVersion: downstream.tlsMinVersion,
    ...(downstream.tlsCaFile !== null ? { caFile: downstream.tlsCaFile } : {}),
    ...(downstream.tlsFingerprints.length > 0 ? { pins: downstream.tlsFingerprints } : {}),
    ...(downstream.tlsServerName !== null ? { serverName: downstream.tlsServerName } : {}),
  };
}
