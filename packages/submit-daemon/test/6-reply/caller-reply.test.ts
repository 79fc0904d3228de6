/**
 * The reply to the caller over a real SEQPACKET connection: the frame the
 * helper reads (status, outcome, one clean line), the connection closed
 * after it, the exit status each front door's callers get for an outcome,
 * and a helper that is already gone costing nothing but a returned error.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeReply, encodeReply, MAX_REPLY_TEXT_OCTETS, type Outcome } from '@mailsubmit/shared';
import { exitStatus, sendCallerReply } from '../../src/6-reply/caller-reply.ts';
import { nativeDoor } from '../../src/3-intake/native/native-door.ts';
import { qmailQueueDoor } from '../../src/3-intake/qmail-queue/qmail-queue-door.ts';
import { sendmailDoor } from '../../src/3-intake/sendmail/sendmail-door.ts';
import { SeqpacketPeer } from '../support/seqpacket-peer.ts';

let peer: SeqpacketPeer;
beforeAll(() => {
  peer = new SeqpacketPeer();
});
afterAll(() => peer.stop());

describe('the reply frame', () => {
  it('is one packet the helper decodes to the status, outcome and text, and then the connection ends', async () => {
    const { daemon, helper } = await peer.connect();
    expect(sendCallerReply(daemon, 0, 'ok', 'queued as 4ABC123')).toBeNull();
    expect(daemon.closed).toBe(true);
    const packet = await helper.recv();
    if (!('data' in packet)) throw new Error(`no reply: ${JSON.stringify(packet)}`);
    expect(Buffer.compare(packet.data, Buffer.from(encodeReply({ status: 0, outcome: 'ok', text: 'queued as 4ABC123' })))).toBe(0);
    expect(decodeReply(packet.data)).toEqual({ status: 0, outcome: 'ok', text: 'queued as 4ABC123' });
    expect(await helper.recv()).toEqual({ eof: true });
    await helper.close();
  });

  it('carries an MTA\'s words as one printable line within the cap', async () => {
    const { daemon, helper } = await peer.connect();
    const text = `the MTA refused the message permanently: 554 5.7.1 bad\r\nInjected: line\u001b[2J ${'x'.repeat(2000)}`;
    expect(sendCallerReply(daemon, 69, 'message-refused', text)).toBeNull();
    const packet = await helper.recv();
    if (!('data' in packet)) throw new Error(`no reply: ${JSON.stringify(packet)}`);
    const reply = decodeReply(packet.data);
    expect(reply.status).toBe(69);
    expect(reply.text.startsWith('the MTA refused the message permanently: 554 5.7.1 bad  Injected: line [2J x')).toBe(true);
    expect(reply.text.endsWith('...')).toBe(true);
    expect(Buffer.byteLength(reply.text)).toBeLessThanOrEqual(MAX_REPLY_TEXT_OCTETS);
    await helper.close();
  });
});

describe('a helper that is gone', () => {
  it('makes the send return its error, never throw, and the connection is closed', async () => {
    const { daemon, helper } = await peer.connect();
    await helper.close();
    let result: Error | null = null;
    expect(() => {
      result = sendCallerReply(daemon, 75, 'caller-gone', 'the caller went away');
    }).not.toThrow();
    expect(result).toBeInstanceOf(Error);
    expect(String(result)).toMatch(/EPIPE|ECONNRESET/);
    expect(daemon.closed).toBe(true);
  });

  it('on a connection already closed: nothing is sent and nothing fails', async () => {
    const { daemon, helper } = await peer.connect();
    daemon.close();
    expect(sendCallerReply(daemon, 0, 'ok', 'queued')).toBeNull();
    expect(await helper.recv()).toEqual({ eof: true });
    await helper.close();
  });
});

describe('the exit status by front door', () => {
  // docs/submission-interface.md: sysexits for mailsubmit, the same for mailsubmit-sendmail but 75 on a bad
  // command line (as Postfix's sendmail), qmail-queue(8)'s own codes for mailsubmit-qmail-queue.
  const cases: [Outcome, number, number, number][] = [
    ['ok', 0, 0, 0],
    ['usage', 64, 75, 81],
    ['message-syntax', 65, 65, 31],
    ['no-input', 66, 66, 54],
    ['recipient-refused', 67, 67, 31],
    ['message-refused', 69, 69, 31],
    ['mta-tempfail', 75, 75, 71],
    ['mta-unreachable', 75, 75, 73],
    ['mta-timeout', 75, 75, 72],
    ['mta-protocol', 75, 75, 74],
    ['caller-gone', 75, 75, 54],
    ['spool-full', 75, 75, 53],
    ['attribute-not-permitted', 77, 77, 81],
    ['config', 78, 78, 55],
  ];
  it.each(cases)('%s: mailsubmit %i, mailsubmit-sendmail %i, mailsubmit-qmail-queue %i', (outcome, native, sendmail, qmail) => {
    expect(exitStatus(outcome, nativeDoor)).toBe(native);
    expect(exitStatus(outcome, sendmailDoor)).toBe(sendmail);
    expect(exitStatus(outcome, qmailQueueDoor)).toBe(qmail);
    // A request whose door is not known yet (it could not be decoded) gets the native codes.
    expect(exitStatus(outcome, null)).toBe(native);
  });
});
