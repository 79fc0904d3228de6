import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { MessageEncoder, withLimits, type Address, type NotifyKeyword, type OriginalRecipient, type Recipient } from '@mailsubmit/shared';
import {
  deliveryStatusNotice,
  type DeliveryStatusNotice,
  type NoticeInput,
  type RecipientResult,
} from '../../../src/5-transport/local-queue/delivery-status-notice.ts';
import { parseNotice as parse, type ParsedNotice } from '../../../../../test/support/delivery-status-notices.ts';

async function bytesOf(notice: DeliveryStatusNotice): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of notice.content) chunks.push(chunk as Buffer);
  const bytes = Buffer.concat(chunks);
  expectSendable(bytes);
  return bytes;
}

/**
 * The notice goes to the MTA like any message: through the message encoder.
 * Under strict RFC 5322 checks it must pass, and come out changed only by
 * dot-stuffing: its line ends are CRLF already.
 */
function expectSendable(bytes: Buffer): void {
  const encoder = new MessageEncoder({ limits: withLimits({ strictMessageSyntax: true }) });
  const encoded = Buffer.concat([encoder.write(bytes), encoder.end()]);
  expect(encoded.toString('latin1').replace(/^\.\./gm, '.')).toBe(bytes.toString('latin1'));
}

function address(text: string): Address {
  return { text, utf8: /[^\x00-\x7f]/.test(text), unqualified: !text.includes('@') && text !== '' };
}

function recipient(text: string, notify?: NotifyKeyword[], orcpt?: OriginalRecipient): Recipient {
  return { address: address(text), line: 2, ...(notify ? { notify } : {}), ...(orcpt ? { orcpt } : {}) };
}

function refused(rcpt: Recipient, reply = `550 5.1.1 <${rcpt.address.text}>: Recipient address rejected: User unknown`): RecipientResult {
  return {
    recipient: rcpt,
    action: 'failed',
    status: '5.1.1',
    diagnostic: { text: reply },
    remoteMta: 'mx.example.net',
    lastAttempt: new Date('2026-12-05T10:15:00Z'),
  };
}

const HEADER = 'From: Ann <ann@example.org>\nTo: bob@example.net\nSubject: quarterly figures\nMessage-ID: <q4@example.org>';
const BODY = 'Hello Bob,\n\nthe figures are attached.\n.\n-- \nAnn\n';
const ARRIVAL = new Date('2026-12-05T09:00:00Z');

function input(over: Partial<NoticeInput> & Pick<NoticeInput, 'results'>): NoticeInput {
  const recipients = over.results.map((r) => r.recipient);
  return {
    envelope: { sender: address('ann@example.org'), recipients },
    reason: 'refused',
    reportingHost: 'relay.example.org',
    queueId: 'Q4F2A9',
    arrivalDate: ARRIVAL,
    maximalLifetimeSeconds: 5 * 86400,
    original: { headerSection: Buffer.from(HEADER), message: Buffer.from(`${HEADER}\n\n${BODY}`), eightBit: false },
    now: new Date('2026-12-05T11:00:00Z'),
    ...over,
  };
}

/** What the parser must see for every notice. */
function expectWellFormed(parsed: ParsedNotice): void {
  expect(parsed.defects).toEqual([]);
  expect(parsed.bareLf).toBe(0);
  expect(parsed.maxLineOctets).toBeLessThanOrEqual(998);
  expect(parsed.contentType).toBe('multipart/report');
  expect(parsed.reportType).toBe('delivery-status');
  expect(parsed.headers['from']).toBe('MAILER-DAEMON@relay.example.org (Mail Delivery System)');
  expect(parsed.headers['auto-submitted']).toBe('auto-replied');
  expect(parsed.headers['mime-version']).toBe('1.0');
  expect(parsed.headers['message-id']).toMatch(/^<20261205110000\.[0-9A-F]{12}@relay\.example\.org>$/);
}

