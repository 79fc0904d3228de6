/**
 * One submission from a checked request to the MTA's verdict, for each
 * front door (native envelope block, sendmail command line, qmail-queue
 * envelope fd), with the caller's input on a real fd and the MTA played by
 * an in-process Downstream. Every case also checks that the job closed
 * every fd it was given, whatever the outcome.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseSendmailCommand, SubmissionError, type CallerIdentity, type Grant, type QmailClientFacts, type SendmailCommand } from '@mailsubmit/shared';
import { SubmissionJob, type JobResult } from '../src/submission-job.ts';
import { nativeIntake } from '../src/3-intake/native/native-door.ts';
import { qmailIntake } from '../src/3-intake/qmail-queue/qmail-queue-door.ts';
import { sendmailIntake } from '../src/3-intake/sendmail/sendmail-door.ts';
import { LOOKAHEAD_OCTETS } from '../src/4-validate/message-lookahead.ts';
import { Semaphore } from '../src/util/semaphore.ts';
import { SpoolSpace } from '../src/3-intake/spool-space.ts';
import { DEFAULT_MEMORY_OCTETS } from '../src/3-intake/held-message.ts';
import type { DaemonConfig } from '../src/config/daemon-config.ts';
import { CallerFds, openFdCount } from './support/caller-fds.ts';
import { FakeDownstream, type TransactionStep } from './support/fake-downstream.ts';
import { testConfig } from './support/test-config.ts';

const spoolDirectory = mkdtempSync(join(tmpdir(), 'submission-job-spool-'));
afterAll(() => rmSync(spoolDirectory, { recursive: true, force: true }));

const CALLER: CallerIdentity = { uid: process.getuid?.() ?? 0, userName: 'alice', groupNames: ['alice'], fullName: 'Alice Example' };
const OWN_SENDER: Grant = { matched: [], capabilities: new Set(), senders: [{ kind: 'own' }] };

const NATIVE_INPUT = 'sender: alice@example.org\nrecipient: bob@example.com\n\nSubject: hi\n\nHello.\n.leading dot\n';
const NATIVE_BODY = 'Subject: hi\r\n\r\nHello.\r\n..leading dot\r\n';
const QMAIL_ENVELOPE = 'Falice@example.org\0Tbob@example.com\0Tcarol@example.com\0\0';

let fds: CallerFds;
let fdsBefore: number;

beforeEach(() => {
  fds = new CallerFds();
  fdsBefore = openFdCount();
});

afterEach(() => {
  fds.cleanup();
});

/** The qmail-queue door's second fd and the client facts from the caller's environment. */
interface QmailInput {
  readonly envelopeFd: number;
  readonly client: QmailClientFacts;
}

interface JobSetup {
  readonly downstream?: FakeDownstream;
  readonly grant?: Grant;
  readonly config?: DaemonConfig;
  readonly qmail?: QmailInput;
  readonly sendmail?: SendmailCommand;
  readonly spool?: SpoolSpace;
}

function job(inputFd: number, setup: JobSetup = {}): { job: SubmissionJob; downstream: FakeDownstream } {
  const downstream = setup.downstream ?? new FakeDownstream();
  const context = {
    config: setup.config ?? testConfig({ spoolDirectory }),
    downstream,
    fileReads: new Semaphore(4),
    caller: CALLER,
    grant: setup.grant ?? OWN_SENDER,
    ...(setup.spool !== undefined ? { spool: setup.spool } : {}),
  };
  const intake = setup.qmail !== undefined ? qmailIntake(setup.qmail.envelopeFd, setup.qmail.client) : setup.sendmail !== undefined ? sendmailIntake(setup.sendmail) : nativeIntake();
  return { job: new SubmissionJob(context, inputFd, intake), downstream };
}

/**
 * Every fd the test made for the job (read ends, files) and every fd the job
 * opened (copies, spool files) is closed again. Some closes finish a turn
 * after run() (fs streams and spool files close asynchronously): polled.
 */
async function expectFdsReleased(): Promise<void> {
  await expect.poll(openFdCount).toBe(fdsBefore);
}

async function nativeRun(input: string, setup: JobSetup = {}): Promise<{ result: JobResult; downstream: FakeDownstream }> {
  const pipe = await fds.pipe();
  const started = job(pipe.reader, setup);
  // Written while the job reads: a long input does not fit in the pipe.
  void pipe.write(input).then(() => pipe.end(), () => undefined);
  const result = await started.job.run();
  pipe.destroy();
  return { result, downstream: started.downstream };
}

