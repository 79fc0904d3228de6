/**
 * Reading one request from a caller's connection. The helper sends the
 * request frame as SOCK_SEQPACKET packets of at most MAX_PACKET_OCTETS, the
 * fds with the first (packages/shared/src/frame/request.ts); the first
 * packet announces the whole frame's length, and packets are joined until
 * that many octets have come.
 *
 * Memory is bounded three ways:
 * - a request is at most MAX_FRAME_OCTETS (8 MiB, more than any command line
 *   Linux lets a program start with); a longer one is refused from its
 *   first packet (usage), before anything more is kept;
 * - a request of one packet is kept as it is: at most 64 KiB a connection,
 *   and connections are bounded by limits.max_connections;
 * - a longer request holds its announced length against a RequestBudget
 *   from its first packet until its submission ends: REQUEST_OCTETS_PER_UID
 *   for one uid's submissions in progress, REQUEST_OCTETS_TOTAL for all. A
 *   request that would go over is answered 75 (overload, try again), so a
 *   caller sending huge command lines over and over can fill neither the
 *   daemon nor the room other users' long command lines need.
 * The whole request must arrive within the request timeout.
 */
import { MAX_FRAME_OCTETS, requestLengthOf, SubmissionError } from '@mailsubmit/shared';
import { closeFd, type FrameFlags, type SeqpacketConnection } from '@mailsubmit/socket-addon';

/** Octets of long requests one uid's submissions in progress may hold. */
export const REQUEST_OCTETS_PER_UID = 16 * 1024 * 1024;
/** Octets of long requests all submissions in progress may hold. */
export const REQUEST_OCTETS_TOTAL = 64 * 1024 * 1024;

export interface ReceivedRequest {
  /** The whole request frame; only its first packet when `refusal` is set or the packet was cut. */
  readonly data: Buffer;
  /** The fds that came with the first packet: the receiver's to close. */
  readonly fds: number[];
  readonly flags: FrameFlags;
  /** The request is refused before it is decoded (too long, over the budget). */
  readonly refusal: SubmissionError | null;
  /** Gives back what the request holds of the budget; idempotent. Call when the submission ends. */
  release(): void;
}

/** Octets held by long requests of the submissions in progress, per uid and in all. */
export class RequestBudget {
  private held = 0;
  private readonly perUid = new Map<number, number>();

  constructor(
    readonly perUidOctets = REQUEST_OCTETS_PER_UID,
    readonly totalOctets = REQUEST_OCTETS_TOTAL,
  ) {}

  get heldOctets(): number {
    return this.held;
  }

  /** Holds `octets` for `uid`; throws SubmissionError 'overload' when that would go over. Returns the release. */
  hold(uid: number, octets: number): () => void {
    const mine = this.perUid.get(uid) ?? 0;
    if (mine + octets > this.perUidOctets) {
      throw new SubmissionError('overload', `uid ${uid} already has ${mine} octets of long command lines in progress, the limit is ${this.perUidOctets}; try again shortly`);
    }
    if (this.held + octets > this.totalOctets) {
      throw new SubmissionError('overload', `${this.held} octets of long command lines are in progress, the limit is ${this.totalOctets}; try again shortly`);
    }
    this.held += octets;
    this.perUid.set(uid, mine + octets);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held -= octets;
      const left = (this.perUid.get(uid) ?? octets) - octets;
      if (left <= 0) this.perUid.delete(uid);
      else this.perUid.set(uid, left);
    };
  }
}

export interface ReceiveOptions {
  readonly timeoutMs: number;
  /** With `budget`: whose request this is. Without a budget (a refused caller's), only the first packet is read. */
  readonly uid?: number;
  readonly budget?: RequestBudget;
}

const NOTHING_HELD = (): void => {};

/**
 * Resolves with the request once it is whole (or refused); rejects with a
 * SubmissionError when the caller goes away or the time is up, every fd
 * that came closed.
 */
export function receiveRequest(connection: SeqpacketConnection, options: ReceiveOptions): Promise<ReceivedRequest> {
  return new Promise((resolve, reject) => {
    let first: { data: Buffer; fds: number[]; flags: FrameFlags } | null = null;
    let release = NOTHING_HELD;
    let declared = 0;
    let received = 0;
    const packets: Buffer[] = [];

    const timer = setTimeout(() => {
      fail(new SubmissionError('usage', first === null
        ? `no request within ${options.timeoutMs / 1000} s`
        : `the request did not arrive whole within ${options.timeoutMs / 1000} s (${received} of ${declared} octets)`));
    }, options.timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      connection.off('frame', onPacket);
      connection.off('end', onEnd);
      connection.off('error', onError);
    };
    const done = (data: Buffer, refusal: SubmissionError | null): void => {
      cleanup();
      const head = first as NonNullable<typeof first>;
      if (refusal !== null) release();
      resolve({ data, fds: head.fds, flags: head.flags, refusal, release });
    };
    const fail = (err: SubmissionError): void => {
      cleanup();
      release();
      if (first !== null) closeAll(first.fds);
      reject(err);
    };
    const onEnd = (): void => fail(new SubmissionError('caller-gone', first === null
      ? 'the helper closed the connection without a request'
      : `the helper closed the connection after ${received} of ${declared} octets of the request`));
    const onError = (err: Error): void => fail(new SubmissionError('caller-gone', `connection error: ${err.message}`));

    const onPacket = (data: Buffer, fds: number[], flags: FrameFlags): void => {
      if (first === null) {
        first = { data, fds, flags };
        const length = flags.truncated || flags.ctruncated ? null : requestLengthOf(data);
        // One packet, or not a request whose length can be read: decoding says what it is.
        if (length === null || length <= data.byteLength || options.budget === undefined) {
          done(data, null);
          return;
        }
        if (length > MAX_FRAME_OCTETS) {
          done(data, new SubmissionError('usage', `the command line is too long: a request of ${length} octets, mailsubmit takes at most ${MAX_FRAME_OCTETS}`));
          return;
        }
        try {
          release = options.budget.hold(options.uid ?? -1, length);
        } catch (err) {
          done(data, err as SubmissionError);
          return;
        }
        declared = length;
        received = data.byteLength;
        packets.push(data);
        return;
      }
      if (fds.length > 0 || flags.truncated || flags.ctruncated) {
        closeAll(fds);
        done(first.data, new SubmissionError('usage', 'a later packet of the request carried file descriptors or was too long'));
        return;
      }
      received += data.byteLength;
      packets.push(data);
      if (received > declared) {
        done(first.data, new SubmissionError('usage', `the request is longer than the ${declared} octets its length field says`));
      } else if (received === declared) {
        done(Buffer.concat(packets, received), null);
      }
    };
    connection.on('frame', onPacket);
    connection.once('end', onEnd);
    connection.once('error', onError);
  });
}

/** Closes every fd; close(2) closes whatever it reports on Linux. */
export function closeAll(fds: readonly number[]): void {
  for (const fd of fds) {
    try {
      closeFd(fd);
    } catch {
      // Closed whatever close(2) said (Linux): nothing to undo.
    }
  }
}
