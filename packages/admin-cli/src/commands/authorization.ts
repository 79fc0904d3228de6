/**
 * `mailsubmitctl allow|deny|list`: who may submit, and with what rights.
 * The daemon notices a changed list on its next connection; submissions in
 * progress keep the rights they were admitted with.
 */
import type { Command } from 'commander';
import { formatEntry, parsePrincipal, senderPatternProblem, type AuthorizationEntry, type Capability, type SenderPolicy } from '@mailsubmit/shared';
import { readEntries, removeEntry, upsertEntry } from '../authorization-file.ts';
import { UsageError } from '../errors.ts';
import { authorizationListPath, type GlobalOptions } from '../options.ts';

const CAPABILITY_WORDS = new Set(['client', 'sasl', 'tls', 'queue']);

export function registerAuthorization(program: Command): void {
  program
    .command('allow')
    .description('let a user (NAME, uid:N or @group) submit, with optional capabilities: client sasl tls queue sender=any|own|PATTERNS')
    .argument('<principal>')
    .argument('[capabilities...]')
    .action((principalText: string, words: string[], _options: unknown, command: Command) => {
      const path = authorizationListPath(command.optsWithGlobals<GlobalOptions>());
      const entry = entryFrom(principalText, words);
      const added = upsertEntry(path, entry);
      process.stdout.write(`${added ? 'allowed' : 'updated'}: ${formatEntry(entry)}\n`);
    });

  program
    .command('deny')
    .description('remove a principal from the authorization list')
    .argument('<principal>')
    .action((principalText: string, _options: unknown, command: Command) => {
      const path = authorizationListPath(command.optsWithGlobals<GlobalOptions>());
      const principal = parsePrincipal(principalText);
      if (principal === null) throw new UsageError(`"${principalText}" is not a user name, uid:N or @group`);
      const removed = removeEntry(path, principal);
      process.stdout.write(removed ? `denied: ${principalText}\n` : `${principalText} was not on the list\n`);
    });

  program
    .command('list')
    .description('print the authorization list, one principal a line')
    .action((_options: unknown, command: Command) => {
      const path = authorizationListPath(command.optsWithGlobals<GlobalOptions>());
      for (const entry of readEntries(path)) process.stdout.write(`${formatEntry(entry)}\n`);
    });
}

/** A pattern the list could not hold is refused here, naming it, before the file is touched. */
function checkedPattern(pattern: string): string {
  const problem = senderPatternProblem(pattern);
  if (problem !== null) throw new UsageError(problem);
  return pattern;
}

function entryFrom(principalText: string, words: readonly string[]): AuthorizationEntry {
  const principal = parsePrincipal(principalText);
  if (principal === null) throw new UsageError(`"${principalText}" is not a user name, uid:N or @group`);
  const capabilities = new Set<Capability>();
  let senders: SenderPolicy = { kind: 'any' };
  for (const word of words) {
    if (CAPABILITY_WORDS.has(word)) capabilities.add(word as Capability);
    else if (word === 'sender=any') senders = { kind: 'any' };
    else if (word === 'sender=own') senders = { kind: 'own' };
    else if (word.startsWith('sender=') && word.length > 7) senders = { kind: 'patterns', patterns: word.slice(7).split(',').map(checkedPattern) };
    else throw new UsageError(`unknown capability "${word}" (known: client, sasl, tls, queue, sender=any|own|PATTERNS)`);
  }
  return { principal, capabilities, senders, line: 0 };
}