describe('the native front door', () => {
  it('delivers the envelope and the encoded message, and says the queue id', async () => {
    const { result, downstream } = await nativeRun(NATIVE_INPUT);
    expect(result).toMatchObject({ outcome: 'ok', text: 'queued as FAKE1', queueId: 'FAKE1', mtaText: '250 2.0.0 Ok: queued as FAKE1' });
    const [delivery] = downstream.deliveries;
    expect(downstream.deliveries).toHaveLength(1);
    expect(delivery?.request.envelope.sender.text).toBe('alice@example.org');
    expect(delivery?.request.envelope.recipients.map((r) => r.address.text)).toEqual(['bob@example.com']);
    expect(delivery?.request.localSubmission).toBeUndefined();
    expect(delivery?.request.eightBit).toBe(false);
    expect(delivery?.message?.toString('latin1')).toBe(NATIVE_BODY);
    await expectFdsReleased();
  });

  it('reads a regular file as well as a pipe', async () => {
    const started = job(fds.file(NATIVE_INPUT));
    const result = await started.job.run();
    expect(result.outcome).toBe('ok');
    expect(started.downstream.committed[0]?.message?.toString('latin1')).toBe(NATIVE_BODY);
    await expectFdsReleased();
  });

  it('refuses a sender the caller may not use before the MTA hears of it', async () => {
    const { result, downstream } = await nativeRun(NATIVE_INPUT.replace('alice@', 'mallory@'));
    expect(result.outcome).toBe('attribute-not-permitted');
    expect(result.text).toBe('not permitted to assert this attribute: attribute "sender": may not use the envelope sender <mallory@example.org>');
    expect(downstream.deliveries).toHaveLength(0);
    await expectFdsReleased();
  });

  it('refuses a caller whose grant allows no sender at all without reading its input', async () => {
    const pipe = await fds.pipe(NATIVE_INPUT);
    const started = job(pipe.reader, { grant: { ...OWN_SENDER, senders: [] } });
    const result = await started.job.run();
    expect(result.outcome).toBe('attribute-not-permitted');
    expect(result.text).toMatch(/no envelope sender is permitted to alice$/);
    expect(started.downstream.deliveries).toHaveLength(0);
    await expectFdsReleased();
  });

  it('refuses client attributes without the client capability', async () => {
    const { result, downstream } = await nativeRun(`client_address: 192.0.2.1\n${NATIVE_INPUT}`);
    expect(result.outcome).toBe('attribute-not-permitted');
    expect(result.text).toMatch(/asserting client_address needs the "client" capability/);
    expect(downstream.deliveries).toHaveLength(0);
    await expectFdsReleased();
  });

  it('refuses a malformed envelope naming its line, and opens no transaction', async () => {
    const { result, downstream } = await nativeRun('sender: alice@example.org\nrecipient: bob@@example.com\n\nbody\n');
    expect(result.outcome).toBe('recipient-syntax');
    expect(result.text).toMatch(/line 2/);
    expect(downstream.deliveries).toHaveLength(0);
    await expectFdsReleased();
  });

  it('refuses a message over the size limit, and never gives it to the MTA', async () => {
    const config = testConfig({ spoolDirectory, limits: { maxMessageOctets: 100 } });
    const { result, downstream } = await nativeRun(`${NATIVE_INPUT}${'x'.repeat(200)}\n`, { config });
    expect(result.outcome).toBe('over-limit');
    expect(downstream.committed).toHaveLength(0);
    await expectFdsReleased();
  });

  it('abandons a message that goes over the limit after the MTA has been given its first part', async () => {
    const limit = LOOKAHEAD_OCTETS * 2;
    const config = testConfig({ spoolDirectory, limits: { maxMessageOctets: limit } });
    const line = `${'y'.repeat(99)}\n`;
    const { result, downstream } = await nativeRun(`${NATIVE_INPUT}${line.repeat(Math.ceil((limit * 1.5) / line.length))}`, { config });
    expect(result.outcome).toBe('over-limit');
    const [delivery] = downstream.deliveries;
    expect(delivery?.bodyOctets).toBeGreaterThanOrEqual(LOOKAHEAD_OCTETS);
    expect(delivery?.committed).toBe(false);
    expect(delivery?.failure).toMatchObject({ outcome: 'over-limit' });
    await expectFdsReleased();
  });

  it('ends with input-timeout when the caller stops writing, and closes the pipe', async () => {
    const config = testConfig({ spoolDirectory, timeouts: { inputIdle: 100 } });
    const pipe = await fds.pipe();
    await pipe.write('sender: alice@example.org\n');
    const started = job(pipe.reader, { config });
    const result = await started.job.run();
    expect(result.outcome).toBe('input-timeout');
    expect(started.downstream.deliveries).toHaveLength(0);
    await pipe.end();
    await expectFdsReleased();
  });
});

