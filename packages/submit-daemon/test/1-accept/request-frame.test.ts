/**
 * Reading one request from a real SEQPACKET connection: one packet or
 * several joined, the fds beside the first, the deadlines, the packets the
 * kernel cut (too long, too many fds), what a later packet may not carry,
 * and the budget long requests hold. Every fd that comes is either handed
 * over or closed: the process's open fd count says which.
 */
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodeRequest, MAX_FRAME_OCTETS, MAX_PACKET_OCTETS, MODE_NATIVE, requestPackets } from '@mailsubmit/shared';
import type { SeqpacketConnection } from '@mailsubmit/socket-addon';
import { closeAll, receiveRequest, RequestBudget } from '../../src/1-accept/request-frame.ts';
import { openFdCount } from '../support/caller-fds.ts';
import { SeqpacketPeer, type HelperEnd, type ListenerLimits } from '../support/seqpacket-peer.ts';
import { rejection } from '../support/rejection.ts';

let peer: SeqpacketPeer;
const connections: SeqpacketConnection[] = [];
beforeAll(() => {
  peer = new SeqpacketPeer();
});
afterEach(() => {
  for (const connection of connections.splice(0)) connection.close();
});
afterAll(() => peer.stop());

async function connect(limits: ListenerLimits = {}): Promise<{ daemon: SeqpacketConnection; helper: HelperEnd }> {
  const pair = await peer.connect(limits);
  connections.push(pair.daemon);
  return pair;
}

/** A native request whose one argument makes it `octets` long in all. */
function requestOf(octets: number): Uint8Array {
  const fixed = encodeRequest({ mode: MODE_NATIVE, argv: [''] }).byteLength;
  return encodeRequest({ mode: MODE_NATIVE, argv: ['a'.repeat(octets - fixed)] });
}

async function sendAll(helper: HelperEnd, packets: readonly Uint8Array[], fds: readonly string[] = []): Promise<void> {
  for (const [index, packet] of packets.entries()) {
    const result = await helper.send(packet, index === 0 ? fds : []);
    expect(result).toEqual({ sent: packet.byteLength });
  }
}

describe('a request of one packet', () => {
  it('is the packet, with the fds that came beside it', async () => {
    const { daemon, helper } = await connect();
    const frame = encodeRequest({ mode: MODE_NATIVE, argv: ['mailsubmit', '-v'] });
    const receiving = receiveRequest(daemon, { timeoutMs: 5_000 });
    await helper.send(frame, ['pipe:the message']);
    const request = await receiving;
    expect(Buffer.compare(request.data, Buffer.from(frame))).toBe(0);
    expect(request.flags).toEqual({ truncated: false, ctruncated: false, fdsLost: false });
    expect(request.refusal).toBeNull();
    expect(request.fds).toHaveLength(1);
    expect(readFileSync(request.fds[0] as number, 'utf8')).toBe('the message');
    closeAll(request.fds);
  });

  it('longer than the listener takes arrives cut and flagged, for the decoder to refuse', async () => {
    const { daemon, helper } = await connect({ maxFrameOctets: 1024 });
    const receiving = receiveRequest(daemon, { timeoutMs: 5_000, budget: new RequestBudget() });
    await helper.send(new Uint8Array(2000).fill(0x78));
    const request = await receiving;
    expect(request.flags.truncated).toBe(true);
    expect(request.data.byteLength).toBe(1024);
    expect(request.refusal).toBeNull();
  });

  it('with more fds than the listener takes arrives flagged, every fd closed', async () => {
    const { daemon, helper } = await connect();
    const before = openFdCount();
    const receiving = receiveRequest(daemon, { timeoutMs: 5_000 });
    await helper.send(encodeRequest({ mode: MODE_NATIVE, argv: ['mailsubmit'] }), ['null', 'null', 'null']);
    const request = await receiving;
    expect(request.flags.ctruncated).toBe(true);
    expect(request.fds).toEqual([]);
    expect(openFdCount()).toBe(before);
  });
});

