/**
 * A delivery status notice read by parsers mailsubmit does not contain:
 * Python's email package and flufl.bounce, Debian's bounce detector
 * (parse-notice.py; install/test-tools.sh installs python3-flufl.bounce).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const PARSER = fileURLToPath(new URL('./parse-notice.py', import.meta.url));
/** Debian's interpreter, the one python3-flufl.bounce is installed for. */
const PYTHON = '/usr/bin/python3';

export interface ParsedNotice {
  headers: Record<string, string>;
  contentType: string;
  reportType: string;
  boundary: string;
  defects: string[];
  parts: { contentType: string; description: string; encoding: string | null; charset: string | null }[];
  maxLineOctets: number;
  bareLf: number;
  text: string;
  perMessage: Record<string, string>;
  recipients: Record<string, string>[];
  returned: { headers: [string, string][]; bodyOctets: number; bodySha256?: string; body?: string | null };
  flufl: { temporary: string[]; permanent: string[] } | null;
}

export function parseNotice(bytes: Buffer): ParsedNotice {
  const run = spawnSync(PYTHON, [PARSER], { input: bytes, maxBuffer: 64 << 20 });
  if (run.status !== 0) throw new Error(`parse-notice.py failed: ${run.stderr.toString()}`);
  return JSON.parse(run.stdout.toString()) as ParsedNotice;
}