describe('the MTA refusing or failing at each step', () => {
  const cases: [TransactionStep, string, string][] = [
    ['mail', '451 4.3.0 try later', 'mta-tempfail'],
    ['mail', '553 5.7.1 sender rejected', 'message-refused'],
    ['rcpt', '450 4.2.0 mailbox busy', 'mta-tempfail'],
    ['rcpt', '550 5.1.1 no such user', 'recipient-refused'],
    ['data', '451 4.3.0 no DATA now', 'mta-tempfail'],
    ['data', '554 5.5.1 no valid recipients', 'message-refused'],
    ['dot', '452 4.3.1 insufficient storage', 'mta-tempfail'],
    ['dot', '554 5.7.1 spam', 'message-refused'],
  ];
  it.each(cases)('%s answered %s ends in %s', async (at, reply, outcome) => {
    const downstream = new FakeDownstream({ at, fault: { reply } });
    const { result } = await nativeRun(NATIVE_INPUT, { downstream });
    expect(result.outcome).toBe(outcome);
    expect(result.text).toContain(reply);
    expect(result.queueId).toBeUndefined();
    expect(downstream.committed).toHaveLength(0);
    await expectFdsReleased();
  });

  it.each(['mail', 'rcpt', 'data', 'dot'] as const)('a connection lost at %s is a temporary failure', async (at) => {
    const downstream = new FakeDownstream({ at, fault: 'drop' });
    const { result } = await nativeRun(NATIVE_INPUT, { downstream });
    expect(result.outcome).toBe('mta-protocol');
    expect(downstream.committed).toHaveLength(0);
    await expectFdsReleased();
  });
});

describe('the caller going away', () => {
  it('mid-read: the MTA has the first part, the transaction is abandoned without the dot', async () => {
    const pipe = await fds.pipe();
    const started = job(pipe.reader);
    const running = started.job.run();
    const line = `${'z'.repeat(99)}\n`;
    const writing = pipe.write(NATIVE_INPUT + line.repeat(Math.ceil((LOOKAHEAD_OCTETS * 1.2) / line.length)));
    const delivery = await started.downstream.firstDelivery();
    started.job.abort(new SubmissionError('caller-gone', 'the helper closed the connection'));
    const result = await running;
    expect(result).toMatchObject({ outcome: 'caller-gone', text: 'the caller went away: the helper closed the connection' });
    expect(delivery.committed).toBe(false);
    expect(delivery.request.signal?.aborted).toBe(true);
    pipe.destroy();
    await writing.catch(() => undefined);
    await expectFdsReleased();
  });

  it('before the message is complete: nothing reaches the MTA', async () => {
    const pipe = await fds.pipe();
    await pipe.write('sender: alice@example.org\nrecipient: bob@example.com\n\nSubject: half');
    const started = job(pipe.reader);
    const running = started.job.run();
    setImmediate(() => started.job.abort(new SubmissionError('caller-gone', 'gone')));
    const result = await running;
    expect(result.outcome).toBe('caller-gone');
    expect(started.downstream.deliveries).toHaveLength(0);
    await pipe.end();
    await expectFdsReleased();
  });

  it('while the MTA does not answer the dot: the wait ends with the caller', async () => {
    const downstream = new FakeDownstream({ at: 'dot', fault: 'hang' });
    const pipe = await fds.pipe(NATIVE_INPUT);
    const started = job(pipe.reader, { downstream });
    const running = started.job.run();
    const delivery = await downstream.firstDelivery();
    started.job.abort(new SubmissionError('caller-gone', 'gone'));
    const result = await running;
    expect(result.outcome).toBe('caller-gone');
    expect(delivery.message?.toString('latin1')).toBe(NATIVE_BODY);
    expect(delivery.committed).toBe(false);
    await expectFdsReleased();
  });
});

