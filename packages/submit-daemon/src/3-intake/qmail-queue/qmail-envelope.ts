/**
 * Reads the qmail-queue envelope from the second passed fd (the caller's
 * fd 1) and validates it. The whole envelope is read before the message,
 * because MAIL FROM and RCPT TO go to the MTA first; it is small, so it is
 * collected in memory under a byte cap and the same deadlines as the message.
 */
import { MAX_QMAIL_ENVELOPE_OCTETS, parseQmailEnvelope, type Envelope, type Limits, type QmailClientFacts } from '@mailsubmit/shared';
import type { Semaphore } from '../../util/semaphore.ts';
import { openPassedInput } from '../passed-fd-input.ts';

export interface QmailEnvelopeInput {
  readonly limits: Limits;
  readonly client: QmailClientFacts;
  readonly deadlineMs: number;
  readonly idleMs: number;
  /** Stops the read (caller gone, shutdown) with the abort reason. */
  readonly signal?: AbortSignal;
}

/** Takes ownership of `fd`: it is closed whatever happens. Throws SubmissionError. */
export async function readQmailEnvelope(fd: number, input: QmailEnvelopeInput, fileReads: Semaphore): Promise<Envelope> {
  const passed = await openPassedInput(
    fd,
    { maxOctets: MAX_QMAIL_ENVELOPE_OCTETS, deadlineMs: input.deadlineMs, idleMs: input.idleMs },
    fileReads,
    'the envelope (fd 1)',
  );
  const onAbort = () => passed.stream.destroy(input.signal?.reason as Error);
  input.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    if (input.signal?.aborted === true) onAbort();
    const chunks: Buffer[] = [];
    for await (const chunk of passed.stream) chunks.push(chunk as Buffer);
    return parseQmailEnvelope(Buffer.concat(chunks), { limits: input.limits, client: input.client });
  } finally {
    input.signal?.removeEventListener('abort', onAbort);
    passed.release();
  }
}
