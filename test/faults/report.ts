/**
 * The printed result of a fault campaign: one summary table (the numbers the
 * reliability document quotes), then the faults injected and what the
 * callers got for each, then every duplicate and every failed-but-delivered
 * message with the faults that caused it. Plain text, so it reads the same
 * in a terminal, a CI log and docs/reliability.md.
 */
import type { CampaignResult } from './driver.ts';
import type { EntryVerdict } from './ledger.ts';

export function formatReport(result: CampaignResult): string {
  const { options, table } = result;
  const exits = formatCounts(table.exitsByCode);
  const summary: [string, string][] = [
    ['seed', String(options.seed)],
    ['messages (submissions)', String(table.submissions)],
    ['helper runs (attempts)', String(table.attempts)],
    ['concurrency', String(options.concurrency)],
    ['retries after 75 / kill', String(options.retries)],
    ['final exits by code', exits],
    ['delivered (at least once)', String(table.deliveredOnce)],
    ['not delivered (by final exit)', `${table.notDelivered}${table.notDelivered > 0 ? ` (${formatCounts(table.notDeliveredByFinalExit)})` : ''}`],
    ['lost (exit 0, never delivered)', String(table.lost.length)],
    ['partial (not byte-identical)', String(table.partial.length)],
    ['duplicates (delivered > once)', String(table.duplicates.length)],
    ['failed but delivered (after-commit fault or kill)', String(table.failedButDelivered.length)],
    ['failed but delivered, unexplained', String(table.unexplained.length)],
    ['exits outside the contract', String(table.undocumentedExits.length)],
    ['exits 64/65/66/77/78 (blame the caller)', String(table.fixTheCallExits.length)],
    ['daemon resent after DATA began', String(table.resentAfterData.length)],
    ['stray deliveries (no ledger id)', String(table.stray)],
    ['hung helpers', String(table.hung)],
    ['daemon SIGKILLs / crashes', `${table.daemonKills - result.daemonCrashes} / ${result.daemonCrashes}`],
    ['helper SIGKILLs', String(table.helperKills)],
    ['seconds', String(result.seconds)],
  ];
  const width = Math.max(...summary.map(([label]) => label.length));
  const lines = ['Fault campaign', ...summary.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`), ''];

  lines.push('Faults injected, and final exits of the messages whose last transaction got each:');
  const kinds = new Set([...Object.keys(table.faultsByKind), ...Object.keys(table.exitsByFault)]);
  for (const kind of [...kinds].sort()) {
    const outcome = Object.entries(table.exitsByFault[kind] ?? {})
      .map(([code, count]) => `${code}x${count}`)
      .join(' ');
    const delivered = table.deliveredByFault[kind];
    lines.push(`  ${kind.padEnd(22)} injected ${String(table.faultsByKind[kind] ?? 0).padStart(4)}   exits ${outcome || '-'}${delivered ? `   delivered ${delivered}` : ''}`);
  }
  lines.push('');
  const reasons = Object.entries(table.unattributedTempfails).sort(([, a], [, b]) => b - a);
  if (reasons.length > 0) {
    lines.push('Exit 75 with no transaction fault or kill recorded for the message (what the helper said):');
    for (const [reason, count] of reasons) lines.push(`  ${String(count).padStart(4)}  ${reason}`);
    lines.push('');
  }
  section(lines, 'Lost', table.lost);
  section(lines, 'Partial', table.partial);
  section(lines, 'Duplicates', table.duplicates);
  section(lines, 'Failed but delivered', table.failedButDelivered);
  section(lines, 'Failed but delivered, unexplained', table.unexplained);
  section(lines, 'Exits outside the contract', table.undocumentedExits);
  section(lines, 'Exits blaming the caller or the installation', table.fixTheCallExits);
  section(lines, 'Daemon resent after DATA began', table.resentAfterData);
  return lines.join('\n');
}

function formatCounts(counts: Readonly<Record<string, number>>): string {
  return Object.entries(counts)
    .sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))
    .map(([code, count]) => `${code}: ${count}`)
    .join(', ');
}

function section(lines: string[], title: string, verdicts: readonly EntryVerdict[]): void {
  if (verdicts.length === 0) return;
  lines.push(`${title} (${verdicts.length}):`);
  for (const v of verdicts.slice(0, 50)) {
    lines.push(`  ${v.id}: exits ${v.exits.map((e) => (e === null ? 'signal' : String(e))).join(',')}; delivered ${v.delivered}; causes ${v.causes.join(', ') || 'none recorded'}${v.exits.includes(0) ? '' : `; said: ${v.said.slice(0, 160)}`}`);
  }
  if (verdicts.length > 50) lines.push(`  ... and ${verdicts.length - 50} more`);
  lines.push('');
}
