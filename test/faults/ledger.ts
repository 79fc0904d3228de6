/**
 * The ledger of a fault campaign: every message submitted (with its unique
 * X-Ledger-Id and the exact octets written), every attempt's exit, and, once
 * Postfix's queue is empty, what the recording sink got. Classifying it is
 * the point of the whole exercise:
 *
 * - lost: the helper said 0 and the message never arrived (must never happen);
 * - partial: it arrived, but not byte for byte as written (must never happen);
 * - duplicate: it arrived more than once;
 * - failed but delivered: a non-zero exit although it arrived, which the
 *   contract allows only where Postfix may have committed before the daemon
 *   could learn it (a drop or stall after the relayed dot, a daemon or helper
 *   killed mid-way); anything else is "unexplained" and a bug.
 *
 * Delivered bytes are compared from the X-Ledger-Id field (always the first
 * field written) to the end; what precedes it must be Postfix's own
 * Received: fields and nothing else.
 */
import { crlfForm, type RecordedMessage } from '../support/recording-sink.ts';
import { AFTER_COMMIT_FAULTS, type FaultKind } from './fault-schedule.ts';
import type { FaultRecord, TransactionRecord } from './fault-proxy.ts';

export interface Attempt {
  /** The helper's exit status; null when it died of a signal. */
  readonly exit: number | null;
  readonly signal: string | null;
  readonly stderr: string;
  readonly startedAt: number;
  readonly endedAt: number;
  /** The driver SIGKILLed this attempt's helper. */
  readonly helperKilled: boolean;
  /** The helper had not exited after the driver's long deadline. */
  readonly hung: boolean;
}

export interface LedgerEntry {
  readonly id: string;
  /** What the sink must get, from the X-Ledger-Id field on: the message with CRLF line ends. */
  readonly expected: Buffer;
  readonly attempts: Attempt[];
}

/** A window in which the daemon was SIGKILLed and restarted. */
export interface DaemonKill {
  readonly at: number;
  readonly restartedAt: number;
}

export interface EntryVerdict {
  readonly id: string;
  readonly exits: readonly (number | null)[];
  readonly delivered: number;
  readonly partial: number;
  /** Injected faults and kills seen by this message's attempts. */
  readonly causes: readonly string[];
  /** What the helper said on its last run. */
  readonly said: string;
}

export interface Classification {
  readonly submissions: number;
  readonly attempts: number;
  /** Final exit of each submission: code, or "signal" for a killed helper, "hung". */
  readonly exitsByCode: Readonly<Record<string, number>>;
  readonly deliveredOnce: number;
  readonly notDelivered: number;
  readonly lost: readonly EntryVerdict[];
  readonly partial: readonly EntryVerdict[];
  readonly duplicates: readonly EntryVerdict[];
  /** Non-zero final exit, delivered anyway, with a cause that allows it. */
  readonly failedButDelivered: readonly EntryVerdict[];
  /** Non-zero exit, delivered, and no after-commit fault or kill to explain it. */
  readonly unexplained: readonly EntryVerdict[];
  /**
   * Within one helper run, the daemon started another transaction after one
   * whose message had already begun to flow (a fault in or after DATA): the
   * message source is spent by then, so what it resends cannot be the
   * message. A retry before DATA is fine and not listed.
   */
  readonly resentAfterData: readonly EntryVerdict[];
  /** Exits that tell the caller to fix something (64, 66, 77, 78) in a campaign where nothing needs fixing. */
  readonly fixTheCallExits: readonly EntryVerdict[];
  /** Exits outside the contract's table. */
  readonly undocumentedExits: readonly EntryVerdict[];
  /** Sink messages with no known ledger id (what a retried, already consumed body would look like). */
  readonly stray: number;
  readonly hung: number;
  readonly faultsByKind: Readonly<Record<string, number>>;
  /** For each fault kind: the final exits of the submissions whose last transaction got it ("+kill": and a kill hit them). */
  readonly exitsByFault: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** For each such key: how many of those messages were delivered. */
  readonly deliveredByFault: Readonly<Record<string, number>>;
  readonly daemonKills: number;
  readonly helperKills: number;
  /** Messages never delivered, by their final exit (with a retrying caller only permanent refusals should be left). */
  readonly notDeliveredByFinalExit: Readonly<Record<string, number>>;
  /** Why the helper said 75 where no injected fault or kill was recorded for the message (connection faults, mostly). */
  readonly unattributedTempfails: Readonly<Record<string, number>>;
}

/** Exit codes of the contract's table (submission-interface.md section 2). */
export const DOCUMENTED_EXITS: ReadonlySet<number> = new Set([0, 64, 65, 66, 67, 69, 75, 77, 78]);

