/**
 * The differential corpus: real messages from the test suites of Debian
 * packages (test/compat/corpus/manifest), each submitted three ways into one
 * private Postfix, with Postfix's own behaviour as the reference:
 *
 * - `sendmail -i rcpt@example.org`: Postfix's sendmail and mailsubmit's, same
 *   argv and bytes; exit codes equal, queued messages equal once Received and
 *   generated Date and Message-ID are masked (comparable()).
 * - `sendmail -t -i`, for each message with a To, Cc or Bcc field: the same.
 * - the native door (an envelope block, then the message): exits 0 exactly
 *   when Postfix's smtpd queues the same bytes sent over SMTP, and queues
 *   what smtpd queued.
 *
 * Where they disagree the message and case are listed in
 * test/compat/corpus/known-differences with the reason; the test asserts that
 * list is exactly the set of disagreements, so a fix shows as much as a
 * regression. docs/compatibility.md ("Differential corpus") carries the same
 * table. CORPUS_REPORT=FILE writes every disagreement, with its detail, as JSON.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QueuedMessage } from '../support/queued-messages.ts';
import { comparable, SideBySide } from '../support/side-by-side.ts';
import {
  checkManifest,
  corpusFile,
  hasHeaderRecipients,
  headerNames,
  holdQueued,
  pickupQueued,
  readHeld,
  readKnownDifferences,
  runSendmail,
  type Case,
  type CorpusMessage,
  type Exit,
} from './corpus-run.ts';
import { sendOverSmtp, type SmtpResult } from '../support/smtp-client.ts';

const RECIPIENT = 'rcpt@example.org';
const SENDER = 'corpus@example.org';
/** The native door's and smtpd's own recipients: both are queued by smtpd, the recipient tells them apart. */
const NATIVE_RECIPIENT = 'native@example.org';
const SMTPD_RECIPIENT = 'smtpd@example.org';
const MINIMUM = 200;
const ROOT = join(import.meta.dirname, '..', '..');
const COMPATIBILITY = join(ROOT, 'docs', 'compatibility.md');

/** What differs between the reference's queued messages and ours, or undefined when nothing does. */
function contentDifference(
  reference: readonly QueuedMessage[],
  ours: readonly QueuedMessage[],
  written: readonly string[],
  compare: { recipients: boolean } = { recipients: true },
): string | undefined {
  if (reference.length !== ours.length) return `queued ${reference.length} message(s), mailsubmit ${ours.length}`;
  for (let i = 0; i < reference.length; i++) {
    const want = comparable(reference[i] as QueuedMessage, written);
    const got = comparable(ours[i] as QueuedMessage, written);
    if (want.sender !== got.sender) return `sender ${want.sender} vs ${got.sender}`;
    if (compare.recipients && want.recipients.join(' ') !== got.recipients.join(' ')) return `recipients ${want.recipients.join(',')} vs ${got.recipients.join(',')}`;
    if (want.content !== got.content) {
      const a = want.content.split('\n');
      const b = got.content.split('\n');
      let line = 0;
      while (a[line] === b[line]) line++;
      const show = (text: string | undefined) => (text === undefined ? '(none)' : JSON.stringify(text.slice(0, 120)));
      return `content line ${line + 1}: ${show(a[line])} vs ${show(b[line])}`;
    }
  }
  return undefined;
}

interface Run extends Exit {
  readonly queued: readonly QueuedMessage[];
}

function sendmailDifference(postfix: Run, mailsubmit: Run, written: readonly string[]): string | undefined {
  if (postfix.code !== mailsubmit.code) {
    return `exit ${postfix.code} vs ${mailsubmit.code}: ${(mailsubmit.stderr || postfix.stderr).trim().split('\n')[0]}`;
  }
  return contentDifference(postfix.queued, mailsubmit.queued, written);
}

/** What one message's runs left: the exits, and the queue files (held) they made, read at the end. */
interface Collected {
  readonly message: CorpusMessage;
  readonly written: readonly string[];
  readonly i: { postfix: Exit; mailsubmit: Exit; smtpd: SmtpResult; native: Exit; held: string[] };
  readonly t?: { postfix: Exit; mailsubmit: Exit; held: string[] };
}

