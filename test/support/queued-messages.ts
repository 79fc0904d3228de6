/**
 * The messages a private Postfix holds in its incoming queue, read with
 * postcat: what its cleanup made of a submission, before any delivery
 * changes it (the smtp client folds long lines, adds nothing else). Used
 * with a PrivatePostfix started with `queueManager: false`, where nothing
 * leaves the incoming queue.
 *
 * A queue file is complete once cleanup has set its owner-execute bit
 * (Postfix's "ready" mode 0700); a file in maildrop is one Postfix's
 * sendmail left for pickup and not yet through cleanup.
 */
import { execFile } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface QueuedMessage {
  readonly queueId: string;
  readonly sender: string;
  /** In the order of the queue file. */
  readonly recipients: readonly string[];
  /** Envelope records by name (postcat -e), each name's values in order. */
  readonly envelope: ReadonlyMap<string, readonly string[]>;
  /** The message as queued, header and body, LF line ends, long lines whole. */
  readonly content: Buffer;
}

/** Queue ids of complete messages in the incoming queue. */
export function incomingIds(postfixDir: string): string[] {
  const incoming = join(postfixDir, 'queue', 'incoming');
  // A name can go between readdir and stat: cleanup renames its temporary file to the queue id.
  return listFiles(incoming).filter((id) => ((statSync(join(incoming, id), { throwIfNoEntry: false })?.mode ?? 0) & 0o100) !== 0);
}

/**
 * Waits until Postfix has nothing half-done (maildrop empty, every incoming
 * file complete) and returns the complete ones not in `before`.
 */
export async function settledNewIds(postfixDir: string, before: ReadonlySet<string>, timeoutMs = 20_000, pollMs = 50): Promise<string[]> {
  const queue = join(postfixDir, 'queue');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // Maildrop first: pickup removes a maildrop file only after cleanup has
    // finished its incoming file, so an empty maildrop seen before incoming
    // is read means that file is already there. Read the other way round,
    // the file can leave maildrop between the two reads and be missed.
    const maildropEmpty = listFiles(join(queue, 'maildrop')).length === 0;
    const incoming = listFiles(join(queue, 'incoming'));
    const complete = incomingIds(postfixDir);
    if (maildropEmpty && complete.length === incoming.length) {
      return complete.filter((id) => !before.has(id)).sort();
    }
    if (Date.now() > deadline) throw new Error(`postfix queue did not settle: maildrop or incoming files still open in ${queue}`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/** Reads one queued message with postcat: envelope records, then the content. */
export async function readQueued(postfixDir: string, queueId: string): Promise<QueuedMessage> {
  const envelopeText = await run('/usr/sbin/postcat', ['-c', postfixDir, '-e', '-q', queueId], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const content = await run('/usr/sbin/postcat', ['-c', postfixDir, '-h', '-b', '-q', queueId], { encoding: 'buffer', maxBuffer: 512 * 1024 * 1024 });
  return queuedMessage(queueId, envelopeText.stdout, stripSectionMarkers(content.stdout));
}

/** A QueuedMessage from postcat's envelope record lines (`name: value`) and the content. */
export function queuedMessage(queueId: string, records: string, content: Buffer): QueuedMessage {
  const envelope = new Map<string, string[]>();
  for (const line of records.split('\n')) {
    const match = /^([a-z_]+): ?(.*)$/.exec(line);
    if (match === null) continue;
    const [, name, value] = match as unknown as [string, string, string];
    envelope.set(name, [...(envelope.get(name) ?? []), value]);
  }
  return { queueId, sender: envelope.get('sender')?.[0] ?? '', recipients: envelope.get('recipient') ?? [], envelope, content };
}

/** postcat -h -b prints `*** ... ***` lines around the sections; the message is what is between. */
function stripSectionMarkers(output: Buffer): Buffer {
  const lines: Buffer[] = [];
  let start = 0;
  while (start < output.length) {
    const lf = output.indexOf(0x0a, start);
    const end = lf === -1 ? output.length : lf + 1;
    const line = output.subarray(start, end);
    if (!/^\*\*\* [A-Z ]+.*\*\*\*\n?$/.test(line.toString('latin1'))) lines.push(line);
    start = end;
  }
  return Buffer.concat(lines);
}

function listFiles(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