describe('the sendmail front door', () => {
  const sendmail = (...args: string[]): SendmailCommand => parseSendmailCommand(args);

  it('takes the recipients from the command line and the sender from the caller, as local mail', async () => {
    const pipe = await fds.pipe('Subject: hi\n\nHello.\n');
    const started = job(pipe.reader, { sendmail: sendmail('-i', 'bob@example.com') });
    const result = await started.job.run();
    expect(result.outcome).toBe('ok');
    const [delivery] = started.downstream.committed;
    expect(delivery?.request.envelope.sender.text).toBe('alice');
    expect(delivery?.request.envelope.recipients.map((r) => r.address.text)).toEqual(['bob@example.com']);
    expect(delivery?.request.localSubmission).toBe(true);
    expect(delivery?.message?.toString('latin1')).toMatch(/^Subject: hi\r\n/);
    expect(delivery?.message?.toString('latin1')).toMatch(/\r\n\r\nHello\.\r\n$/);
    await expectFdsReleased();
  });

  it('refuses -f with a sender the caller may not use before reading the message', async () => {
    const pipe = await fds.pipe('Subject: hi\n\nHello.\n');
    const started = job(pipe.reader, { sendmail: sendmail('-f', 'root@example.org', 'bob@example.com') });
    const result = await started.job.run();
    expect(result.outcome).toBe('attribute-not-permitted');
    expect(result.text).toMatch(/may not use the envelope sender <root@example.org>/);
    expect(started.downstream.deliveries).toHaveLength(0);
    await expectFdsReleased();
  });

  it('names a message error by the caller\'s own line, not the line of the header as completed', async () => {
    const config = testConfig({ spoolDirectory, text: '[limits]\nstrict_message_syntax = true', downstream: { xforward: false } });
    const pipe = await fds.pipe('Subject: hi\nX-Note: a\n\nline 4\nline\u00005\n');
    const started = job(pipe.reader, { config, sendmail: sendmail('-i', 'bob@example.com') });
    const result = await started.job.run();
    expect(result.outcome).toBe('message-syntax');
    expect(result.text).toMatch(/\bline 5\b/);
    expect(started.downstream.committed).toHaveLength(0);
    await expectFdsReleased();
  });

  it('passes a recipient refusal through', async () => {
    const downstream = new FakeDownstream({ at: 'rcpt', fault: { reply: '550 5.1.1 no such user' } });
    const pipe = await fds.pipe('Subject: hi\n\nHello.\n');
    const started = job(pipe.reader, { downstream, sendmail: sendmail('-i', 'nobody@example.com') });
    const result = await started.job.run();
    expect(result.outcome).toBe('recipient-refused');
    expect(downstream.committed).toHaveLength(0);
    await expectFdsReleased();
  });
});

