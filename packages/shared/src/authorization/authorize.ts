/**
 * Deciding whether a caller, as the kernel identifies it, is on the list, and
 * with what rights. The identity comes from SO_PEERCRED and the system's user
 * and group databases, never from anything the caller says.
 */
import { canonicalDomain, senderMatchesPattern } from './address-comparison.ts';
import type { AuthorizationEntry, Capability, SenderPolicy } from './authorization-list.ts';

export interface CallerIdentity {
  readonly uid: number;
  /** Login name of the uid, when the user database knows it. */
  readonly userName: string | null;
  /** Names of every group the user is in, primary group included. */
  readonly groupNames: readonly string[];
  /** The full name of the user database's entry, as Postfix's sendmail takes it (gecosFullName). */
  readonly fullName?: string | null;
}

export interface Grant {
  /** The entries that matched, for `mailsubmitctl check` and the log. */
  readonly matched: readonly AuthorizationEntry[];
  readonly capabilities: ReadonlySet<Capability>;
  readonly senders: readonly SenderPolicy[];
}

export function entryMatches(entry: AuthorizationEntry, caller: CallerIdentity): boolean {
  const { principal } = entry;
  if (principal.kind === 'uid') return principal.uid === caller.uid;
  if (principal.kind === 'user') return principal.name === caller.userName;
  return caller.groupNames.includes(principal.name);
}

/**
 * Every matching entry counts: a user listed by name and through a group gets
 * the union of both lines' capabilities, and may use a sender any of them
 * allows. Null when nothing matches.
 */
export function authorize(entries: readonly AuthorizationEntry[], caller: CallerIdentity): Grant | null {
  const matched = entries.filter((entry) => entryMatches(entry, caller));
  if (matched.length === 0) return null;
  const capabilities = new Set<Capability>();
  for (const entry of matched) for (const capability of entry.capabilities) capabilities.add(capability);
  return { matched, capabilities, senders: matched.map((entry) => entry.senders) };
}

/** Attribute names each capability unlocks; anything else needs none. */
export const ATTRIBUTES_BY_CAPABILITY: Readonly<Record<Capability, readonly string[]>> = {
  client: ['protocol_name', 'helo_name', 'client_name', 'client_address', 'client_port'],
  sasl: ['sasl_method', 'sasl_username', 'sasl_sender'],
  tls: ['ccert_subject', 'ccert_issuer', 'ccert_fingerprint', 'encryption_protocol', 'encryption_cipher', 'encryption_keysize'],
  // A right over what happens to the message, not over what the caller asserts.
  queue: [],
};

/** The first asserted attribute the grant does not cover, or null. */
export function firstUnpermittedAttribute(grant: Grant, asserted: readonly string[]): { attribute: string; capability: Capability } | null {
  for (const attribute of asserted) {
    for (const [capability, names] of Object.entries(ATTRIBUTES_BY_CAPABILITY) as [Capability, readonly string[]][]) {
      if (names.includes(attribute) && !grant.capabilities.has(capability)) return { attribute, capability };
    }
  }
  return null;
}

/**
 * Whether the grant lets the caller use this envelope sender ('' is <>).
 * Addresses compare as the MTA compares them (address-comparison.ts), never
 * by toLowerCase, which folds some non-ASCII characters into ASCII ones.
 */
export function senderPermitted(grant: Grant, caller: CallerIdentity, sender: string): boolean {
  return grant.senders.some((policy) => {
    if (policy.kind === 'any') return true;
    if (policy.kind === 'own') {
      if (sender === '' || caller.userName === null) return sender === '';
      const at = sender.lastIndexOf('@');
      // The name exactly (user names differing only in case are different users); the domain must be a domain.
      if (at >= 0 && canonicalDomain(sender.slice(at + 1)) === null) return false;
      return (at >= 0 ? sender.slice(0, at) : sender) === caller.userName;
    }
    return policy.patterns.some((pattern) => senderMatchesPattern(pattern, sender));
  });
}