describe('a request of several packets', () => {
  it('is joined whole, holds its length against the budget until released, and keeps the first packet\'s fds', async () => {
    const { daemon, helper } = await connect();
    const frame = requestOf(MAX_PACKET_OCTETS * 2 + 100);
    const packets = requestPackets(frame);
    expect(packets).toHaveLength(3);
    const budget = new RequestBudget();
    const receiving = receiveRequest(daemon, { timeoutMs: 5_000, uid: 1000, budget });
    await sendAll(helper, packets, ['pipe:x']);
    const request = await receiving;
    expect(request.refusal).toBeNull();
    expect(Buffer.compare(request.data, Buffer.from(frame))).toBe(0);
    expect(request.fds).toHaveLength(1);
    expect(budget.heldOctets).toBe(frame.byteLength);
    request.release();
    request.release();
    expect(budget.heldOctets).toBe(0);
    closeAll(request.fds);
  });

  it('without a budget (a caller already refused) only the first packet is read', async () => {
    const { daemon, helper } = await connect();
    const packets = requestPackets(requestOf(MAX_PACKET_OCTETS + 10));
    const receiving = receiveRequest(daemon, { timeoutMs: 5_000 });
    await sendAll(helper, packets);
    const request = await receiving;
    expect(request.refusal).toBeNull();
    expect(request.data.byteLength).toBe(MAX_PACKET_OCTETS);
  });

  it('announcing more than the longest request is refused (usage) from its first packet, nothing held', async () => {
    const { daemon, helper } = await connect();
    const first = Buffer.from(requestPackets(requestOf(MAX_PACKET_OCTETS + 10))[0] as Uint8Array);
    first.writeUInt32LE(MAX_FRAME_OCTETS + 1, 8);
    const budget = new RequestBudget();
    const receiving = receiveRequest(daemon, { timeoutMs: 5_000, uid: 1000, budget });
    await helper.send(first);
    const request = await receiving;
    expect(request.refusal).toMatchObject({ outcome: 'usage' });
    expect(request.refusal?.message).toMatch(`a request of ${MAX_FRAME_OCTETS + 1} octets, mailsubmit takes at most ${MAX_FRAME_OCTETS}`);
    expect(budget.heldOctets).toBe(0);
  });

  it('is refused (usage) when a later packet carries fds, which are closed', async () => {
    const { daemon, helper } = await connect();
    const [first, second] = requestPackets(requestOf(MAX_PACKET_OCTETS + 10)) as [Uint8Array, Uint8Array];
    const budget = new RequestBudget();
    const before = openFdCount();
    const receiving = receiveRequest(daemon, { timeoutMs: 5_000, uid: 1000, budget });
    await helper.send(first, ['pipe:stdin']);
    await helper.send(second, ['null']);
    const request = await receiving;
    expect(request.refusal).toMatchObject({ outcome: 'usage' });
    expect(request.refusal?.message).toMatch(/a later packet of the request carried file descriptors/);
    expect(budget.heldOctets).toBe(0);
    // The first packet's fd is the receiver's; the later packet's was closed.
    expect(request.fds).toHaveLength(1);
    expect(openFdCount()).toBe(before + 1);
    closeAll(request.fds);
    expect(openFdCount()).toBe(before);
  });

  it('is refused (usage) when more octets come than it announced', async () => {
    const { daemon, helper } = await connect();
    const frame = requestOf(MAX_PACKET_OCTETS + 10);
    const [first, second] = requestPackets(frame) as [Uint8Array, Uint8Array];
    const budget = new RequestBudget();
    const receiving = receiveRequest(daemon, { timeoutMs: 5_000, uid: 1000, budget });
    await helper.send(first);
    await helper.send(Buffer.concat([second, Buffer.from('extra')]));
    const request = await receiving;
    expect(request.refusal).toMatchObject({ outcome: 'usage' });
    expect(request.refusal?.message).toMatch(`the request is longer than the ${frame.byteLength} octets its length field says`);
    expect(budget.heldOctets).toBe(0);
  });
});

