/**
 * The local queue's directory as a test inspects it from outside the
 * daemon: what each of incoming/, ready/ and state/ holds, and whether a
 * file in ready/ is whole as the format defines it
 * (packages/submit-daemon/src/5-transport/local-queue/queue-file-format.ts):
 * the version line, its own id in the head, and a trailer whose length is
 * that of the message between the head and the trailer. A file cut short
 * or written half fails the check.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface QueueDirectoryContents {
  readonly incoming: readonly string[];
  readonly ready: readonly string[];
  readonly state: readonly string[];
}

/** The names in each subdirectory of the queue at `root` (a daemon under test's is `<ms.dir>/queue`). */
export function queueContents(root: string): QueueDirectoryContents {
  const names = (sub: string) => readdirSync(join(root, sub)).sort();
  return { incoming: names('incoming'), ready: names('ready'), state: names('state') };
}

const VERSION_LINE = 'mailsubmit-queue-file 1\n';
const TRAILER = /\nend-of-message (\d{20})\n$/;

/** What is wrong with the committed file ready/`queueId`, or null when it is whole. */
export function queueFileProblem(root: string, queueId: string): string | null {
  const bytes = readFileSync(join(root, 'ready', queueId));
  const text = bytes.toString('latin1');
  if (!text.startsWith(VERSION_LINE)) return `${queueId}: no version line`;
  const factsEnd = text.indexOf('\n\n');
  if (factsEnd === -1 || !text.slice(0, factsEnd).split('\n').includes(`queue-id: ${queueId}`)) return `${queueId}: the head does not name the file's id`;
  const envelopeEnd = text.indexOf('\n\n', factsEnd + 2);
  const trailer = TRAILER.exec(text);
  if (envelopeEnd === -1 || trailer === null) return `${queueId}: no trailer (the file is cut short)`;
  const messageOctets = bytes.length - trailer[0].length - (envelopeEnd + 2);
  if (messageOctets !== Number(trailer[1])) return `${queueId}: the trailer says ${Number(trailer[1])} message octets, the file holds ${messageOctets}`;
  return null;
}

/** The problem of every file in ready/ (none: every one is whole). */
export function damagedQueueFiles(root: string): string[] {
  return queueContents(root).ready.map((id) => queueFileProblem(root, id)).filter((problem) => problem !== null);
}