describe('the qmail-queue front door', () => {
  async function qmailRun(message: string, envelope: string, setup: JobSetup & { client?: QmailInput['client']; fileMessage?: boolean } = {}) {
    const envelopePipe = await fds.pipe(envelope);
    const messageFd = setup.fileMessage ? fds.file(message) : (await fds.pipe(message)).reader;
    const started = job(messageFd, { ...setup, qmail: { envelopeFd: envelopePipe.reader, client: setup.client ?? {} } });
    return { result: await started.job.run(), downstream: started.downstream };
  }

  it.each([
    ['a pipe', false],
    ['a file', true],
  ])('reads the envelope from its fd and the message from %s', async (_kind, fileMessage) => {
    const { result, downstream } = await qmailRun('Subject: q\n\nqmail body\n', QMAIL_ENVELOPE, { fileMessage });
    expect(result.outcome).toBe('ok');
    const [delivery] = downstream.committed;
    expect(delivery?.request.envelope.sender.text).toBe('alice@example.org');
    expect(delivery?.request.envelope.recipients.map((r) => r.address.text)).toEqual(['bob@example.com', 'carol@example.com']);
    expect(delivery?.message?.toString('latin1')).toBe('Subject: q\r\n\r\nqmail body\r\n');
    await expectFdsReleased();
  });

  it('refuses client facts without the client capability, closing both fds unread', async () => {
    const { result, downstream } = await qmailRun('Subject: q\n\nbody\n', QMAIL_ENVELOPE, { client: { address: '192.0.2.7' } });
    expect(result.outcome).toBe('attribute-not-permitted');
    expect(result.text).toMatch(/TCPREMOTEIP.*"client" capability/);
    expect(downstream.deliveries).toHaveLength(0);
    await expectFdsReleased();
  });

  it('refuses an envelope sender the caller may not use', async () => {
    const { result, downstream } = await qmailRun('Subject: q\n\nbody\n', QMAIL_ENVELOPE.replace('alice@', 'mallory@'));
    expect(result.outcome).toBe('attribute-not-permitted');
    expect(downstream.deliveries).toHaveLength(0);
    await expectFdsReleased();
  });

  it('refuses a malformed envelope', async () => {
    const { result, downstream } = await qmailRun('Subject: q\n\nbody\n', 'Falice@example.org\0Tbob@example.com\0');
    expect(result.outcome).toBe('envelope-syntax');
    expect(downstream.deliveries).toHaveLength(0);
    await expectFdsReleased();
  });

  it('holds a message longer than its memory buffer in the spool while the envelope comes, and delivers it whole', async () => {
    const spool = new SpoolSpace(async () => Number.MAX_SAFE_INTEGER);
    const envelopePipe = await fds.pipe();
    const messagePipe = await fds.pipe();
    const line = `${'q'.repeat(99)}\n`;
    const body = line.repeat(Math.ceil((DEFAULT_MEMORY_OCTETS * 2) / line.length));
    const started = job(messagePipe.reader, { spool, qmail: { envelopeFd: envelopePipe.reader, client: {} } });
    const running = started.job.run();
    // qmail writes the whole message, then the envelope.
    await messagePipe.write(`Subject: long\n\n${body}`);
    await messagePipe.end();
    await expect.poll(() => spool.held(CALLER.uid)).toBeGreaterThan(DEFAULT_MEMORY_OCTETS);
    await envelopePipe.write(QMAIL_ENVELOPE);
    await envelopePipe.end();
    const result = await running;
    expect(result.outcome).toBe('ok');
    const message = started.downstream.committed[0]?.message?.toString('latin1');
    expect(message).toBe(`Subject: long\r\n\r\n${body.replaceAll('\n', '\r\n')}`);
    // The claim is given back once the spool file is closed.
    await expect.poll(() => spool.held()).toBe(0);
    await expectFdsReleased();
  });

  it('ends at once with spool-full when the held message goes over the uid\'s spool quota', async () => {
    const spool = new SpoolSpace(async () => Number.MAX_SAFE_INTEGER);
    const config = testConfig({ spoolDirectory, limits: { spoolQuotaPerUid: 64 * 1024 } });
    const envelopePipe = await fds.pipe();
    const messagePipe = await fds.pipe();
    const started = job(messagePipe.reader, { config, spool, qmail: { envelopeFd: envelopePipe.reader, client: {} } });
    const running = started.job.run();
    void messagePipe.write(`Subject: big\n\n${'x'.repeat(DEFAULT_MEMORY_OCTETS * 2)}\n`).catch(() => undefined);
    // The envelope never comes: only the hold's failure can end the submission.
    const result = await running;
    expect(result.outcome).toBe('spool-full');
    expect(result.text).toMatch(/limits.spool_quota_per_uid is 65536/);
    expect(started.downstream.deliveries).toHaveLength(0);
    // The claim is given back once the spool file is closed.
    await expect.poll(() => spool.held()).toBe(0);
    messagePipe.destroy();
    await envelopePipe.end();
    await expectFdsReleased();
  });

  it('closes both fds unread when the submission is stopped before it runs', async () => {
    const envelopePipe = await fds.pipe(QMAIL_ENVELOPE);
    const messagePipe = await fds.pipe('Subject: q\n\nbody\n');
    const started = job(messagePipe.reader, { qmail: { envelopeFd: envelopePipe.reader, client: {} } });
    started.job.abort(new SubmissionError('shutting-down', 'the daemon is stopping'));
    const result = await started.job.run();
    expect(result.outcome).toBe('shutting-down');
    expect(started.downstream.deliveries).toHaveLength(0);
    expect(started.job.cleanupErrors).toEqual([]);
    await expectFdsReleased();
  });

  it('ends at once when the held message is over the limit', async () => {
    const config = testConfig({ spoolDirectory, limits: { maxMessageOctets: 1000 } });
    const envelopePipe = await fds.pipe();
    const messagePipe = await fds.pipe(`Subject: q\n\n${'x'.repeat(5000)}\n`);
    const started = job(messagePipe.reader, { config, qmail: { envelopeFd: envelopePipe.reader, client: {} } });
    // The envelope never comes: only the hold's failure can end the submission.
    const result = await started.job.run();
    expect(result.outcome).toBe('over-limit');
    expect(started.downstream.deliveries).toHaveLength(0);
    await envelopePipe.end();
    await expectFdsReleased();
  });
});
