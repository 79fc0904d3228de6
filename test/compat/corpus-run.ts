/**
 * The differential corpus's moving parts: the manifest of real messages
 * (test/compat/corpus/manifest, files unpacked from Debian's packages by
 * install/test-tools.sh), each door run directly on one message, and a small
 * SMTP client that hands the same bytes to the private Postfix's smtpd.
 *
 * The doors run one after the other, with no mount namespace per run (unlike
 * SideBySide.run): the program under test is sendmail itself, so it is
 * started directly, Postfix's through the wrapper that names the private
 * instance, mailsubmit's helper with argv[0] /usr/sbin/sendmail. Each run's
 * queue files are moved out of the incoming queue as soon as they are
 * complete, and read with postcat in bulk at the end.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { settledNewIds, type QueuedMessage } from '../harness/queued-messages.ts';
import type { Door, SideBySide } from '../harness/side-by-side.ts';

const run = promisify(execFile);

export const CORPUS_DIR = '/var/cache/mailsubmit/corpus';
const MANIFEST = join(import.meta.dirname, 'corpus', 'manifest');
const KNOWN = join(import.meta.dirname, 'corpus', 'known-differences');

/** Short names for the packages, used in message names. */
const ALIASES: Readonly<Record<string, string>> = {
  'libpython3.11-testsuite': 'python',
  'python3-flufl.bounce': 'flufl',
  'golang-github-jhillyerd-enmime-dev': 'enmime',
  spamassassin: 'spamassassin',
};

export interface CorpusMessage {
  /** alias/path below the package's sample directory, e.g. `enmime/mail/attachment.raw`. */
  readonly name: string;
  readonly package: string;
  readonly path: string;
  readonly sha256: string;
}

export interface ManifestCheck {
  readonly messages: readonly CorpusMessage[];
  /** Manifest entries whose file is not there. */
  readonly missing: readonly string[];
  /** Manifest entries whose file has another sha256. */
  readonly changed: readonly string[];
}

export function readManifest(): CorpusMessage[] {
  const rows = readFileSync(MANIFEST, 'utf8')
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [pkg, path, sha256] = line.split('\t') as [string, string, string];
      return { pkg, path, sha256 };
    });
  const prefixes = new Map<string, string>();
  for (const { pkg, path } of rows) {
    const dir = path.slice(0, path.lastIndexOf('/') + 1);
    const known = prefixes.get(pkg);
    prefixes.set(pkg, known === undefined ? dir : commonPrefix(known, dir));
  }
  return rows.map(({ pkg, path, sha256 }) => ({
    name: `${ALIASES[pkg] ?? pkg}/${path.slice((prefixes.get(pkg) as string).length)}`,
    package: pkg,
    path,
    sha256,
  }));
}

function commonPrefix(a: string, b: string): string {
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  return a.slice(0, a.lastIndexOf('/', i - 1) + 1);
}

export function corpusFile(message: CorpusMessage): string {
  return join(CORPUS_DIR, message.package, message.path);
}

export function checkManifest(): ManifestCheck {
  const messages = readManifest();
  const missing: string[] = [];
  const changed: string[] = [];
  for (const message of messages) {
    const file = corpusFile(message);
    if (!existsSync(file)) missing.push(message.name);
    else if (createHash('sha256').update(readFileSync(file)).digest('hex') !== message.sha256) changed.push(message.name);
  }
  return { messages, missing, changed };
}

/** How a message is submitted. */
export type Case = 'sendmail -i' | 'sendmail -t' | 'native';

export interface KnownDifference {
  readonly name: string;
  readonly case: Case;
  /** The class of difference, one of a few words (see docs/compatibility.md). */
  readonly kind: string;
  readonly reason: string;
}

/** test/compat/corpus/known-differences: name<TAB>case<TAB>class<TAB>reason, # comments. */
export function readKnownDifferences(): KnownDifference[] {
  return readFileSync(KNOWN, 'utf8')
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [name, kase, kind, reason] = line.split('\t') as [string, Case, string, string];
      return { name, case: kase, kind, reason };
    });
}