describe('deliveryStatusNotice: a refusal', () => {
  it('reports one recipient with ENVID and ORCPT, and returns the whole message for RET=FULL', async () => {
    const bob = recipient('bob@example.net', ['FAILURE'], { type: 'rfc822', value: 'robert@example.net' });
    const notice = deliveryStatusNotice(
      input({ results: [refused(bob)], envelope: { sender: address('ann@example.org'), recipients: [bob], envelopeId: 'QQ314159', returnOption: 'FULL' } }),
    );
    expect(notice).not.toBeNull();
    expect(notice?.recipient.text).toBe('ann@example.org');
    expect(notice?.reported).toEqual(['bob@example.net']);
    expect(notice?.smtputf8).toBe(false);
    expect(notice?.eightBit).toBe(false);
    const parsed = parse(await bytesOf(notice as DeliveryStatusNotice));
    expectWellFormed(parsed);
    expect(parsed.headers['subject']).toBe('Undelivered Mail Returned to Sender');
    expect(parsed.headers['to']).toBe('<ann@example.org>');
    expect(new Date(parsed.headers['date'] as string).toISOString()).toBe('2026-12-05T11:00:00.000Z');
    expect(parsed.headers['message-id']).toBe(notice?.messageId);
    expect(parsed.parts.map((p) => [p.contentType, p.description])).toEqual([
      ['text/plain', 'Notification'],
      ['message/delivery-status', 'Delivery report'],
      ['message/rfc822', 'Undelivered Message'],
    ]);
    expect(parsed.perMessage).toEqual({
      'reporting-mta': 'dns; relay.example.org',
      'x-mailsubmit-queue-id': 'Q4F2A9',
      'x-mailsubmit-sender': 'rfc822; ann@example.org',
      'original-envelope-id': 'QQ314159',
      'arrival-date': expect.any(String),
    });
    expect(new Date(parsed.perMessage['arrival-date'] as string).toISOString()).toBe(ARRIVAL.toISOString());
    expect(parsed.recipients).toEqual([
      {
        'final-recipient': 'rfc822; bob@example.net',
        'original-recipient': 'rfc822; robert@example.net',
        action: 'failed',
        status: '5.1.1',
        'remote-mta': 'dns; mx.example.net',
        'diagnostic-code': 'smtp; 550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown',
        'last-attempt-date': expect.any(String),
      },
    ]);
    expect(new Date(parsed.recipients[0]?.['last-attempt-date'] as string).toISOString()).toBe('2026-12-05T10:15:00.000Z');
    expect(parsed.returned.headers).toEqual([
      ['From', 'Ann <ann@example.org>'],
      ['To', 'bob@example.net'],
      ['Subject', 'quarterly figures'],
      ['Message-ID', '<q4@example.org>'],
    ]);
    expect(parsed.returned.body).toBe(BODY);
    expect(parsed.text).toContain('This is the mailsubmit program at host relay.example.org.');
    expect(parsed.text).toContain('\n<bob@example.net>: host mx.example.net said: 550 5.1.1 <bob@example.net>:\n    Recipient address rejected: User unknown\n');
    expect(parsed.flufl).toEqual({ temporary: [], permanent: ['robert@example.net'] });
  });

  it('reports only the recipients whose NOTIFY asks for failures, and returns the header section for RET=HDRS', async () => {
    const plain = recipient('carol@example.net');
    const never = recipient('dave@example.net', ['NEVER']);
    const delayOnly = recipient('erin@example.net', ['DELAY']);
    const failure = recipient('frank@example.net', ['FAILURE', 'SUCCESS']);
    const all = [plain, never, delayOnly, failure];
    const notice = deliveryStatusNotice(
      input({ results: all.map((r) => refused(r)), envelope: { sender: address('ann@example.org'), recipients: all, returnOption: 'HDRS' } }),
    );
    expect(notice?.reported).toEqual(['carol@example.net', 'frank@example.net']);
    const parsed = parse(await bytesOf(notice as DeliveryStatusNotice));
    expectWellFormed(parsed);
    expect(parsed.parts.map((p) => [p.contentType, p.description])).toEqual([
      ['text/plain', 'Notification'],
      ['message/delivery-status', 'Delivery report'],
      ['text/rfc822-headers', 'Undelivered Message Headers'],
    ]);
    expect(parsed.perMessage['original-envelope-id']).toBeUndefined();
    expect(parsed.recipients.map((r) => [r['final-recipient'], r['original-recipient'], r.action, r.status])).toEqual([
      ['rfc822; carol@example.net', undefined, 'failed', '5.1.1'],
      ['rfc822; frank@example.net', undefined, 'failed', '5.1.1'],
    ]);
    expect(parsed.returned.headers.map(([name]) => name)).toEqual(['From', 'To', 'Subject', 'Message-ID']);
    expect(parsed.returned.bodyOctets).toBe(0);
    expect(parsed.text).not.toContain('dave@example.net');
    expect(parsed.text).not.toContain('erin@example.net');
    expect(parsed.flufl).toEqual({ temporary: [], permanent: ['carol@example.net', 'frank@example.net'] });
  });

  it('returns the whole message when no RET was given, as Postfix does', async () => {
    const bob = recipient('bob@example.net');
    const parsed = parse(await bytesOf(deliveryStatusNotice(input({ results: [refused(bob)] })) as DeliveryStatusNotice));
    expectWellFormed(parsed);
    expect(parsed.parts[2]?.contentType).toBe('message/rfc822');
    expect(parsed.returned.body).toBe(BODY);
  });

  it('says the lifetime when the message expired, and folds a long reply without losing a word', async () => {
    const bob = recipient('bob@example.net');
    const words = Array.from({ length: 300 }, (_, i) => `word${i}`).join(' ');
    const long = `451 4.4.1 ${words} ${'x'.repeat(1500)}`;
    const result: RecipientResult = { recipient: bob, action: 'failed', status: '4.4.7', diagnostic: { type: 'x-mailsubmit', text: long } };
    const parsed = parse(await bytesOf(deliveryStatusNotice(input({ results: [result], reason: 'expired' })) as DeliveryStatusNotice));
    expectWellFormed(parsed);
    expect(parsed.text).toContain('be delivered to one or more recipients within 5.0 days.');
    expect(parsed.recipients[0]?.status).toBe('4.4.7');
    expect(parsed.recipients[0]?.['remote-mta']).toBeUndefined();
    // A word over the wrap limit is cut into pieces; unfolding joins them with a space.
    expect(parsed.recipients[0]?.['diagnostic-code']?.replace(/ /g, '')).toBe(`x-mailsubmit;${long}`.replace(/ /g, ''));
    expect(parsed.recipients[0]?.['diagnostic-code']?.startsWith(`x-mailsubmit; 451 4.4.1 ${words}`)).toBe(true);
  });

  it('masks control characters in an MTA reply', async () => {
    const bob = recipient('bob@example.net');
    const parsed = parse(await bytesOf(deliveryStatusNotice(input({ results: [refused(bob, '550 5.7.1 no\u0007 thanks\r\n550 5.7.1 caf\u00e9')] })) as DeliveryStatusNotice));
    expectWellFormed(parsed);
    expect(parsed.recipients[0]?.['diagnostic-code']).toBe('smtp; 550 5.7.1 no? thanks 550 5.7.1 caf?');
  });

  it('returns an 8-bit body byte for byte, marked 8bit', async () => {
    const bob = recipient('bob@example.net');
    const body = 'Gr\u00fc\u00dfe aus K\u00f6ln \u2014 \u20ac 12\n';
    const notice = deliveryStatusNotice(
      input({ results: [refused(bob)], original: { headerSection: Buffer.from(HEADER), message: Buffer.from(`${HEADER}\n\n${body}`), eightBit: true } }),
    );
    expect(notice?.eightBit).toBe(true);
    expect(notice?.smtputf8).toBe(false);
    const parsed = parse(await bytesOf(notice as DeliveryStatusNotice));
    expectWellFormed(parsed);
    expect(parsed.parts[2]).toEqual({ contentType: 'message/rfc822', description: 'Undelivered Message', encoding: '8bit', charset: null });
    expect(parsed.returned.bodySha256).toBe(createHash('sha256').update(Buffer.from(body)).digest('hex'));
  });

  it('uses the RFC 6533 types when a recipient address is UTF-8', async () => {
    const jose = recipient('jos\u00e9@example.net', ['FAILURE'], { type: 'utf-8', value: 'jos\u00e9@example.net' });
    const notice = deliveryStatusNotice(input({ results: [refused(jose, '550 5.1.1 unknown user')] }));
    expect(notice?.smtputf8).toBe(true);
    expect(notice?.eightBit).toBe(true);
    const parsed = parse(await bytesOf(notice as DeliveryStatusNotice));
    expectWellFormed(parsed);
    expect(parsed.parts.map((p) => [p.contentType, p.charset])).toEqual([
      ['text/plain', 'utf-8'],
      ['message/global-delivery-status', null],
      ['message/global', null],
    ]);
    expect(parsed.recipients).toEqual([
      {
        'final-recipient': 'utf-8; jos\u00e9@example.net',
        'original-recipient': 'utf-8; jos\u00e9@example.net',
        action: 'failed',
        status: '5.1.1',
        'remote-mta': 'dns; mx.example.net',
        'diagnostic-code': 'smtp; 550 5.1.1 unknown user',
        'last-attempt-date': expect.any(String),
      },
    ]);
    expect(parsed.text).toContain('<jos\u00e9@example.net>: host mx.example.net said: 550 5.1.1 unknown user');
  });
});

