/**
 * `mailsubmitctl check USER`: would mailsubmitd let this user submit, with
 * which capabilities and envelope senders, and which lines of the
 * authorization list say so (by name, by uid, or through which group).
 *
 * The decision is the daemon's own: the same parser and the same authorize()
 * over the same identity, which comes from the system's user and group
 * databases through the daemon's lookups (getpwuid_r and getgrouplist in
 * the addon, so LDAP and other NSS sources count as they do for the daemon).
 * Only a name's uid comes from getent, because the addon looks up by uid.
 *
 * Exit 0 when allowed, 77 when not, 67 for a name the user database does
 * not know, 78 when the list cannot be read or parsed.
 */
import { execFileSync } from 'node:child_process';
import type { Command } from 'commander';
import {
  authorize,
  EX_NOPERM,
  EX_NOUSER,
  formatEntry,
  parsePrincipal,
  type AuthorizationEntry,
  type CallerIdentity,
  type Grant,
} from '@mailsubmit/shared';
import { assertRootOnlyWritable, identityOf, UnsafePathError } from '@mailsubmit/submit-daemon/admin';
import { readEntries } from '../authorization-file.ts';
import { ExitError, UsageError } from '../errors.ts';
import { authorizationListPath, type GlobalOptions } from '../options.ts';

export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('would USER (a login name, uid:N or a uid) be allowed to submit, with which capabilities and senders, and why')
    .argument('<user>')
    .action((userText: string, _options: unknown, command: Command) => {
      const path = authorizationListPath(command.optsWithGlobals<GlobalOptions>());
      const caller = resolveCaller(userText);
      const entries = readEntries(path);
      warnIfUnsafe(path);
      const grant = authorize(entries, caller);
      const who = describeCaller(caller);
      if (grant === null) {
        const groups = caller.groupNames.length > 0 ? ` or one of its groups (${caller.groupNames.join(', ')})` : '';
        const names = [caller.userName, `uid:${caller.uid}`].filter((n) => n !== null).join(', ');
        process.stdout.write(`${who}: not allowed: no line of ${path} names ${names}${groups}\n`);
        process.stdout.write(`  to allow: mailsubmitctl allow ${caller.userName ?? `uid:${caller.uid}`}\n`);
        process.exitCode = EX_NOPERM;
        return;
      }
      process.stdout.write(describeGrant(who, grant, caller));
    });
}

function resolveCaller(text: string): CallerIdentity {
  const uidText = /^(?:uid:)?([0-9]{1,10})$/.exec(text)?.[1];
  if (uidText !== undefined) {
    const uid = Number(uidText);
    if (uid > 0xfffffffe) throw new UsageError(`${text}: a uid is at most 4294967294`);
    return identityOf(uid);
  }
  const principal = parsePrincipal(text);
  if (principal === null || principal.kind !== 'user') throw new UsageError(`"${text}" is not a login name, uid:N or a uid`);
  return identityOf(uidOf(principal.name));
}

/** The uid of a login name, from the user database (NSS included). */
function uidOf(name: string): number {
  let line: string;
  try {
    line = execFileSync('getent', ['passwd', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch (err) {
    // getent(1): exit 2 means the key was not found.
    if ((err as { status?: number }).status === 2) throw new ExitError(`no user "${name}" in the user database`, EX_NOUSER);
    throw new Error(`getent passwd ${name} failed: ${(err as Error).message}`);
  }
  const uid = Number(line.split(':')[2]);
  if (!Number.isInteger(uid)) throw new Error(`getent passwd ${name}: no uid in ${JSON.stringify(line.trim())}`);
  return uid;
}

function warnIfUnsafe(path: string): void {
  try {
    assertRootOnlyWritable(path);
  } catch (err) {
    if (!(err instanceof UnsafePathError)) throw err;
    process.stderr.write(`mailsubmitctl: warning: mailsubmitd will not use this list: ${err.message}\n`);
  }
}

function describeCaller(caller: CallerIdentity): string {
  return caller.userName === null ? `uid ${caller.uid} (not in the user database)` : `${caller.userName} (uid ${caller.uid})`;
}

function describeGrant(who: string, grant: Grant, caller: CallerIdentity): string {
  const capabilities = grant.capabilities.size > 0 ? [...grant.capabilities].sort().join(' ') : 'none (may not assert client, SASL or TLS attributes)';
  const matched = grant.matched.map((entry) => `line ${entry.line}: ${formatEntry(entry)}  (${matchReason(entry, caller)})`);
  return [
    `${who}: allowed`,
    `  capabilities: ${capabilities}`,
    `  senders:      ${describeSenders(grant, caller)}`,
    `  matched:      ${matched.join('\n                ')}`,
    '',
  ].join('\n');
}

function matchReason(entry: AuthorizationEntry, caller: CallerIdentity): string {
  const { principal } = entry;
  if (principal.kind === 'uid') return `by uid ${caller.uid}`;
  if (principal.kind === 'user') return `by name ${principal.name}`;
  return `by group ${principal.name}`;
}

/** Every matching line counts: the user may use a sender any one of them allows. */
function describeSenders(grant: Grant, caller: CallerIdentity): string {
  if (grant.senders.some((policy) => policy.kind === 'any')) return 'any';
  const allowed: string[] = [];
  for (const policy of grant.senders) {
    if (policy.kind === 'own') {
      allowed.push(caller.userName === null ? '<> only (own: the uid has no name)' : `own: ${caller.userName}, ${caller.userName}@any domain, and <>`);
    } else if (policy.kind === 'patterns') {
      allowed.push(`matching ${policy.patterns.join(', ')}`);
    }
  }
  return allowed.join('; ');
}