describe('the budget for long requests', () => {
  it('refuses (overload) one uid going over its share, and everybody going over the total', async () => {
    const size = MAX_PACKET_OCTETS * 2;
    const budget = new RequestBudget(size * 1.5, size * 2.5);
    const firstOfLong = requestPackets(requestOf(size))[0] as Uint8Array;
    const helpers: HelperEnd[] = [];
    const start = async (uid: number) => {
      const { daemon, helper } = await connect();
      helpers.push(helper);
      const receiving = receiveRequest(daemon, { timeoutMs: 5_000, uid, budget });
      await helper.send(firstOfLong);
      return receiving;
    };
    // The first is still arriving (one packet of three): it holds its whole length already.
    const held = rejection(start(1000));
    await expect.poll(() => budget.heldOctets).toBe(size);
    const sameUid = await start(1000);
    expect(sameUid.refusal).toMatchObject({ outcome: 'overload' });
    expect(sameUid.refusal?.message).toMatch(/^uid 1000 already has/);
    const otherUid = rejection(start(1001));
    await expect.poll(() => budget.heldOctets).toBe(size * 2);
    const third = await start(1002);
    expect(third.refusal).toMatchObject({ outcome: 'overload' });
    expect(third.refusal?.message).toMatch(/octets of long command lines are in progress, the limit is/);
    for (const helper of helpers) await helper.close();
    expect(await held).toMatchObject({ outcome: 'caller-gone' });
    expect(await otherUid).toMatchObject({ outcome: 'caller-gone' });
    expect(budget.heldOctets).toBe(0);
  });
});

describe('a request that does not come whole', () => {
  it('nothing within the deadline: usage', async () => {
    const { daemon } = await connect();
    const error = await rejection(receiveRequest(daemon, { timeoutMs: 100 }));
    expect(error.outcome).toBe('usage');
    expect(error.message).toMatch(/no request within 0.1 s/);
  });

  it('the rest not within the deadline: usage, the first packet\'s fds closed, the budget given back', async () => {
    const { daemon, helper } = await connect();
    const frame = requestOf(MAX_PACKET_OCTETS + 10);
    const budget = new RequestBudget();
    const before = openFdCount();
    const receiving = receiveRequest(daemon, { timeoutMs: 300, uid: 1000, budget });
    const failed = rejection(receiving);
    await helper.send(requestPackets(frame)[0] as Uint8Array, ['pipe:stdin', 'null']);
    const error = await failed;
    expect(error.outcome).toBe('usage');
    expect(error.message).toMatch(`(${MAX_PACKET_OCTETS} of ${frame.byteLength} octets)`);
    expect(budget.heldOctets).toBe(0);
    expect(openFdCount()).toBe(before);
  });

  it('the helper gone half-way: caller-gone, the fds closed, the budget given back', async () => {
    const { daemon, helper } = await connect();
    const frame = requestOf(MAX_PACKET_OCTETS + 10);
    const budget = new RequestBudget();
    const before = openFdCount();
    const receiving = receiveRequest(daemon, { timeoutMs: 5_000, uid: 1000, budget });
    const failed = rejection(receiving);
    await helper.send(requestPackets(frame)[0] as Uint8Array, ['pipe:stdin']);
    await helper.close();
    const error = await failed;
    expect(error.outcome).toBe('caller-gone');
    expect(error.message).toMatch(`after ${MAX_PACKET_OCTETS} of ${frame.byteLength} octets`);
    expect(budget.heldOctets).toBe(0);
    expect(openFdCount()).toBe(before);
  });

  it('the helper gone before a word: caller-gone', async () => {
    const { daemon, helper } = await connect();
    const failed = rejection(receiveRequest(daemon, { timeoutMs: 5_000 }));
    await helper.close();
    const error = await failed;
    expect(error.outcome).toBe('caller-gone');
    expect(error.message).toMatch(/closed the connection without a request/);
  });
});
