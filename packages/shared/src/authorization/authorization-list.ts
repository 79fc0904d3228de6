/**
 * The authorization list (/etc/mailsubmit/authorized): who may submit, and
 * what they may assert. One principal a line, then its capabilities:
 *
 *     # principal        capabilities
 *     mailscanner        client sasl tls
 *     uid:1002           sender=own
 *     @filters           client sender=*@example.org,bounces@example.net
 *
 * Principals: a user name, `uid:N`, or `@group` (members by the group
 * database, primary group included). Capabilities:
 *   client   may assert protocol_name, helo_name, client_name, client_address, client_port
 *   sasl     may assert sasl_method, sasl_username, sasl_sender
 *   tls      may assert ccert_* and encryption_*
 *   queue    a submission the MTA cannot take now waits in the local queue
 *            (exit 0) whatever the front door, instead of 75
 *   sender=any | sender=own | sender=PATTERN[,PATTERN...]
 *            which envelope senders it may use (default any, as sendmail -f
 *            allows every local user); `own` is the user's name, qualified or
 *            not, and <>; a pattern is an address with `*` as a wildcard,
 *            compared as the MTA compares addresses (address-comparison.ts):
 *            ASCII case aside, exactly; domains as A-labels.
 *
 * The set-gid helper reads only the principals; the daemon enforces the rest.
 * Parsing is pure: names are resolved by the caller.
 */

import { escapeText } from '../text/escape-text.ts';
import { canonicalPattern } from './address-comparison.ts';

export type Capability = 'client' | 'sasl' | 'tls' | 'queue';

export type Principal =
  | { readonly kind: 'user'; readonly name: string }
  | { readonly kind: 'uid'; readonly uid: number }
  | { readonly kind: 'group'; readonly name: string };

export type SenderPolicy =
  | { readonly kind: 'any' }
  | { readonly kind: 'own' }
  | { readonly kind: 'patterns'; readonly patterns: readonly string[] };

export interface AuthorizationEntry {
  readonly principal: Principal;
  readonly capabilities: ReadonlySet<Capability>;
  readonly senders: SenderPolicy;
  readonly line: number;
}

export class AuthorizationListError extends Error {
  readonly code = 'ERR_AUTHORIZATION_LIST';
  constructor(source: string, line: number, problem: string) {
    // file:line, as compilers write it, so that an editor can jump to it.
    super(`${source}:${line}: ${problem}`);
    this.name = 'AuthorizationListError';
    this.source = source;
    this.line = line;
    this.problem = problem;
  }
  readonly source: string;
  readonly line: number;
  /** The problem without file:line. */
  readonly problem: string;
}

const CAPABILITIES: readonly Capability[] = ['client', 'sasl', 'tls', 'queue'];
const NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?$/;
// Printable ASCII, or any character that is not a control, format character, separator or lone surrogate.
const SENDER_PATTERN = /^(?:[\x21-\x7e]|[^\p{C}\p{Z}\x00-\x7f]){1,256}$/u;

/*
 * The line grammar the set-gid helper reads too (its authorization-list.c;
 * test/conformance/authorization-list/ holds both to one corpus): a comment
 * runs from `#` to the end of the line, past a CR, U+2028 or U+2029; only
 * spaces, tabs and CRs around the words are blanks, so a byte-order mark, a
 * vertical tab or U+00A0 is part of a word, which no principal or capability
 * may hold.
 */
const BLANKS_AT_ENDS = /^[ \t\r]+|[ \t\r]+$/g;

function withoutComment(line: string): string {
  const hash = line.indexOf('#');
  return hash < 0 ? line : line.slice(0, hash);
}

export function parsePrincipal(text: string): Principal | null {
  if (text.startsWith('uid:')) {
    const digits = text.slice(4);
    return /^[0-9]{1,10}$/.test(digits) && Number(digits) < 2 ** 32 ? { kind: 'uid', uid: Number(digits) } : null;
  }
  if (text.startsWith('@')) return NAME.test(text.slice(1)) ? { kind: 'group', name: text.slice(1) } : null;
  return NAME.test(text) ? { kind: 'user', name: text } : null;
}

export function formatPrincipal(principal: Principal): string {
  if (principal.kind === 'uid') return `uid:${principal.uid}`;
  return principal.kind === 'group' ? `@${principal.name}` : principal.name;
}

export function parseAuthorizationList(text: string, source = 'authorization list'): AuthorizationEntry[] {
  const entries: AuthorizationEntry[] = [];
  const seen = new Map<string, number>();
  text.split('\n').forEach((raw, index) => {
    const line = index + 1;
    const content = withoutComment(raw).replace(BLANKS_AT_ENDS, '');
    if (content === '') return;
    const [first, ...words] = content.split(/[ \t]+/) as [string, ...string[]];
    const principal = parsePrincipal(first);
    if (principal === null) throw new AuthorizationListError(source, line, `"${escapeText(first)}" is not a user name, uid:N or @group`);
    const key = formatPrincipal(principal);
    const earlier = seen.get(key);
    if (earlier !== undefined) throw new AuthorizationListError(source, line, `${key} is already listed on line ${earlier}`);
    seen.set(key, line);
    entries.push({ principal, line, ...parseCapabilities(words, source, line) });
  });
  return entries;
}

function parseCapabilities(words: readonly string[], source: string, line: number): Pick<AuthorizationEntry, 'capabilities' | 'senders'> {
  const capabilities = new Set<Capability>();
  let senders: SenderPolicy | null = null;
  for (const word of words) {
    if ((CAPABILITIES as readonly string[]).includes(word)) {
      capabilities.add(word as Capability);
      continue;
    }
    if (!word.startsWith('sender=')) {
      throw new AuthorizationListError(source, line, `unknown capability "${escapeText(word)}" (known: ${CAPABILITIES.join(', ')}, sender=any|own|PATTERNS)`);
    }
    if (senders !== null) throw new AuthorizationListError(source, line, 'sender= given twice');
    senders = parseSenderPolicy(word.slice('sender='.length), source, line);
  }
  return { capabilities, senders: senders ?? { kind: 'any' } };
}

/** Why `pattern` cannot be a sender pattern, or null when it can (for `mailsubmitctl allow`). */
export function senderPatternProblem(pattern: string): string | null {
  try {
    parseSenderPolicy(pattern, '', 0);
    return pattern.includes(',') ? 'a comma separates patterns' : null;
  } catch (err) {
    return (err as AuthorizationListError).problem;
  }
}

function parseSenderPolicy(value: string, source: string, line: number): SenderPolicy {
  if (value === 'any') return { kind: 'any' };
  if (value === 'own') return { kind: 'own' };
  const patterns = value.split(',');
  for (const pattern of patterns) {
    if (!SENDER_PATTERN.test(pattern)) {
      throw new AuthorizationListError(source, line, `sender pattern "${escapeText(pattern)}" is empty or has a space, control or format character`);
    }
    try {
      canonicalPattern(pattern);
    } catch (err) {
      throw new AuthorizationListError(source, line, `sender pattern "${escapeText(pattern)}": ${(err as Error).message}`);
    }
  }
  return { kind: 'patterns', patterns };
}

/** Writes entries back in the file's syntax, one a line. */
export function formatEntry(entry: AuthorizationEntry): string {
  const words = [formatPrincipal(entry.principal), ...CAPABILITIES.filter((c) => entry.capabilities.has(c))];
  if (entry.senders.kind === 'own') words.push('sender=own');
  if (entry.senders.kind === 'patterns') words.push(`sender=${entry.senders.patterns.join(',')}`);
  return words.join(' ');
}
