/**
 * The daemon's log as a test reads it: pino writes one JSON object a line
 * on standard output, in batches, so a chunk may end inside a line. A line
 * that is not JSON is kept as { msg: 'unparsed', line }.
 */
import type { Readable } from 'node:stream';

/** Appends each complete line `stream` writes to `lines`, parsed. */
export function collectLogLines(stream: Readable | null, lines: Record<string, unknown>[]): void {
  let rest = '';
  stream?.on('data', (chunk: Buffer) => {
    const text = rest + chunk.toString('utf8');
    const complete = text.split('\n');
    rest = complete.pop() ?? '';
    for (const line of complete) {
      if (line.trim() === '') continue;
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        lines.push({ msg: 'unparsed', line });
      }
    }
  });
}
