/**
 * Intake for the sendmail front door: the caller's standard input is a bare
 * message, its envelope is the command line plus, with -t, the header
 * section. So the header section is read first, bounded by the header limit
 * (HeaderSectionReader), the envelope is built from it, and the message is
 * then streamed on: the rewritten header section (Bcc gone, missing
 * Message-Id, Date and From added where the MTA will not add them, see
 * HeaderCompletion in shared/sendmail/sendmail-message.ts), then the body as it arrives, cut at a
 * single-dot line unless -i. The body is never buffered. A header section
 * past the header limit is not held either: its first part goes, then the
 * rest streams through HeaderTail (Postfix's sendmail has no limit on the
 * section); only -t, whose recipients must be known before the message
 * goes on, refuses it.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Readable } from 'node:stream';
import {
  buildSendmailEnvelope,
  continueHeader,
  DotTerminator,
  HeaderSectionReader,
  messageIdHost,
  rewriteHeader,
  SubmissionError,
  type Envelope,
  type HeaderTail,
  type HeaderCompletion,
  type Limits,
  type SendmailCaller,
  type SendmailCommand,
} from '@mailsubmit/shared';

export interface SendmailIntake {
  readonly envelope: Envelope;
  /** The message to validate and send, header rewritten. */
  readonly message: Readable;
  /** Octets the rewrite added: the parser's limits grow by this much, so they still apply to what the caller wrote. */
  readonly addedOctets: number;
  /**
   * Line numbers of the message as sent, back to the caller's. The header
   * section is checked on the caller's lines already; after it, the sent
   * lines differ from the caller's by the lines removed and added.
   */
  callerLine(sentLine: number): number;
}

export interface SendmailIntakeOptions {
  readonly command: SendmailCommand;
  readonly caller: SendmailCaller;
  readonly limits: Limits;
  readonly now?: Date;
  readonly hostName?: string;
  /** Who adds the missing Message-Id, Date and From (default: the daemon). */
  readonly completion?: HeaderCompletion;
  /** Stops the header read (caller gone, shutdown) with the abort reason. */
  readonly signal?: AbortSignal;
}

/** Reads the header section from `source` and returns the envelope and the message stream. Throws SubmissionError. */
export async function readSendmailInput(source: Readable, options: SendmailIntakeOptions): Promise<SendmailIntake> {
  const { command, caller, limits } = options;
  const reader = new HeaderSectionReader({ limits, dotEnds: !command.ignoreDots });
  const chunks = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let rest: Buffer | null = null;
  let exhausted = false;
  const onAbort = () => source.destroy(options.signal?.reason as Error);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    if (options.signal?.aborted === true) onAbort();
    while (rest === null) {
      const next = await chunks.next();
      if (next.done === true) {
        reader.end();
        // A last line that is not a header line, without a line end: the body.
        rest = reader.takeBody();
        exhausted = true;
        break;
      }
      rest = reader.write(next.value);
    }
  } catch (error) {
    await chunks.return?.();
    throw error;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
  const section = reader.section;
  if (section === null) throw new SubmissionError('internal', 'the header section reader ended without a section');
  let envelope: Envelope;
  try {
    if (section.unfinished && command.extractRecipients) {
      throw new SubmissionError(
        'over-limit',
        `header section larger than ${limits.maxHeaderOctets} octets (limits.max_header_size in mailsubmit.conf): with -t the recipients are read from the whole section before the message goes on; raise the limit, or give the recipients as arguments`,
        { line: section.lineCount + 1 },
      );
    }
    envelope = buildSendmailEnvelope(command, section, caller, limits);
  } catch (error) {
    await chunks.return?.();
    throw error;
  }
  const now = options.now ?? new Date();
  const facts = {
    now,
    hostName: messageIdHost(options.hostName ?? hostname()),
    unique: randomBytes(6).toString('hex'),
    fullName: caller.fullName ?? null,
    completion: options.completion ?? 'daemon',
  };
  const header = rewriteHeader(section, command, envelope.sender, facts);
  // Past the header limit: the first part now, the rest of the section and the added fields through the tail.
  const continued = section.unfinished ? continueHeader(section, command, envelope.sender, facts) : null;
  const tail: HeaderTail | null = continued?.tail ?? null;
  // The caller's header lines, the separator among them, against the lines sent for them.
  const callerHeaderLines = section.lineCount + (section.separator !== null && !section.separatorAdded ? 1 : 0);
  const sentHeaderLines = continued?.headLines ?? header.lineCount;
  const shift = callerHeaderLines - sentHeaderLines;
  const finished = section.endedByDot || exhausted;

  async function* body(): AsyncGenerator<Buffer> {
    yield continued?.head ?? header.bytes;
    if (finished) {
      if (exhausted && rest !== null && rest.length > 0) yield* tail === null ? [rest] : tail.write(rest);
      if (tail !== null) yield* tail.end();
      await chunks.return?.();
      return;
    }
    const dots = command.ignoreDots ? null : new DotTerminator(true);
    try {
      let chunk: Buffer | null = rest;
      for (;;) {
        if (chunk !== null && chunk.length > 0) {
          if (dots === null) yield* tail === null ? [chunk] : tail.write(chunk);
          else {
            const scan = dots.write(chunk);
            if (scan.data.length > 0) yield* tail === null ? [scan.data] : tail.write(scan.data);
            // What follows the dot line is not read, as sendmail(1) leaves it.
            if (scan.ended) {
              if (tail !== null) yield* tail.end();
              return;
            }
          }
        }
        const next = await chunks.next();
        if (next.done === true) break;
        chunk = next.value;
      }
      const last = dots?.end();
      if (last !== undefined && last.data.length > 0) yield* tail === null ? [last.data] : tail.write(last.data);
      if (tail !== null) yield* tail.end();
    } finally {
      await chunks.return?.();
    }
  }

  return {
    envelope,
    message: Readable.from(body(), { objectMode: false }),
    // Past the header limit the added fields are known only at the section's end: at most three, Resent- each, and an empty line.
    addedOctets: header.addedOctets + (section.separatorAdded ? 1 : 0) + (section.unfinished ? 3 * 'Resent-'.length + 1 : 0),
    callerLine: (sentLine) => (sentLine > sentHeaderLines ? sentLine + shift : sentLine),
  };
}