/** Faults that hit a transaction after DATA was accepted: the message was already flowing. */
const DATA_FAULTS: ReadonlySet<FaultKind> = new Set<FaultKind>([
  'drop-during-data',
  'drop-after-dot',
  'drop-after-relay',
  'stall-data',
  'stall-data-end',
  'stall-after-relay',
  'data-end-421',
  'data-end-451',
  'data-end-452',
  'data-end-550',
  'data-end-554',
]);

/** Exits that put the blame on the caller or the installation: never right for a well-formed message from an authorized user. */
const FIX_THE_CALL_EXITS: ReadonlySet<number> = new Set([64, 65, 66, 77, 78]);

/** The daemon's words for "the dot was sent and its reply never came": the after-commit window. */
const AFTER_DOT_WORDS = /(?:no reply to|before answering) end of data/;

const LEDGER_FIELD = Buffer.from('X-Ledger-Id: ');
const RECEIVED_ONLY = /^(?:Received: [^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*)*$/;

export class Ledger {
  readonly entries = new Map<string, LedgerEntry>();
  readonly daemonKills: DaemonKill[] = [];

  add(id: string, message: Buffer): LedgerEntry {
    const entry: LedgerEntry = { id, expected: crlfForm(message), attempts: [] };
    this.entries.set(id, entry);
    return entry;
  }

  classify(delivered: readonly RecordedMessage[], faults: readonly FaultRecord[], transactions: readonly TransactionRecord[]): Classification {
    const arrivals = new Map<string, Buffer[]>();
    let stray = 0;
    for (const message of delivered) {
      const id = ledgerIdOf(message.data);
      if (id === null || !this.entries.has(id)) {
        stray++;
        continue;
      }
      const list = arrivals.get(id) ?? [];
      list.push(message.data);
      arrivals.set(id, list);
    }
    const faultsById = groupBy(faults.filter((f) => f.ledgerId !== null), (f) => f.ledgerId as string);
    const lastTransaction = new Map<string, TransactionRecord>();
    for (const tx of transactions) if (tx.ledgerId !== null) lastTransaction.set(tx.ledgerId, tx);

    const exitsByCode: Record<string, number> = {};
    const exitsByFault: Record<string, Record<string, number>> = {};
    const deliveredByFault: Record<string, number> = {};
    const result = {
      lost: [] as EntryVerdict[],
      partial: [] as EntryVerdict[],
      duplicates: [] as EntryVerdict[],
      failedButDelivered: [] as EntryVerdict[],
      unexplained: [] as EntryVerdict[],
      undocumentedExits: [] as EntryVerdict[],
      resentAfterData: [] as EntryVerdict[],
      fixTheCallExits: [] as EntryVerdict[],
    };
    const transactionsById = groupBy(transactions.filter((t) => t.ledgerId !== null), (t) => t.ledgerId as string);
    const unattributedTempfails: Record<string, number> = {};
    const notDeliveredByFinalExit: Record<string, number> = {};
    let attempts = 0;
    let deliveredOnce = 0;
    let notDelivered = 0;
    let hung = 0;
    let helperKills = 0;
    for (const entry of this.entries.values()) {
      attempts += entry.attempts.length;
      const final = entry.attempts[entry.attempts.length - 1];
      const got = arrivals.get(entry.id) ?? [];
      const partial = got.filter((data) => !matches(data, entry.expected)).length;
      const kills = entry.attempts.filter((a) => this.daemonKills.some((k) => a.startedAt < k.restartedAt && a.endedAt > k.at)).length;
      const helperKilled = entry.attempts.filter((a) => a.helperKilled).length;
      helperKills += helperKilled;
      const injected = (faultsById.get(entry.id) ?? []).map((f) => `${f.fault}${f.reset ? '(rst)' : ''}${f.committed ? '(committed)' : ''}`);
      const causes = [...injected, ...(kills > 0 ? [`daemon-kill x${kills}`] : []), ...(helperKilled > 0 ? [`helper-kill x${helperKilled}`] : [])];
      const verdict: EntryVerdict = {
        id: entry.id,
        exits: entry.attempts.map((a) => (a.hung ? -1 : a.exit)),
        delivered: got.length,
        partial,
        causes,
        said: final?.stderr.trim() ?? '',
      };
      const key = final === undefined ? 'none' : final.hung ? 'hung' : final.exit === null ? `signal` : String(final.exit);
      exitsByCode[key] = (exitsByCode[key] ?? 0) + 1;
      if (final?.hung === true) hung++;
      // Kills end a submission whatever the proxy did: keep them apart.
      const lastFault = `${lastTransaction.get(entry.id)?.fault ?? 'none'}${kills + helperKilled > 0 ? '+kill' : ''}`;
      const row = (exitsByFault[lastFault] ??= {});
      row[key] = (row[key] ?? 0) + 1;
      if (got.length > 0) deliveredByFault[lastFault] = (deliveredByFault[lastFault] ?? 0) + 1;

      const mine = transactionsById.get(entry.id) ?? [];
      for (let run = 0; run < entry.attempts.length; run++) {
        // In the order the proxy saw them: a run's transactions are one job's, one after the other.
        const ofRun = mine.filter((t) => t.run === run);
        if (ofRun.slice(0, -1).some((t) => t.fault !== null && DATA_FAULTS.has(t.fault))) {
          result.resentAfterData.push({ ...verdict, causes: [...verdict.causes, `run ${run}: ${ofRun.map((t) => t.fault ?? 'none').join(' then ')}`] });
          break;
        }
      }
      if (final?.exit === 75 && causes.length === 0) {
        const reason = reasonOf(final.stderr);
        unattributedTempfails[reason] = (unattributedTempfails[reason] ?? 0) + 1;
      }
      if (got.length > 0) deliveredOnce++;
      else {
        notDelivered++;
        notDeliveredByFinalExit[key] = (notDeliveredByFinalExit[key] ?? 0) + 1;
      }
      if (entry.attempts.some((a) => a.exit !== null && !DOCUMENTED_EXITS.has(a.exit))) result.undocumentedExits.push(verdict);
      if (entry.attempts.some((a) => a.exit !== null && FIX_THE_CALL_EXITS.has(a.exit))) result.fixTheCallExits.push(verdict);
      // A retrying caller stops at the first 0, but count rather than assume.
      const successes = entry.attempts.filter((a) => a.exit === 0).length;
      if (successes > got.length) result.lost.push(verdict);
      if (partial > 0) result.partial.push(verdict);
      if (got.length > 1) result.duplicates.push(verdict);
      if (got.length > successes) {
        // More deliveries than successes: some run that failed delivered all the same.
        // The after-commit window also opens without an injected fault when
        // Postfix is slow to answer the dot (a loaded machine): the helper says so.
        const allowed =
          kills > 0 ||
          helperKilled > 0 ||
          (faultsById.get(entry.id) ?? []).some((f) => AFTER_COMMIT_FAULTS.has(f.fault as FaultKind)) ||
          entry.attempts.some((a) => a.exit !== 0 && AFTER_DOT_WORDS.test(a.stderr));
        (allowed ? result.failedButDelivered : result.unexplained).push(verdict);
      }
    }
    return {
      submissions: this.entries.size,
      attempts,
      exitsByCode,
      deliveredOnce,
      notDelivered,
      ...result,
      stray,
      hung,
      faultsByKind: countBy(faults, (f) => f.fault),
      exitsByFault,
      deliveredByFault,
      daemonKills: this.daemonKills.length,
      helperKills,
      unattributedTempfails,
      notDeliveredByFinalExit,
    };
  }
}

export function ledgerIdOf(data: Buffer): string | null {
  const at = fieldStart(data);
  if (at === -1) return null;
  const end = data.indexOf('\r\n', at);
  return data.subarray(at + LEDGER_FIELD.length, end === -1 ? undefined : end).toString('latin1');
}

/** Where the X-Ledger-Id field starts: at the beginning, or right after a line end. */
function fieldStart(data: Buffer): number {
  if (data.subarray(0, LEDGER_FIELD.length).equals(LEDGER_FIELD)) return 0;
  const at = data.indexOf(Buffer.concat([Buffer.from('\r\n'), LEDGER_FIELD]));
  return at === -1 ? -1 : at + 2;
}

/** Byte-identical from the ledger field on, and only Received: fields before it. */
export function matches(delivered: Buffer, expected: Buffer): boolean {
  const at = fieldStart(delivered);
  if (at === -1) return false;
  if (!RECEIVED_ONLY.test(delivered.subarray(0, at).toString('latin1'))) return false;
  return delivered.subarray(at).equals(expected);
}

/** The helper's line with the varying parts (numbers, queue ids, addresses) taken out, to group by. */
function reasonOf(stderr: string): string {
  return stderr
    .trim()
    .replace(/^mailsubmit: /, '')
    .replace(/<[^>]*>/g, '<...>')
    .replace(/\d+/g, 'N')
    .slice(0, 110);
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const list = groups.get(key(item)) ?? [];
    list.push(item);
    groups.set(key(item), list);
  }
  return groups;
}

function countBy<T>(items: readonly T[], key: (item: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return counts;
}
