/**
 * The SMTP downstream as the daemon uses it (config in, Delivery or
 * SubmissionError out) against an in-process server that fails at each
 * step: a refusal, a dropped connection or a reply that comes too late, at
 * the greeting, EHLO, XFORWARD, MAIL, RCPT, DATA and the final dot. Each
 * ends in the outcome docs/submission-interface.md gives it, with that
 * outcome's exit codes; only a 2xx to the dot is a delivery.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { statusOf, SubmissionError, type Outcome } from '@mailsubmit/shared';
import { SmtpDownstream } from '../../../src/5-transport/smtp/smtp-downstream.ts';
import type { DeliveryRequest } from '../../../src/5-transport/downstream.ts';
import type { DownstreamConfig } from '../../../src/config/daemon-config.ts';
import { testConfig } from '../../support/test-config.ts';
import { FakeSmtpServer, type FakeServerOptions } from './fake-smtp-server.ts';
import { chunks, envelope, MESSAGE } from './test-envelopes.ts';
import { rejection } from '../../support/rejection.ts';

/** Deadlines short enough that a silent server is given up on at once. */
const DEADLINE_MS = 150;

const servers: FakeSmtpServer[] = [];
const downstreams: SmtpDownstream[] = [];
afterEach(async () => {
  await Promise.all(downstreams.splice(0).map((d) => d.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function setup(options: FakeServerOptions = {}): Promise<{ server: FakeSmtpServer; downstream: SmtpDownstream }> {
  const server = await FakeSmtpServer.start(options);
  servers.push(server);
  const downstream = downstreamTo(server.port);
  return { server, downstream };
}

function downstreamTo(port: number, poolSize = 1): SmtpDownstream {
  const config = testConfig({
    downstream: { transport: 'smtp', target: { kind: 'tcp', host: '127.0.0.1', port }, poolSize, heloName: 'client.test' },
    timeouts: { connect: 2_000, command: DEADLINE_MS, dataBlock: DEADLINE_MS, dataEnd: DEADLINE_MS },
  });
  const downstream = new SmtpDownstream(config.downstreams[0] as DownstreamConfig, config.timeouts);
  downstreams.push(downstream);
  return downstream;
}

function request(extra: Partial<DeliveryRequest> = {}): DeliveryRequest {
  return { envelope: envelope(), body: chunks(MESSAGE), eightBit: false, ...extra };
}

/** Where the server misbehaves: before it greets, or in answer to a command (`.` is the end of data). */
type Step = 'greeting' | 'EHLO' | 'XFORWARD' | 'MAIL' | 'RCPT' | 'DATA' | '.';
type Fault = { readonly reply: string } | 'drop' | 'hang';

/** A server that behaves at every step but `step`, where it does `fault`. */
function faultAt(step: Step, fault: Fault): FakeServerOptions {
  if (step === 'greeting') {
    if (fault === 'drop') return { greeting: null, closeAfterGreeting: true };
    if (fault === 'hang') return { greeting: null };
    // A server that refuses to greet closes the connection, as Postfix's 421 does.
    return { greeting: fault.reply, closeAfterGreeting: true };
  }
  const act = (session: { hangUp(): void }): string | null => {
    if (fault === 'drop') session.hangUp();
    return typeof fault === 'string' ? null : fault.reply;
  };
  if (step === '.') return { onMessage: (_message, session) => act(session) };
  return { onCommand: (line, session) => (line.toUpperCase().startsWith(step) ? act(session) : undefined) };
}

describe('a delivery', () => {
  it('is reported only after the 250 to the dot, with the queue id and the MTA\'s words', async () => {
    const { server, downstream } = await setup();
    const delivery = await downstream.deliver(request());
    expect(delivery).toEqual({ queueId: 'FAKE1', text: '250 2.0.0 Ok: queued as FAKE1', omitted: [] });
    const session = await server.session();
    expect(session.commands.map((c) => c.split(' ', 1)[0])).toEqual(['EHLO', 'XFORWARD', 'MAIL', 'RCPT', 'DATA']);
    expect(session.commands).toContain('XFORWARD SOURCE=REMOTE');
    expect(session.messages.map((m) => m.toString('latin1'))).toEqual(['Subject: test\r\n\r\nHello.\r\n.dot-stuffed line\r\n']);
  });

  it('says XFORWARD SOURCE=LOCAL for mail submitted on this host', async () => {
    const { server, downstream } = await setup();
    await downstream.deliver(request({ localSubmission: true }));
    expect((await server.session()).commands).toContain('XFORWARD SOURCE=LOCAL');
  });

  it('falls back to HELO and sends no XFORWARD when the server does not know EHLO', async () => {
    const { server, downstream } = await setup(faultAt('EHLO', { reply: '502 5.5.2 Error: command not recognized' }));
    expect((await downstream.deliver(request())).queueId).toBe('FAKE1');
    expect((await server.session()).commands.map((c) => c.split(' ', 1)[0])).toEqual(['EHLO', 'HELO', 'MAIL', 'RCPT', 'DATA']);
  });

  it('cannot connect: mta-unreachable', async () => {
    const server = await FakeSmtpServer.start();
    const { port } = server;
    await server.close();
    const error = await rejection(downstreamTo(port).deliver(request()));
    expect(error.outcome).toBe('mta-unreachable');
  });
});

describe('each refusal maps to its outcome and exit codes', () => {
  const cases: [Step, string, Outcome, number, number][] = [
    ['greeting', '421 4.3.2 Service shutting down', 'mta-tempfail', 75, 71],
    ['greeting', '554 5.7.1 No SMTP service here', 'mta-tempfail', 75, 71],
    ['EHLO', '421 4.7.0 Too many connections', 'mta-tempfail', 75, 71],
    ['XFORWARD', '550 5.7.0 Error: insufficient XFORWARD authorization', 'config', 78, 55],
    ['XFORWARD', '421 4.3.0 Try again', 'mta-tempfail', 75, 71],
    ['MAIL', '451 4.3.0 Temporary lookup failure', 'mta-tempfail', 75, 71],
    ['MAIL', '553 5.7.1 Sender address rejected', 'message-refused', 69, 31],
    ['MAIL', 'this is not an SMTP reply', 'mta-protocol', 75, 74],
    ['RCPT', '450 4.2.0 Mailbox busy', 'mta-tempfail', 75, 71],
    ['RCPT', '550 5.1.1 User unknown', 'recipient-refused', 67, 31],
    ['RCPT', '554 5.7.1 Relay access denied', 'message-refused', 69, 31],
    ['DATA', '451 4.3.0 Try again', 'mta-tempfail', 75, 71],
    ['DATA', '554 5.5.1 No valid recipients', 'message-refused', 69, 31],
    ['DATA', '250 2.0.0 Ok', 'mta-protocol', 75, 74],
    ['.', '451 4.3.0 Queue file write error', 'mta-tempfail', 75, 71],
    ['.', '552 5.3.4 Message size exceeds fixed limit', 'message-refused', 69, 31],
    ['.', '554 5.7.1 Rejected by content filter', 'message-refused', 69, 31],
  ];
  it.each(cases)('%s answered "%s": %s, exit %i, qmail-queue %i', async (step, reply, outcome, exitCode, qmailCode) => {
    const { downstream } = await setup(faultAt(step, { reply }));
    const error = await rejection(downstream.deliver(request()));
    expect(error.outcome).toBe(outcome);
    expect(statusOf(error.outcome).exitCode).toBe(exitCode);
    expect(statusOf(error.outcome).qmailCode).toBe(qmailCode);
    if (/^\d{3} /.test(reply)) expect(error.message).toContain(reply);
  });

  it('EHLO and then HELO refused: mta-tempfail (nothing about the message)', async () => {
    const { downstream } = await setup({ onCommand: (line) => (/^(EHLO|HELO) /.test(line) ? '554 5.7.1 Go away' : undefined) });
    const error = await rejection(downstream.deliver(request()));
    expect(error.outcome).toBe('mta-tempfail');
  });
});

describe('a dropped connection is never a delivery', () => {
  // Within a transaction and before DATA nothing of the message was sent: the attempt is made once more
  // on a new connection (a pooled one may have been closed just then). From DATA on the body has been
  // taken, and a second attempt would send what is left of it; a failed handshake is not retried.
  const attempts: [Step, number][] = [
    ['greeting', 1],
    ['EHLO', 1],
    ['XFORWARD', 2],
    ['MAIL', 2],
    ['RCPT', 2],
    ['DATA', 1],
    ['.', 1],
  ];
  it.each(attempts)('dropped instead of answering %s: mta-protocol (75, qmail-queue 74) after %i attempt(s)', async (step, connections) => {
    const { server, downstream } = await setup(faultAt(step, 'drop'));
    const error = await rejection(downstream.deliver(request()));
    expect(error.outcome).toBe('mta-protocol');
    expect(statusOf(error.outcome).exitCode).toBe(75);
    expect(statusOf(error.outcome).qmailCode).toBe(74);
    expect(server.sessions).toHaveLength(connections);
  });

  it('a connection dropped before MAIL once is retried, and the message delivered once', async () => {
    let drops = 0;
    const { server, downstream } = await setup({
      onCommand: (line, session) => {
        if (!line.startsWith('MAIL') || drops > 0) return undefined;
        drops += 1;
        session.hangUp();
        return null;
      },
    });
    expect((await downstream.deliver(request())).queueId).toBe('FAKE1');
    expect(server.sessions).toHaveLength(2);
    expect(server.sessions.flatMap((s) => s.messages)).toHaveLength(1);
  });
});

describe('a pooled connection found unfit when it is reused', () => {
  it('RSET refused: the message goes through a fresh connection, delivered once', async () => {
    const { server, downstream } = await setup({ onCommand: (line) => (line === 'RSET' ? '421 4.3.2 shutting down' : undefined) });
    expect((await downstream.deliver(request())).queueId).toBe('FAKE1');
    expect((await downstream.deliver(request())).queueId).toBe('FAKE1');
    expect(server.sessions).toHaveLength(2);
    expect((await server.session(0)).messages).toHaveLength(1);
    expect((await server.session(1)).messages).toHaveLength(1);
  });

  it('closed by the server while its RSET is owed: the message goes through a fresh connection', async () => {
    const { server, downstream } = await setup({
      onCommand: (line, session) => {
        if (line !== 'RSET') return undefined;
        session.hangUp();
        return null;
      },
    });
    await downstream.deliver(request());
    await downstream.deliver(request());
    expect(server.sessions).toHaveLength(2);
    expect(server.sessions.flatMap((s) => s.messages)).toHaveLength(2);
  });
});

describe('a caller gone while the connection is being opened', () => {
  it('ends the attempt at once with the caller\'s reason, not after the greeting timeout; nothing is sent', async () => {
    const server = await FakeSmtpServer.start({ greeting: null });
    servers.push(server);
    const config = testConfig({
      downstream: { transport: 'smtp', target: { kind: 'tcp', host: '127.0.0.1', port: server.port }, poolSize: 1, heloName: 'client.test' },
      // A greeting timeout (an hour) the test would never outlive.
      timeouts: { connect: 2_000, command: 3_600_000 },
    });
    const downstream = new SmtpDownstream(config.downstreams[0] as DownstreamConfig, config.timeouts);
    downstreams.push(downstream);
    const gone = new AbortController();
    const sending = downstream.deliver(request({ signal: gone.signal }));
    const session = await server.session();
    gone.abort(new SubmissionError('caller-gone', 'the helper went away'));
    const err = await rejection(sending);
    expect(err.outcome).toBe('caller-gone');
    expect(Buffer.concat(session.received).toString('latin1')).toBe('');
  });
});

describe('a reply that does not come in time', () => {
  const steps: Step[] = ['greeting', 'EHLO', 'XFORWARD', 'MAIL', 'RCPT', 'DATA', '.'];
  it.each(steps)('no answer to %s within the deadline: mta-timeout (75, qmail-queue 72)', async (step) => {
    const { downstream } = await setup(faultAt(step, 'hang'));
    const error = await rejection(downstream.deliver(request()));
    expect(error.outcome).toBe('mta-timeout');
    expect(statusOf(error.outcome).exitCode).toBe(75);
    expect(statusOf(error.outcome).qmailCode).toBe(72);
  });

  it('a 250 to the dot after the deadline counts for nothing, now or for the next message', async () => {
    let late: (() => void) | undefined;
    const { server, downstream } = await setup({
      onMessage: (_message, session) => {
        if (server.sessions.indexOf(session) > 0) return undefined;
        late = () => session.write('250 2.0.0 Ok: queued as LATE\r\n');
        return null;
      },
    });
    const error = await rejection(downstream.deliver(request()));
    expect(error.outcome).toBe('mta-timeout');
    late?.();
    const next = await downstream.deliver(request());
    expect(next.queueId).toBe('FAKE1');
    expect(server.sessions).toHaveLength(2);
  });
});