/**
 * Runs one message every way, the runs of one case side by side: Postfix's
 * queue files are those pickup made (pickupQueued), and the native door's
 * and smtpd's have recipients of their own.
 */
async function collect(sbs: SideBySide, message: CorpusMessage, index: number): Promise<Collected> {
  const bytes = readFileSync(corpusFile(message));
  const nativeInput = Buffer.concat([Buffer.from(`sender: ${SENDER}\nrecipient: ${NATIVE_RECIPIENT}\n\n`), bytes]);
  const [postfix, mailsubmit, smtpd, native] = await Promise.all([
    runSendmail(sbs, 'postfix', ['-i', RECIPIENT], bytes),
    runSendmail(sbs, 'mailsubmit', ['-i', RECIPIENT], bytes),
    // As the native door hands mail over (docs/postfix.md): a remote client's message,
    // which cleanup leaves as written.
    sendOverSmtp(sbs.postfix.port, SENDER, SMTPD_RECIPIENT, bytes, { xforwardSource: 'REMOTE' }),
    sbs.mailsubmit.submit({ uid: 0, gid: 0 }, nativeInput),
  ]);
  const i = { postfix, mailsubmit, smtpd, native, held: await holdQueued(sbs, `${index}i`) };
  if (!hasHeaderRecipients(bytes)) return { message, written: headerNames(bytes), i };
  const [postfixT, mailsubmitT] = await Promise.all([runSendmail(sbs, 'postfix', ['-t', '-i'], bytes), runSendmail(sbs, 'mailsubmit', ['-t', '-i'], bytes)]);
  return { message, written: headerNames(bytes), i, t: { postfix: postfixT, mailsubmit: mailsubmitT, held: await holdQueued(sbs, `${index}t`) } };
}

/** The differences of one message's runs, by case. */
function differencesOf(c: Collected, queued: ReadonlyMap<string, QueuedMessage>): Partial<Record<Case, string>> {
  const files = (held: readonly string[]) => held.map((path) => queued.get(path) as QueuedMessage);
  const out: Partial<Record<Case, string>> = {};
  const i = files(c.i.held);
  const viaSmtpd = (recipient: string) => i.filter((q) => !pickupQueued(q) && q.recipients.includes(recipient));
  out['sendmail -i'] = sendmailDifference(
    { ...c.i.postfix, queued: i.filter(pickupQueued) },
    { ...c.i.mailsubmit, queued: i.filter((q) => !pickupQueued(q) && !q.recipients.includes(SMTPD_RECIPIENT) && !q.recipients.includes(NATIVE_RECIPIENT)) },
    c.written,
  );
  out.native =
    c.i.smtpd.queued !== (c.i.native.code === 0)
      ? `smtpd ${c.i.smtpd.queued ? 'queued it' : `refused it (${c.i.smtpd.last})`}, native door exit ${c.i.native.code}: ${c.i.native.stderr.trim().split('\n')[0]}`
      : contentDifference(viaSmtpd(SMTPD_RECIPIENT), viaSmtpd(NATIVE_RECIPIENT), c.written, { recipients: false });
  if (c.t !== undefined) {
    const t = files(c.t.held);
    out['sendmail -t'] = sendmailDifference({ ...c.t.postfix, queued: t.filter(pickupQueued) }, { ...c.t.mailsubmit, queued: t.filter((q) => !pickupQueued(q)) }, c.written);
  }
  return out;
}

