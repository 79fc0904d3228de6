/**
 * The differential corpus's moving parts: the manifest of real messages
 * (test/compat/corpus/manifest, files unpacked from Debian's packages by
 * install/test-tools.sh) and each door run directly on one message (the
 * same bytes go to the private Postfix's smtpd by test/support/smtp-client.ts).
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
import { join } from 'node:path';
import { promisify } from 'node:util';
import { childOutput } from '../support/child-output.ts';
import { queuedMessage, settledNewIds, type QueuedMessage } from '../support/queued-messages.ts';
import type { Door, SideBySide } from '../support/side-by-side.ts';

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
  const output = childOutput(child);
  child.stdin.end(input);
  const { code, stderr } = await output;
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
      // Records come before the content and after it (those cleanup extracted from the header: -t's recipients).
      const records = `${section('ENVELOPE RECORDS', 'MESSAGE CONTENTS').toString('utf8')}${section('HEADER EXTRACTED', 'MESSAGE FILE END').toString('utf8')}`;
      messages.set(path, queuedMessage(path.slice(path.lastIndexOf('-') + 1), records, Buffer.from(section('MESSAGE CONTENTS', 'HEADER EXTRACTED'))));
    }
  }
  return messages;
}
