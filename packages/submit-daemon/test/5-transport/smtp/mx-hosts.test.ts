/**
 * target = "mx:DOMAIN": the MX hosts by preference (equal ones shuffled),
 * the domain itself without MX records, DNS failures and a null MX as
 * temporary failures naming the domain; each host tried in turn until one
 * greets, the connection's TLS name being that host's.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connectionSettingsOf, openDownstreamConnection } from '../../../src/5-transport/smtp/downstream-connection.ts';
import { connectToFirst, mxHosts, type MxResolver } from '../../../src/5-transport/smtp/mx-hosts.ts';
import { SmtpError } from '../../../src/5-transport/smtp/smtp-error.ts';
import type { SmtpConnection } from '../../../src/5-transport/smtp/smtp-connection.ts';
import type { DownstreamConfig } from '../../../src/config/daemon-config.ts';
import { rejection } from '../../support/rejection.ts';
import { testConfig } from '../../support/test-config.ts';
import { FakeSmtpServer } from './fake-smtp-server.ts';

const servers: FakeSmtpServer[] = [];
const connections: SmtpConnection[] = [];

afterEach(async () => {
  for (const conn of connections.splice(0)) conn.destroy();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

function resolving(records: { exchange: string; priority: number }[]): MxResolver {
  return async () => records;
}

function failing(code: string): MxResolver {
  return async () => {
    throw Object.assign(new Error(`queryMx ${code}`), { code });
  };
}

describe('mxHosts', () => {
  it('orders the MX hosts by preference, without their trailing dot', async () => {
    const hosts = await mxHosts('example.net', resolving([
      { exchange: 'backup.example.net.', priority: 20 },
      { exchange: 'mx1.example.net', priority: 10 },
    ]));
    expect(hosts).toEqual(['mx1.example.net', 'backup.example.net']);
  });

  it('shuffles hosts of equal preference', async () => {
    const records = [{ exchange: 'a.example.net', priority: 10 }, { exchange: 'b.example.net', priority: 10 }];
    expect(await mxHosts('example.net', resolving(records), (() => { const draws = [0.9, 0.1]; return () => draws.shift() ?? 0; })())).toEqual(['b.example.net', 'a.example.net']);
    expect(await mxHosts('example.net', resolving(records), (() => { const draws = [0.1, 0.9]; return () => draws.shift() ?? 0; })())).toEqual(['a.example.net', 'b.example.net']);
  });

  it('takes the domain itself when it has no MX record (RFC 5321 section 5.1)', async () => {
    expect(await mxHosts('example.net', failing('ENODATA'))).toEqual(['example.net']);
    expect(await mxHosts('example.net', resolving([]))).toEqual(['example.net']);
  });

  it('fails for now, naming the domain, when DNS cannot say, and for a null MX', async () => {
    const notFound = await rejection(mxHosts('nowhere.example', failing('ENOTFOUND')), SmtpError);
    expect(notFound.outcome).toBe('mta-unreachable');
    expect(notFound.message).toBe('cannot find the MX hosts of nowhere.example (ENOTFOUND)');
    const nullMx = await rejection(mxHosts('example.net', resolving([{ exchange: '.', priority: 0 }])), SmtpError);
    expect(nullMx.message).toBe('example.net publishes a null MX: it takes no mail');
  });
});

describe('connecting through the MX hosts', () => {
  it('tries each host in turn and keeps the first that greets', async () => {
    const tried: string[] = [];
    const conn = await connectToFirst(['a', 'b', 'c'], async (host) => {
      tried.push(host);
      if (host !== 'b') throw new SmtpError('ERR_SMTP_CONNECT', 'mta-unreachable', `cannot connect to ${host}`);
      return { host } as unknown as SmtpConnection;
    });
    expect(tried).toEqual(['a', 'b']);
    expect(conn).toEqual({ host: 'b' });
    const last = await rejection(connectToFirst(['a', 'c'], async (host) => { throw new SmtpError('ERR_SMTP_CONNECT', 'mta-unreachable', `cannot connect to ${host}`); }), SmtpError);
    expect(last.message).toBe('cannot connect to c');
  });

  it('reaches a real server at the second MX host when nothing listens at the first', async () => {
    const server = await FakeSmtpServer.start({});
    servers.push(server);
    const config = testConfig().downstreams[0] as DownstreamConfig;
    const settings = connectionSettingsOf({ ...config, heloName: 'client.test' }, testConfig().timeouts, null);
    // 127.0.0.2 is loopback too, with nothing listening on the server's port.
    const conn = await openDownstreamConnection({ kind: 'mx', domain: 'example.net', port: server.port }, settings, resolving([
      { exchange: '127.0.0.1', priority: 20 },
      { exchange: '127.0.0.2', priority: 10 },
    ]));
    connections.push(conn);
    expect(conn.usable).toBe(true);
    expect(conn.capabilities.pipelining).toBe(true);
  });
});