describe.skipIf(!SideBySide.isAvailable() && !process.env.CI)('differential corpus: real messages through Postfix and mailsubmit', () => {
  const manifest = checkManifest();
  const known = readKnownDifferences();
  // Two Postfix-and-mailsubmit pairs, each taking every other message: most of a run is waiting on processes.
  const pairs: SideBySide[] = [];

  beforeAll(async () => {
    for (let n = 0; n < 2; n++) pairs.push(await SideBySide.start());
  }, 120_000);
  afterAll(async () => {
    for (const sbs of pairs) await sbs.stop();
  });

  it(`has at least ${MINIMUM} messages, each file as the manifest records it (install/test-tools.sh unpacks them)`, () => {
    expect({ missing: manifest.missing, changed: manifest.changed }).toEqual({ missing: [], changed: [] });
    expect(manifest.messages.length).toBeGreaterThanOrEqual(MINIMUM);
    expect(new Set(manifest.messages.map((m) => m.name)).size).toBe(manifest.messages.length);
  });

  it('disagrees with Postfix exactly where the known differences say, for every message and door', async () => {
    const collected = await Promise.all(
      pairs.map(async (sbs, n) => {
        const mine: Collected[] = [];
        for (let index = n; index < manifest.messages.length; index += pairs.length) mine.push(await collect(sbs, manifest.messages[index] as CorpusMessage, index));
        const queued = await readHeld(sbs.postfix.dir, mine.flatMap((c) => [...c.i.held, ...(c.t?.held ?? [])]));
        return mine.map((c) => ({ c, differences: differencesOf(c, queued) }));
      }),
    );
    const differences = new Map<string, string>();
    for (const { c, differences: byCase } of collected.flat()) {
      for (const [kase, detail] of Object.entries(byCase)) if (detail !== undefined) differences.set(`${c.message.name}\t${kase}`, detail);
    }
    const all = collected.flat().map(({ c }) => c);
    const counts = {
      messages: all.length,
      tCases: all.filter((c) => c.t !== undefined).length,
      postfixQueuedI: all.filter((c) => c.i.postfix.code === 0).length,
      postfixQueuedT: all.filter((c) => c.t?.postfix.code === 0).length,
      smtpdQueued: all.filter((c) => c.i.smtpd.queued).length,
    };
    if (process.env.CORPUS_REPORT) {
      const refusedByPostfix = all.flatMap((c) => [
        ...(c.i.postfix.code !== 0 ? [`${c.message.name}\tsendmail -i\t${c.i.postfix.code} ${c.i.postfix.stderr.trim()}`] : []),
        ...(c.t !== undefined && c.t.postfix.code !== 0 ? [`${c.message.name}\tsendmail -t\t${c.t.postfix.code} ${c.t.postfix.stderr.trim()}`] : []),
        ...(!c.i.smtpd.queued ? [`${c.message.name}\tsmtpd\t${c.i.smtpd.last}`] : []),
      ]);
      const report = { ...counts, refusedByPostfix, differences: Object.fromEntries(differences) };
      writeFileSync(process.env.CORPUS_REPORT, `${JSON.stringify(report, null, 2)}\n`);
    }
    // The comparisons are of mail Postfix took, not of refusals: nearly every message
    // is queued by Postfix's sendmail and its smtpd; most have header recipients, so -t is tested.
    expect(counts.tCases).toBeGreaterThan(counts.messages / 2);
    expect(Math.min(counts.postfixQueuedI, counts.smtpdQueued)).toBeGreaterThan(counts.messages * 0.9);
    expect(counts.postfixQueuedT).toBeGreaterThan(counts.tCases * 0.9);
    const knownKeys = new Set(known.map((k) => `${k.name}\t${k.case}`));
    const unexpected = [...differences].filter(([key]) => !knownKeys.has(key)).map(([key, detail]) => `${key}\t${detail}`);
    const nowAgreeing = [...knownKeys].filter((key) => !differences.has(key));
    expect({ unexpected, nowAgreeing }).toEqual({ unexpected: [], nowAgreeing: [] });
  }, 600_000);

  it('docs/compatibility.md lists the same known differences', () => {
    const doc = readFileSync(COMPATIBILITY, 'utf8');
    const table = /<!-- corpus-differences:begin -->\n([\s\S]*?)<!-- corpus-differences:end -->/.exec(doc)?.[1] ?? '';
    const rows = table
      .split('\n')
      .filter((line) => line.startsWith('| ') && !line.startsWith('| message ') && !line.startsWith('|---'))
      .map((line) => line.split('|').slice(1, 4).map((cell) => cell.trim().replace(/^`|`$/g, '')).join('\t'));
    expect(rows.sort()).toEqual(known.map((k) => `${k.name}\t${k.case}\t${k.kind}`).sort());
    // The section's command runs this file.
    const section = doc.slice(doc.indexOf('## Differential corpus'));
    expect(/```sh\n([^\n]*)\n```/.exec(section)?.[1]).toBe(`npx vitest run ${relative(ROOT, import.meta.filename)}`);
  });
});
