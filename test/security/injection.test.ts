/**
 * SMTP command injection through the submission interface: every envelope
 * attribute the contract defines, a set of header lines, and the
 * qmail-queue envelope (fd 1) and its tcpserver variables, each tried with
 * CR, LF, NUL, CRLF plus SMTP command text, and CRLF "." CRLF plus a new
 * transaction. Everything goes through the real set-gid helper to a daemon
 * whose downstream is a RecordingSink directly, so the sink's command log is
 * exactly the command stream the daemon wrote.
 *
 * The contract: each envelope value, qmail-queue field and variable is
 * refused with its documented outcome, a refused submission opens no
 * transaction at all, and the injected command text never appears in the
 * command stream. A message is taken as Postfix takes it: by default the
 * header lines with the payloads are delivered as one message in one
 * transaction, the would-be commands inside DATA as text (a stray CR a space,
 * a NUL kept, CRs before an LF one line end, a lone "." dot-stuffed); with
 * strict_message_syntax they are refused (65, no transaction). Command text
 * that is legal message content (a header continuation, body lines, a lone
 * "." line) is delivered inside DATA in both modes. Either way nothing the
 * caller writes becomes a command or ends DATA early.
 */
import { chmodSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statusOf } from '@mailsubmit/shared';
import { MailsubmitUnderTest, type SubmitResult } from '../support/mailsubmit-under-test.ts';
import { runQmailQueueMessageFirst } from '../support/qmail-queue-caller.ts';
import { RecordingSink, type RecordedMessage } from '../support/recording-sink.ts';
import { tearDown } from '../support/tear-down.ts';
import { ensureUser, type TestUser } from '../support/test-accounts.ts';

const EVIL = 'evil@example.org';
const SMUGGLED = 'smuggled@example.org';

/** The payloads, appended to an otherwise valid value or line. */
const PAYLOADS = {
  CR: `\rRCPT TO:<${EVIL}>`,
  LF: `\nRCPT TO:<${EVIL}>`,
  NUL: `\0RCPT TO:<${EVIL}>`,
  'CRLF + RCPT': `\r\nRCPT TO:<${EVIL}>`,
  'CRLF . CRLF + MAIL': `\r\n.\r\nMAIL FROM:<${SMUGGLED}>`,
} as const;
type PayloadName = keyof typeof PAYLOADS;

const MESSAGE = 'Subject: injection probe\n\nbody\n';

/** Every attribute of docs/submission-interface.md with a valid value, in an order the grammar accepts. */
const ATTRIBUTES: readonly (readonly [string, string])[] = [
  ['sender', 'base@example.net'],
  ['recipient', 'rcpt@example.org'],
  ['dsn-notify-options', 'success,delay'],
  ['dsn-orig-rcpt', 'rfc822;rcpt@example.org'],
  ['dsn-envelope-id', 'envid-1'],
  ['dsn-return-option', 'headers'],
  ['size', String(Buffer.byteLength(MESSAGE))],
  ['protocol_name', 'ESMTPSA'],
  ['helo_name', 'mx.example.net'],
  ['client_name', 'mx.example.net'],
  ['client_address', '[192.0.2.25]'],
  ['client_port', '41234'],
  ['sasl_method', 'PLAIN'],
  ['sasl_username', 'alice'],
  ['sasl_sender', 'alice@example.net'],
  ['ccert_subject', 'CN=mx.example.net'],
  ['ccert_issuer', 'CN=Example CA'],
  ['ccert_fingerprint', Array<string>(20).fill('ab').join(':')],
  ['encryption_protocol', 'TLSv1.3'],
  ['encryption_cipher', 'TLS_AES_256_GCM_SHA384'],
  ['encryption_keysize', '256'],
];

/** What the grammar makes of each payload in an envelope value: a CR or NUL stays in the value, an LF ends the line. */
function envelopeOutcome(attribute: string, payload: PayloadName): string {
  if (payload === 'CR' || payload === 'NUL') {
    if (attribute === 'sender') return 'sender-syntax';
    if (attribute === 'recipient') return 'recipient-syntax';
  }
  return 'envelope-syntax';
}

/** The submission with a unique sender, so its MAIL FROM would be recognizable. */
function envelopeInput(tag: string, attributes: readonly (readonly [string, string])[]): string {
  return `${attributes.map(([name, value]) => `${name}: ${name === 'sender' ? value.replace('base@', `${tag}@`) : value}`).join('\n')}\n\n${MESSAGE}`;
}

