/**
 * A Downstream (5-transport/downstream.ts) inside the test process, for the
 * code before the transport. It records what it was handed and can fail as
 * an MTA does at each step of a transaction: a reply to MAIL, RCPT, DATA or
 * the dot, turned into an outcome the way the SMTP transport turns it
 * (replyOutcome), a hang until the submission is aborted, or a lost
 * connection. It commits a message only when it has read the body to its end.
 * Set `unreachable` for an MTA nobody can connect to (deliveries and
 * probes fail with mta-unreachable), and change `script` between deliveries.
 */
import { describeReply, makeReply, replyOutcome, SubmissionError, type Envelope, type SmtpStage } from '@mailsubmit/shared';
import type { Delivery, DeliveryRequest, Downstream, Verification } from '../../src/5-transport/downstream.ts';

export type TransactionStep = 'mail' | 'rcpt' | 'data' | 'dot';

/** What the MTA does at the scripted step: a reply line (`550 5.1.1 no such user`), no answer, or a dropped connection. */
export type StepFault = { readonly reply: string } | 'hang' | 'drop';

export interface DownstreamScript {
  readonly at: TransactionStep;
  readonly fault: StepFault;
}

/** One deliver() call as the fake saw it. */
export interface ReceivedDelivery {
  readonly request: DeliveryRequest;
  /** Octets of the body read so far. */
  bodyOctets: number;
  /** The whole body, once read to its end. */
  message: Buffer | null;
  /** The final 250 was given: the only way a message counts as delivered. */
  committed: boolean;
  /** What ended the transaction otherwise. */
  failure: unknown;
}

const STAGE_OF: Readonly<Record<TransactionStep, SmtpStage>> = { mail: 'mail', rcpt: 'rcpt', data: 'data-init', dot: 'data-end' };
const STEPS: readonly TransactionStep[] = ['mail', 'rcpt', 'data', 'dot'];

export class FakeDownstream implements Downstream {
  readonly description = 'fake downstream';
  readonly deliveries: ReceivedDelivery[] = [];
  closed = false;
  /** Nothing listens: every delivery and probe fails before a byte is read. */
  unreachable = false;
  probes = 0;
  private readonly started: ((delivery: ReceivedDelivery) => void)[] = [];

  constructor(public script: DownstreamScript | null = null) {}

  /** Resolves with the first delivery once deliver() has been called. */
  firstDelivery(): Promise<ReceivedDelivery> {
    const first = this.deliveries[0];
    return first !== undefined ? Promise.resolve(first) : new Promise((resolve) => this.started.push(resolve));
  }

  get committed(): ReceivedDelivery[] {
    return this.deliveries.filter((delivery) => delivery.committed);
  }

  async deliver(request: DeliveryRequest): Promise<Delivery> {
    const delivery: ReceivedDelivery = { request, bodyOctets: 0, message: null, committed: false, failure: undefined };
    this.deliveries.push(delivery);
    for (const wake of this.started.splice(0)) wake(delivery);
    try {
      if (this.unreachable) throw new SubmissionError('mta-unreachable', 'connect to the fake MTA: connection refused');
      for (const step of STEPS) {
        if (step === 'dot') delivery.message = await this.readBody(delivery);
        await this.answer(step, request.signal);
      }
    } catch (err) {
      delivery.failure = err;
      throw err;
    }
    delivery.committed = true;
    const id = `FAKE${this.deliveries.length}`;
    return { queueId: id, text: `250 2.0.0 Ok: queued as ${id}`, omitted: [] };
  }

  async verify(envelope: Envelope): Promise<Verification> {
    await this.answer('mail', undefined);
    return { reportedBy: 'daemon', verdicts: envelope.recipients.map((recipient) => ({ recipient, reply: makeReply(250, ['2.1.5 Ok']) })), omitted: [] };
  }

  async probe(): Promise<void> {
    this.probes++;
    if (this.unreachable) throw new SubmissionError('mta-unreachable', 'connect to the fake MTA: connection refused');
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private async readBody(delivery: ReceivedDelivery): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of delivery.request.body) {
      chunks.push(Buffer.from(chunk));
      delivery.bodyOctets += chunk.byteLength;
    }
    return Buffer.concat(chunks);
  }

  private async answer(step: TransactionStep, signal: AbortSignal | undefined): Promise<void> {
    if (this.script === null || this.script.at !== step) return;
    const { fault } = this.script;
    if (fault === 'drop') throw new SubmissionError('mta-protocol', `the MTA closed the connection before the reply to ${step}`);
    if (fault === 'hang') {
      // An MTA that never answers: only the submission's abort ends the wait.
      await new Promise<never>((_resolve, reject) => {
        if (signal === undefined) return;
        if (signal.aborted) reject(signal.reason);
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
    }
    if (typeof fault === 'string') return;
    const match = /^(\d{3})[ -](.*)$/.exec(fault.reply);
    if (match === null) throw new Error(`not a reply line: ${fault.reply}`);
    const reply = makeReply(Number(match[1]), [match[2] ?? '']);
    const outcome = replyOutcome(reply, STAGE_OF[step]);
    if (outcome === 'ok') return;
    throw new SubmissionError(outcome, `the MTA said ${describeReply(reply)}`);
  }
}