describe('deliveryStatusNotice: no notice', () => {
  it('never answers the null sender', () => {
    const bob = recipient('bob@example.net');
    expect(deliveryStatusNotice(input({ results: [refused(bob)], envelope: { sender: address(''), recipients: [bob] } }))).toBeNull();
  });

  it('sends nothing when every recipient said NOTIFY=NEVER', () => {
    const rcpts = [recipient('bob@example.net', ['NEVER']), recipient('carol@example.net', ['NEVER'])];
    expect(deliveryStatusNotice(input({ results: rcpts.map((r) => refused(r)) }))).toBeNull();
  });

  it('sends no failure notice to recipients that asked for delays only, and no warning to those that asked for failures only', () => {
    const delayOnly = recipient('bob@example.net', ['DELAY']);
    expect(deliveryStatusNotice(input({ results: [refused(delayOnly)] }))).toBeNull();
    const failureOnly = recipient('bob@example.net', ['FAILURE']);
    const delayed: RecipientResult = { recipient: failureOnly, action: 'delayed', status: '4.4.1' };
    expect(deliveryStatusNotice(input({ results: [delayed], reason: 'delay-warning' }))).toBeNull();
  });
});

describe('deliveryStatusNotice: a delay warning', () => {
  it('reports the delayed recipients with Will-Retry-Until, and returns the header section only', async () => {
    const bob = recipient('bob@example.net', ['DELAY', 'FAILURE']);
    const carol = recipient('carol@example.net');
    const dave = recipient('dave@example.net', ['FAILURE']);
    const delayed = (r: Recipient): RecipientResult => ({
      recipient: r,
      action: 'delayed',
      status: '4.4.1',
      diagnostic: { text: '421 4.4.1 mx.example.net: Service not available' },
    });
    const rcpts = [bob, carol, dave];
    const notice = deliveryStatusNotice(
      input({ reason: 'delay-warning', results: rcpts.map(delayed), envelope: { sender: address('ann@example.org'), recipients: rcpts, returnOption: 'FULL' } }),
    );
    expect(notice?.reported).toEqual(['bob@example.net', 'carol@example.net']);
    const parsed = parse(await bytesOf(notice as DeliveryStatusNotice));
    expectWellFormed(parsed);
    expect(parsed.headers['subject']).toBe('Delayed Mail (still being retried)');
    expect(parsed.parts.map((p) => p.contentType)).toEqual(['text/plain', 'message/delivery-status', 'text/rfc822-headers']);
    expect(parsed.text).toContain('Your message could not be delivered for 2.0 hours.\nIt will be retried until it is 5.0 days old.');
    expect(parsed.recipients.map((r) => [r['final-recipient'], r.action, r.status, r['diagnostic-code']])).toEqual([
      ['rfc822; bob@example.net', 'delayed', '4.4.1', 'smtp; 421 4.4.1 mx.example.net: Service not available'],
      ['rfc822; carol@example.net', 'delayed', '4.4.1', 'smtp; 421 4.4.1 mx.example.net: Service not available'],
    ]);
    for (const r of parsed.recipients) expect(new Date(r['will-retry-until'] as string).toISOString()).toBe('2026-12-10T09:00:00.000Z');
    expect(parsed.flufl).toEqual({ temporary: ['bob@example.net', 'carol@example.net'], permanent: [] });
  });
});