/**
 * The header field names of a message as written, as Postfix finds its
 * header: after a leading mbox `From ` line (sendmail drops it), up to the
 * first line that is neither a field nor a continuation; a message whose
 * first line is not a field has none.
 */
export function headerNames(bytes: Buffer): string[] {
  const names: string[] = [];
  const lines = bytes.toString('latin1').split('\n');
  if (lines[0]?.startsWith('From ')) lines.shift();
  for (const line of lines) {
    const match = /^([!-9;-~]+)[ \t]*:/.exec(line);
    if (match !== null) names.push(match[1] as string);
    else if (names.length === 0 || !/^[ \t]/.test(line)) break;
  }
  return names;
}

/** True when the header section has a To, Cc or Bcc field with something in it: a message for `sendmail -t`. */
export function hasHeaderRecipients(bytes: Buffer): boolean {
  const header = bytes.toString('latin1').split(/\r?\n\r?\n/, 1)[0] as string;
  return /^(to|cc|bcc)[ \t]*:[ \t]*\S/im.test(header);
}

export interface Exit {
  readonly code: number | null;
  readonly stderr: string;
}

const ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root' };

/**
 * Runs one door's sendmail with `args`, `input` on stdin, until it exits.
 * What it queued stays in the queue for takeQueued: pickupQueued tells
 * Postfix's (queued by pickup) from mailsubmit's (queued by smtpd).
 */
