/**
 * One 100 MB message, as a regular file on stdin and as a pipe: the daemon
 * streams mail, so its memory must stay flat whatever the size (the
 * architecture's promise), and the message must arrive byte for byte.
 * The daemon's VmRSS is sampled every 50 ms while the message flows.
 *
 * The message is written to a temporary file in 1 MB pieces and never held
 * whole by the test; its expected SHA-256 (of the delivered form: CRLF line
 * ends) is computed as it is written. Postfix is in the path as in
 * production, with its message_size_limit (200 MB in the private instance)
 * above the message.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childOutput } from '../support/child-output.ts';
import { startMailPath } from '../support/mail-path.ts';
import { MailsubmitUnderTest } from '../support/mailsubmit-under-test.ts';
import { PrivatePostfix } from '../support/private-postfix.ts';
import { RecordingSink, withoutFirstHeaderField } from '../support/recording-sink.ts';
import { tearDown } from '../support/tear-down.ts';
import { ensureUser, type TestUser } from '../support/test-accounts.ts';

const MESSAGE_OCTETS = 100 * 1024 * 1024;
/** The architecture's bound for one message of any size. */
const MAX_RSS_GROWTH_KB = 32 * 1024;
const SAMPLE_MS = 50;

function vmRssKb(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (match === null) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]);
}

interface BigSubmission {
  readonly path: string;
  /** SHA-256 of the message as the sink must receive it (CRLF line ends). */
  readonly sha256: string;
  readonly id: string;
}

/** Writes envelope and a message of about MESSAGE_OCTETS (LF line ends, 77-octet lines) in 1 MB pieces. */
function writeSubmission(dir: string, user: TestUser, id: string): BigSubmission {
  const path = join(dir, `${id}.in`);
  const fd = openSync(path, 'w', 0o644);
  const hash = createHash('sha256');
  try {
    writeSync(fd, `sender: ${user.name}@example.org\nrecipient: rcpt@example.org\n\n`);
    const header = `From: ${user.name}@example.org\nTo: rcpt@example.org\nSubject: large ${id}\nMessage-ID: <${id}@load.example.org>\nDate: Tue, 24 Nov 2026 09:30:00 +0000\n\n`;
    writeSync(fd, header);
    hash.update(header.replace(/\n/g, '\r\n'));
    const filler = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/abcdefghij';
    let written = header.length;
    let line = 0;
    while (written < MESSAGE_OCTETS) {
      const lines: string[] = [];
      for (let i = 0; i < 13_600; i++, line++) lines.push(`${line.toString(36).padStart(8, '0')} ${filler.slice(line % 7)}\n`);
      const piece = lines.join('');
      writeSync(fd, piece);
      hash.update(piece.replace(/\n/g, '\r\n'));
      written += piece.length;
    }
  } finally {
    closeSync(fd);
  }
  return { path, sha256: hash.digest('hex'), id };
}

describe.skipIf(!PrivatePostfix.isAvailable())('one 100 MB message', () => {
  const sink = new RecordingSink();
  let postfix: PrivatePostfix;
  let ms: MailsubmitUnderTest;
  let user: TestUser;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync('/tmp/mailsubmit-large-');
    ({ postfix, ms } = await startMailPath(sink, { mailsubmit: { limits: 'max_message_size = 134217728' } }));
    user = ensureUser('mstlarge');
    ms.setAuthorizations([user.name]);
  }, 60_000);

  afterAll(async () => {
    await tearDown(ms, postfix, sink);
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs the helper with the file as stdin (`file`) or fed through a pipe (`pipe`); returns exit code and max RSS growth. */
  async function submitSampled(submission: BigSubmission, stdin: 'file' | 'pipe'): Promise<{ code: number | null; stderr: string; growthKb: number; baseKb: number }> {
    const pid = ms.daemonPid;
    if (pid === undefined) throw new Error('no daemon');
    const baseKb = vmRssKb(pid);
    let maxKb = baseKb;
    const sampler = setInterval(() => (maxKb = Math.max(maxKb, vmRssKb(pid))), SAMPLE_MS);
    const inputFd = stdin === 'file' ? openSync(submission.path, 'r') : null;
    try {
      const child = spawn(ms.helperPath, [], { uid: user.uid, gid: user.gid, stdio: [inputFd ?? 'pipe', 'ignore', 'pipe'], env: {} });
      const output = childOutput(child);
      if (child.stdin !== null) createReadStream(submission.path).pipe(child.stdin);
      const { code, stderr } = await output;
      maxKb = Math.max(maxKb, vmRssKb(pid));
      return { code, stderr, growthKb: maxKb - baseKb, baseKb };
    } finally {
      clearInterval(sampler);
      if (inputFd !== null) closeSync(inputFd);
    }
  }

  async function arrivedHash(id: string): Promise<string> {
    const message = await sink.waitForMessage((m) => m.data.includes(`Message-ID: <${id}@load.example.org>`), 120_000);
    const index = sink.messages.indexOf(message);
    // Free the 100 MB in the test process before the next run.
    sink.messages.splice(index, 1);
    // Postfix prepends its Received: field; the rest is the message as written.
    return createHash('sha256').update(withoutFirstHeaderField(message.data)).digest('hex');
  }

  for (const stdin of ['file', 'pipe'] as const) {
    it(`streams it from a ${stdin === 'file' ? 'regular file' : 'pipe'}: RSS growth under 32 MB, delivered intact`, async () => {
      const submission = writeSubmission(dir, user, `large-${stdin}`);
      // A fresh daemon for each, so one run's heap growth is not the next one's baseline.
      await ms.stopDaemon();
      await ms.startDaemon();
      const result = await submitSampled(submission, stdin);
      console.log(`large (${stdin}): exit ${result.code}, daemon VmRSS ${result.baseKb} kB, max growth ${result.growthKb} kB`);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.growthKb).toBeLessThan(MAX_RSS_GROWTH_KB);
      expect(await arrivedHash(submission.id)).toBe(submission.sha256);
      rmSync(submission.path);
    }, 180_000);
  }
});
