import { describe, expect, it } from 'vitest';
import type { Address, SmtpReply } from '@mailsubmit/shared';
import { REPLY_CHARS, verdictLine, verdictStatus, verificationReport, type ReportVerdict } from '../../../src/3-intake/sendmail/verification-report.ts';

const address = (text: string): Address => ({ text, utf8: /[^\u0000-\u007f]/.test(text), unqualified: !text.includes('@') });
const reply = (code: number, text: string): SmtpReply => {
  const enhanced = /^\d\.\d{1,3}\.\d{1,3}/.exec(text)?.[0] ?? null;
  return { code, enhanced, lines: [text] };
};
const NOW = new Date('2026-03-01T12:00:00Z');

async function text(verdicts: readonly ReportVerdict[], sender = 'root'): Promise<{ data: string; eightBit: boolean; chunks: number }> {
  const report = verificationReport({ sender: address(sender), verdicts, hostName: 'host.example', now: NOW, unique: '0a1b2c3d4e5f' });
  const parts: Buffer[] = [];
  for await (const chunk of report.body) parts.push(Buffer.from(chunk));
  return { data: Buffer.concat(parts).toString('utf8'), eightBit: report.eightBit, chunks: parts.length };
}

const GOOD: ReportVerdict = { address: address('a@example.org'), reply: reply(250, '2.1.5 Ok') };
const BAD: ReportVerdict = { address: address('nobody@example.org'), reply: reply(550, '5.1.1 <nobody@example.org>: Recipient address rejected: User unknown') };
const LATER: ReportVerdict = { address: address('busy@example.org'), reply: reply(450, '4.2.0 <busy@example.org>: try again') };

describe('verificationReport', () => {
  it('is Postfix\'s verify report: a multipart/report to the sender, a line and a delivery-status block per address', async () => {
    const { data, eightBit } = await text([GOOD, BAD, LATER]);
    expect(eightBit).toBe(false);
    const end = data.indexOf('\r\n\r\n');
    const header = data.slice(0, end + 2);
    const body = data.slice(end + 2);
    expect(header).toContain('From: MAILER-DAEMON (Mail Delivery System)\r\n');
    expect(header).toContain('To: root\r\n');
    expect(header).toContain('Subject: Mail Delivery Status Report\r\n');
    expect(header).toContain('Auto-Submitted: auto-replied\r\n');
    expect(header).toMatch(/^Date: Sun, {1,2}1 Mar 2026 /m);
    expect(header).toMatch(/^Message-Id: <20260301120000\.0A1B2C3D4E5F@host\.example>$/m);
    expect(header).toContain('Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary="0a1b2c3d4e5f/host.example"');
    expect(body).toContain('\r\n--0a1b2c3d4e5f/host.example\r\nContent-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n');
    expect(body).toContain('\r\n<a@example.org>: deliverable: the MTA accepted the address (250 2.1.5 Ok)\r\n');
    expect(body).toContain('\r\n<nobody@example.org>: undeliverable: the MTA refused the address (550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown)\r\n');
    expect(body).toContain('\r\n<busy@example.org>: undeliverable for now: the MTA deferred the address (450 4.2.0 <busy@example.org>: try again)\r\n');
    expect(body).toContain('Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; host.example\r\n');
    expect(body).toContain('\r\nFinal-Recipient: rfc822; a@example.org\r\nAction: deliverable\r\nStatus: 2.1.5\r\nDiagnostic-Code: smtp; 250 2.1.5 Ok\r\n');
    expect(body).toContain('\r\nFinal-Recipient: rfc822; nobody@example.org\r\nAction: undeliverable\r\nStatus: 5.1.1\r\n');
    expect(body).toContain('\r\nFinal-Recipient: rfc822; busy@example.org\r\nAction: undeliverable\r\nStatus: 4.2.0\r\n');
    expect(data.endsWith('\r\n--0a1b2c3d4e5f/host.example--\r\n')).toBe(true);
    // SMTP DATA: CRLF only, no bare LF or CR, and no line over 998 octets.
    expect(data.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
    for (const line of data.split('\r\n')) expect(Buffer.byteLength(line)).toBeLessThanOrEqual(998);
  });

  it('keeps what the MTA said printable and short', async () => {
    const long = reply(550, `5.1.1 ${'x'.repeat(5000)}\u00e9\u0007`);
    const line = verdictLine({ address: address('a@example.org'), reply: long });
    expect(line).not.toMatch(/[^\x20-\x7e]/);
    expect(line.length).toBeLessThan(REPLY_CHARS + 100);
    const { data } = await text([{ address: address('a@example.org'), reply: long }]);
    for (const l of data.split('\r\n')) expect(l).not.toMatch(/[^\x20-\x7e\t]/);
  });

  it('takes its status from the reply class when the MTA gives no enhanced code (or one of another class)', () => {
    expect(verdictStatus({ code: 250, enhanced: null, lines: ['Ok'] })).toBe('2.0.0');
    expect(verdictStatus({ code: 550, enhanced: '2.1.5', lines: ['odd'] })).toBe('5.0.0');
    expect(verdictStatus({ code: 451, enhanced: '4.3.0', lines: ['later'] })).toBe('4.3.0');
  });

  it('goes out as UTF-8 with the global report type when an address is not ASCII', async () => {
    const { data, eightBit } = await text([{ address: address('j\u00f6rg@example.org'), reply: reply(250, '2.1.5 Ok') }], 'ren\u00e9@example.net');
    expect(eightBit).toBe(true);
    expect(data).toContain('To: ren\u00e9@example.net\r\n');
    expect(data).toContain('Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n');
    expect(data).toContain('Content-Type: message/global-delivery-status\r\n');
    expect(data).toContain('Final-Recipient: utf-8; j\u00f6rg@example.org\r\n');
  });

  it('streams a report on many addresses in chunks, each address once in each part', async () => {
    const many = Array.from({ length: 5000 }, (_, i) => ({ address: address(`user${i}@example.org`), reply: reply(250, '2.1.5 Ok') }));
    const { data, chunks } = await text(many);
    expect(chunks).toBeGreaterThan(1);
    expect(data.match(/^<user\d+@example\.org>: deliverable/gm)).toHaveLength(5000);
    expect(data.match(/^Final-Recipient: rfc822; user\d+@example\.org$/gm)).toHaveLength(5000);
  });
});