export async function runSendmail(sbs: SideBySide, door: Door, args: readonly string[], input: Buffer): Promise<Exit> {
  const child =
    door === 'postfix'
      ? spawn(sbs.sendmailPath.postfix, args, { env: ENV, stdio: ['pipe', 'ignore', 'pipe'] })
      : spawn(sbs.sendmailPath.mailsubmit, args, { argv0: '/usr/sbin/sendmail', env: ENV, stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.on('error', () => undefined);
  child.stdin.end(input);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  return { code, stderr };
}

/** True for a message pickup queued (Postfix's sendmail), false for one smtpd queued (it records the SMTP client). */
export function pickupQueued(message: QueuedMessage): boolean {
  return !(message.envelope.get('named_attribute') ?? []).some((attribute) => attribute.startsWith('client_address='));
}

/**
 * Moves the complete messages in the incoming queue (once Postfix has
 * settled) into a directory of their own, named `tag-QUEUEID`, and returns
 * their paths: read later, in bulk, by readHeld.
 */
export async function holdQueued(sbs: SideBySide, tag: string): Promise<string[]> {
  const held = join(sbs.postfix.dir, 'held');
  mkdirSync(held, { recursive: true });
  const ids = await settledNewIds(sbs.postfix.dir, new Set(), 20_000, 5);
  return ids.map((id) => {
    const path = join(held, `${tag}-${id}`);
    renameSync(join(sbs.postfix.dir, 'queue', 'incoming', id), path);
    return path;
  });
}

/** Reads queue files with postcat (-e -h -b), many files a call, as readQueued reads one. */
export async function readHeld(postfixDir: string, paths: readonly string[]): Promise<Map<string, QueuedMessage>> {
  const messages = new Map<string, QueuedMessage>();
  for (let i = 0; i < paths.length; i += 100) {
    const chunk = paths.slice(i, i + 100);
    const { stdout } = await run('/usr/sbin/postcat', ['-c', postfixDir, '-e', '-h', '-b', ...chunk], { encoding: 'buffer', maxBuffer: 1024 * 1024 * 1024 });
    for (const path of chunk) {
      const section = (name: string, next: string) => {
        const begin = stdout.indexOf(`*** ${name} ${path} ***\n`);
        const end = stdout.indexOf(`*** ${next} ${path} ***\n`, begin);
        if (begin === -1 || end === -1) throw new Error(`postcat printed no ${name} for ${path}`);
        return stdout.subarray(begin + `*** ${name} ${path} ***\n`.length, end);
      };
      const envelope = new Map<string, string[]>();
      // Records come before the content and after it (those cleanup extracted from the header: -t's recipients).
      const records = `${section('ENVELOPE RECORDS', 'MESSAGE CONTENTS').toString('utf8')}${section('HEADER EXTRACTED', 'MESSAGE FILE END').toString('utf8')}`;
      for (const line of records.split('\n')) {
        const match = /^([a-z_]+): ?(.*)$/.exec(line);
        if (match === null) continue;
        const [, name, value] = match as unknown as [string, string, string];
        envelope.set(name, [...(envelope.get(name) ?? []), value]);
      }
      messages.set(path, {
        queueId: path.slice(path.lastIndexOf('-') + 1),
        sender: envelope.get('sender')?.[0] ?? '',
        recipients: envelope.get('recipient') ?? [],
        envelope,
        content: Buffer.from(section('MESSAGE CONTENTS', 'HEADER EXTRACTED')),
      });
    }
  }
  return messages;
}

export interface SmtpResult {
  /** Every reply's code, in order: greeting, EHLO, XFORWARD, MAIL, RCPT, DATA, end of data. */
  readonly replies: readonly number[];
  /** True when the end of data got a 250: smtpd queued the message. */
  readonly queued: boolean;
  readonly last: string;
}

/**
 * Sends `message` over SMTP as a mail client would write it: LF line ends
 * as CRLF (a CR already before the LF stays one), lines starting with a dot
 * doubled, a line end added after an unterminated last line; everything else,
 * bare CR and NUL included, byte for byte.
 */
export async function sendOverSmtp(port: number, sender: string, recipient: string, message: Buffer): Promise<SmtpResult> {
  const socket = connect(port, '127.0.0.1');
  const replies: number[] = [];
  let buffered = '';
  let last = '';
  let waiting: ((reply: string) => void) | undefined;
  let failed: Error | undefined;
  socket.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('latin1');
    for (;;) {
      // A reply ends with a line whose code is followed by a space (or nothing).
      const match = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\r?\n/.exec(buffered);
      if (match === null) return;
      buffered = buffered.slice(match[0].length);
      const resolve = waiting;
      waiting = undefined;
      resolve?.(match[0]);
    }
  });
  socket.on('error', (error) => {
    failed = error;
    waiting?.('');
  });
  const reply = () =>
    new Promise<number>((resolve, reject) => {
      if (failed !== undefined) return reject(failed);
      waiting = (text) => {
        if (text === '') return reject(failed ?? new Error('smtp: connection closed'));
        last = text.trimEnd().split('\n').at(-1) as string;
        const code = Number(text.slice(0, 3));
        replies.push(code);
        resolve(code);
      };
    });
  const command = (line: string) => {
    socket.write(`${line}\r\n`);
    return reply();
  };
  try {
    await reply();
    await command('EHLO corpus.test');
    // As the native door hands mail over (docs/postfix.md): a remote client's
    // message, which cleanup leaves as written (no added Date, Message-ID or
    // From, no address rewriting in the header).
    if ((await command('XFORWARD SOURCE=REMOTE')) !== 250) throw new Error(`smtp: XFORWARD refused: ${last}`);
    const eightBit = message.some((byte) => byte >= 0x80);
    if ((await command(`MAIL FROM:<${sender}>${eightBit ? ' BODY=8BITMIME' : ''}`)) !== 250) return { replies, queued: false, last };
    if ((await command(`RCPT TO:<${recipient}>`)) !== 250) return { replies, queued: false, last };
    if ((await command('DATA')) !== 354) return { replies, queued: false, last };
    socket.write(smtpData(message));
    const code = await reply();
    socket.end('QUIT\r\n');
    return { replies, queued: code === 250, last };
  } finally {
    socket.destroy();
  }
}

/** The DATA section for `message`, up to and including the final dot line. */
export function smtpData(message: Buffer): Buffer {
  const out: Buffer[] = [];
  let start = 0;
  while (start < message.length) {
    const lf = message.indexOf(0x0a, start);
    const end = lf === -1 ? message.length : lf;
    let line = message.subarray(start, end);
    if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, -1);
    if (line[0] === 0x2e) out.push(Buffer.from('.'));
    out.push(line, Buffer.from('\r\n'));
    start = end + 1;
  }
  out.push(Buffer.from('.\r\n'));
  return Buffer.concat(out);
}