describe('deliveryStatusNotice: the returned message', () => {
  it('breaks lines over 998 octets and turns LF and stray CR into what the encoder would send', async () => {
    const bob = recipient('bob@example.net');
    const longLine = 'a'.repeat(2500);
    const body = `${longLine}\nstray\rcr\n--not-the-boundary\nno final line end`;
    const message = Buffer.from(`${HEADER}\n\n${body}`);
    const parsed = parse(await bytesOf(deliveryStatusNotice(input({ results: [refused(bob)], original: { headerSection: Buffer.from(HEADER), message, eightBit: false } })) as DeliveryStatusNotice));
    expectWellFormed(parsed);
    expect(parsed.returned.body).toBe(`${'a'.repeat(998)}\n ${'a'.repeat(997)}\n ${'a'.repeat(505)}\nstray cr\n--not-the-boundary\nno final line end\n`);
  });

  it('streams a large message: the source is read only as fast as the notice is', async () => {
    const bob = recipient('bob@example.net');
    const line = `${'0123456789'.repeat(7)}\n`;
    const total = 8 << 20;
    let produced = 0;
    let consumed = 0;
    let largestLead = 0;
    const expected = createHash('sha256');
    const source = new Readable({
      read() {
        // How far reading the original runs ahead of what the notice's reader took.
        largestLead = Math.max(largestLead, produced - consumed);
        if (produced === 0) {
          const head = Buffer.from(`${HEADER}\n\n`);
          produced += head.length;
          this.push(head);
          return;
        }
        if (produced >= total) {
          this.push(null);
          return;
        }
        const chunk = Buffer.from(line.repeat(1000));
        produced += chunk.length;
        expected.update(chunk);
        this.push(chunk);
      },
    });
    const notice = deliveryStatusNotice(input({ results: [refused(bob)], original: { headerSection: Buffer.from(HEADER), message: source, eightBit: false } }));
    const chunks: Buffer[] = [];
    for await (const chunk of (notice as DeliveryStatusNotice).content) {
      chunks.push(chunk as Buffer);
      consumed += (chunk as Buffer).length;
      if (consumed < 2 << 20) await new Promise((resolve) => setImmediate(resolve));
    }
    // Whole message in memory would be a lead of megabytes; a stream is a few buffers ahead.
    expect(largestLead).toBeLessThan(512 << 10);
    expect(produced).toBeGreaterThanOrEqual(total);
    expectSendable(Buffer.concat(chunks));
    const parsed = parse(Buffer.concat(chunks));
    expectWellFormed(parsed);
    expect(parsed.returned.bodyOctets).toBe(produced - Buffer.byteLength(`${HEADER}\n\n`));
    expect(parsed.returned.bodySha256).toBe(expected.digest('hex'));
  });
});