/**
 * What the message encoder makes of a message by default (docs/compatibility.md,
 * "Message content"), as the sink records it (dot-stuffing undone): CRs before
 * an LF are one line end, any other CR a space, every line end CRLF, a CRLF
 * after a last line without one.
 */
function asDelivered(message: string): string {
  const lines = message.replace(/\r+\n/g, '\n').replace(/\r/g, ' ');
  return (lines.endsWith('\n') ? lines : `${lines}\n`).replace(/\n/g, '\r\n');
}

const HEADERS = ['From: base@example.net', 'To: rcpt@example.org', 'Subject: hello', 'Message-ID: <probe@example.net>', 'X-Scanner: clean', ' folded continuation'];

describe('SMTP command injection', () => {
  const sink = new RecordingSink();
  let ms: MailsubmitUnderTest;
  /** The same downstream with limits.strict_message_syntax = true: the RFC 5322 refusals. */
  let strict: MailsubmitUnderTest;
  let user: TestUser;
  let qmailQueue: string;
  let files: string;
  let accepted = 0;
  let serial = 0;

  beforeAll(async () => {
    const sinkPort = await sink.listen();
    ms = await MailsubmitUnderTest.start({ downstreamPort: sinkPort });
    user = ensureUser('mstinject');
    // Every capability, so each attribute is judged on its value alone.
    ms.setAuthorizations(['mstinject client sasl tls']);
    strict = await MailsubmitUnderTest.start({ downstreamPort: sinkPort, limits: 'strict_message_syntax = true' });
    strict.setAuthorizations(['mstinject client sasl tls']);
    qmailQueue = join(dirname(ms.helperPath), 'mailsubmit-qmail-queue');
    symlinkSync(ms.helperPath, qmailQueue);
    files = mkdtempSync(join(ms.dir, 'inject-'));
    chmodSync(files, 0o755);
  }, 30_000);

  afterAll(async () => {
    await strict?.stop();
    await tearDown(ms, undefined, sink);
  });

  /** No command line the daemon wrote carries injected text. */
  function expectCleanCommandStream(): void {
    expect(sink.commandLog.filter((line) => line.includes(EVIL) || line.includes(SMUGGLED) || (line.match(/RCPT TO:|MAIL FROM:/gi) ?? []).length > 1)).toEqual([]);
    // One MAIL command per accepted submission and no other: a refused one opened no transaction.
    expect(sink.commandLog.filter((line) => /^MAIL FROM:/i.test(line))).toHaveLength(accepted);
  }

  async function submitRefused(tag: string, input: string, outcome: string, instance: MailsubmitUnderTest = ms): Promise<SubmitResult> {
    const logged = instance.submissions().length;
    const result = await instance.submit(user, input);
    expect(result.stderr).toMatch(new RegExp(`^mailsubmit: ${statusOf(outcome).text}: `));
    expect(result.code).toBe(statusOf(outcome).exitCode);
    // Submissions run one at a time here, so the next line logged is this one's.
    await instance.waitForSubmission(() => instance.submissions().length > logged);
    const line = instance.submissions()[logged];
    expect(line).toMatchObject({ status: outcome, uid: user.uid });
    expect(line).not.toHaveProperty('queue_id');
    expect(sink.commandLog.some((l) => l.includes(`${tag}@`))).toBe(false);
    return result;
  }

  it('delivers the submission all the probes start from (every attribute valid): the refusals below are the payloads\' doing', async () => {
    const result = await ms.submit(user, envelopeInput('inj-base', ATTRIBUTES), ['-v']);
    expect(result.stderr).toBe('mailsubmit: queued\n');
    expect(result.code).toBe(0);
    accepted++;
    const [message] = await sink.waitForMessages(1);
    expect(message?.mailFrom).toMatch(/^MAIL FROM:<inj-base@example\.net> /);
    expect(message?.rcptTo).toHaveLength(1);
    await ms.waitForSubmission((l) => l.sender === 'inj-base@example.net' && l.status === 'ok');
    expectCleanCommandStream();
  });

  for (const [attribute] of ATTRIBUTES) {
    it(`refuses ${attribute} with CR, LF, NUL or command text in its value, opening no transaction`, async () => {
      for (const payload of Object.keys(PAYLOADS) as PayloadName[]) {
        const tag = `inj-${++serial}`;
        const attributes = ATTRIBUTES.map(([name, value]) => [name, name === attribute ? value + PAYLOADS[payload] : value] as const);
        const outcome = envelopeOutcome(attribute, payload);
        const result = await submitRefused(tag, envelopeInput(tag, attributes), outcome);
        expect(result.stderr, `${attribute} + ${payload}`).toMatch(/line \d+: /);
      }
      expectCleanCommandStream();
    });
  }

  /** The submission's one transaction at the sink: MAIL, one RCPT, DATA, and no other command in it. */
  async function expectOneTransaction(tag: string): Promise<RecordedMessage> {
    const delivered = await sink.waitForMessage((m) => m.mailFrom.startsWith(`MAIL FROM:<${tag}@`));
    expect(sink.messages.filter((m) => m.mailFrom.startsWith(`MAIL FROM:<${tag}@`))).toHaveLength(1);
    expect(sink.commandLog.filter((line) => line.startsWith(`MAIL FROM:<${tag}@`))).toHaveLength(1);
    expect(delivered.commands.map((command) => command.slice(0, 4).toUpperCase())).toEqual(['MAIL', 'RCPT', 'DATA']);
    expect(delivered.rcptTo).toEqual([expect.stringMatching(/^RCPT TO:<rcpt@example\.org>/)]);
    // No CR or LF left the daemon except as CRLF.
    expect(delivered.data.toString('latin1')).not.toMatch(/\r(?!\n)|(?<!\r)\n/);
    return delivered;
  }

  for (const header of HEADERS) {
    const messageWith = (payload: PayloadName) => `${HEADERS.map((h) => (h === header ? h + PAYLOADS[payload] : h)).join('\n')}\n\nbody\n`;

    it(`delivers the header line ${JSON.stringify(header)} with CR, LF, NUL or command text in it as one message, the commands inside DATA as text`, async () => {
      for (const payload of Object.keys(PAYLOADS) as PayloadName[]) {
        const tag = `inj-${++serial}`;
        const message = messageWith(payload);
        const result = await ms.submit(user, `sender: ${tag}@example.net\nrecipient: rcpt@example.org\n\n${message}`);
        expect(result.stderr, `${header} + ${payload}`).toBe('');
        expect(result.code, `${header} + ${payload}`).toBe(0);
        accepted++;
        const delivered = await expectOneTransaction(tag);
        const text = delivered.data.toString('latin1');
        expect(text, `${header} + ${payload}`).toBe(asDelivered(message));
        // The would-be command is there, as message text.
        expect(text).toContain(payload === 'CRLF . CRLF + MAIL' ? `MAIL FROM:<${SMUGGLED}>` : `RCPT TO:<${EVIL}>`);
        await ms.waitForSubmission((l) => l.sender === `${tag}@example.net` && l.status === 'ok');
      }
      expectCleanCommandStream();
    });

    it(`refuses the header line ${JSON.stringify(header)} with CR, LF, NUL or command text in it with strict_message_syntax: 65, no transaction`, async () => {
      for (const payload of Object.keys(PAYLOADS) as PayloadName[]) {
        const tag = `inj-${++serial}`;
        const input = `sender: ${tag}@example.net\nrecipient: rcpt@example.org\n\n${messageWith(payload)}`;
        const result = await submitRefused(tag, input, 'message-syntax', strict);
        expect(result.stderr, `${header} + ${payload}`).toMatch(/line \d+: /);
      }
      expectCleanCommandStream();
    });
  }

  for (const [mode, instance] of [
    ['by default', () => ms],
    ['with strict_message_syntax', () => strict],
  ] as const) {
    it(`delivers command text that is legal message content inside DATA only, ${mode}: a folded header, body lines, lone dots`, async () => {
      const tag = `inj-${++serial}`;
      const body = [`RCPT TO:<${EVIL}>`, '.', `MAIL FROM:<${SMUGGLED}>`, 'DATA', '.', 'QUIT', ''].join('\r\n');
      const message = `Subject: probe\r\n\tRCPT TO:<${EVIL}>\r\n\r\n${body}`;
      const result = await instance().submit(user, `sender: ${tag}@example.net\nrecipient: rcpt@example.org\n\n${message}`, ['-v']);
      expect(result.stderr).toBe('mailsubmit: queued\n');
      expect(result.code).toBe(0);
      accepted++;
      const delivered = await expectOneTransaction(tag);
      expect(delivered.data.toString('latin1')).toBe(message);
      await instance().waitForSubmission((l) => l.sender === `${tag}@example.net` && l.status === 'ok');
      expectCleanCommandStream();
    });
  }

  /** mailsubmit-qmail-queue as the user: the message written to fd 0 and closed, then the envelope to fd 1, as qmail.c does. */
  function qmailSubmit(message: string, envelope: string, env: Record<string, string> = {}): Promise<SubmitResult> {
    serial += 1;
    const messageFile = join(files, `message-${serial}`);
    const envelopeFile = join(files, `envelope-${serial}`);
    writeFileSync(messageFile, message, { mode: 0o644 });
    writeFileSync(envelopeFile, envelope, { mode: 0o644 });
    return runQmailQueueMessageFirst({ helper: qmailQueue, user, messageFile, envelopeFile, env });
  }

  it('delivers the qmail-queue envelope the probes start from', async () => {
    const result = await qmailSubmit(MESSAGE, 'Fqq-base@example.net\0Trcpt@example.org\0\0', { TCPREMOTEIP: '192.0.2.25', TCPREMOTEHOST: 'mx.example.net', TCPREMOTEPORT: '41234' });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    accepted++;
    await sink.waitForMessage((m) => m.mailFrom.startsWith('MAIL FROM:<qq-base@example.net>'));
    expectCleanCommandStream();
  });

  const QMAIL_FIELDS = [
    { field: 'F (sender)', envelope: (p: string, tag: string) => `F${tag}@example.net${p}\0Trcpt@example.org\0\0`, outcome: 'sender-syntax' },
    { field: 'T (recipient)', envelope: (p: string, tag: string) => `F${tag}@example.net\0Trcpt@example.org${p}\0\0`, outcome: 'recipient-syntax' },
  ] as const;

  for (const { field, envelope, outcome } of QMAIL_FIELDS) {
    it(`refuses a qmail-queue ${field} field with CR, LF, NUL or command text in it, with a permanent code`, async () => {
      for (const payload of Object.keys(PAYLOADS) as PayloadName[]) {
        const tag = `qq-${serial + 1}`;
        const result = await qmailSubmit(MESSAGE, envelope(PAYLOADS[payload], tag));
        // A NUL ends the field: what follows is read as the next field, which no field letter starts.
        const expected = payload === 'NUL' ? 'envelope-syntax' : outcome;
        expect(result.stderr, `${field} + ${payload}`).toMatch(new RegExp(`^mailsubmit-qmail-queue: ${statusOf(expected).text}: `));
        expect(result.code, `${field} + ${payload}`).toBe(statusOf(expected).qmailCode);
        expect(sink.commandLog.some((l) => l.includes(`${tag}@`))).toBe(false);
      }
      expectCleanCommandStream();
    });
  }

  for (const variable of ['TCPREMOTEIP', 'TCPREMOTEHOST', 'TCPREMOTEPORT']) {
    it(`refuses ${variable} with CR, LF or command text in it (an environment value holds no NUL)`, async () => {
      for (const payload of ['CR', 'LF', 'CRLF + RCPT', 'CRLF . CRLF + MAIL'] as const) {
        const tag = `qq-${serial + 1}`;
        const base = { TCPREMOTEIP: '192.0.2.25', TCPREMOTEHOST: 'mx.example.net', TCPREMOTEPORT: '41234' } as Record<string, string>;
        const result = await qmailSubmit(MESSAGE, `F${tag}@example.net\0Trcpt@example.org\0\0`, { ...base, [variable]: `${base[variable]}${PAYLOADS[payload]}` });
        expect(result.stderr, `${variable} + ${payload}`).toMatch(new RegExp(`^mailsubmit-qmail-queue: ${statusOf('envelope-syntax').text}: `));
        expect(result.code, `${variable} + ${payload}`).toBe(statusOf('envelope-syntax').qmailCode);
        expect(sink.commandLog.some((l) => l.includes(`${tag}@`))).toBe(false);
      }
      expectCleanCommandStream();
    });
  }
});
