/**
 * Comparing an envelope sender with the list's sender patterns the way the
 * MTA compares addresses, not the way String.prototype.toLowerCase does.
 *
 *   - ASCII letters compare without regard to case (A-Z and a-z), as Postfix
 *     does for local parts and domains by default;
 *   - a non-ASCII character never becomes an ASCII one: toLowerCase turns
 *     U+212A KELVIN SIGN into `k` and U+0130 into `i` plus a combining dot,
 *     and IDNA's UTS #46 mapping turns fullwidth letters, ligatures (U+FB00),
 *     long s (U+017F) and even an invisible U+200B into plain ASCII. Any of
 *     those would let `user@exampl\u212a.com` pass a pattern written for
 *     example.com, so a label whose IDNA form differs from what it says is
 *     no domain at all here: it never matches;
 *   - a domain has one form: a U-label and its A-label (`xn--`) are the same
 *     label, and an A-label in any ASCII case is that label. Domains are
 *     compared as lower-case A-labels.
 *
 * Local parts compare exactly, except for ASCII case. Homoglyphs from other
 * scripts (Cyrillic `е`, Greek `ο`) are other characters, so other
 * addresses: their A-labels differ.
 */
import { domainToASCII, domainToUnicode } from 'node:url';

/** A-Z to a-z, and nothing else. */
export function asciiLowerCase(text: string): string {
  return text.replace(/[A-Z]+/g, (run) => run.toLowerCase());
}

const ASCII = /^[\x00-\x7f]*$/;

/**
 * A non-ASCII letter lowered only when its lower case is non-ASCII too:
 * `Ü` becomes `ü`, but U+212A (KELVIN SIGN) and U+0130 stay as they are,
 * and the IDNA check below then refuses them.
 */
function lowerCaseWithoutFolding(label: string): string {
  let out = '';
  for (const ch of label) {
    if (ch.length === 1 && ch.charCodeAt(0) < 0x80) {
      out += asciiLowerCase(ch);
      continue;
    }
    const lower = ch.toLowerCase();
    out += /[\x00-\x7f]/.test(lower) ? ch : lower;
  }
  return out;
}

/**
 * One label in its comparison form: the lower-case A-label, the ASCII label
 * lowered, or null when the label is not a label IDNA would keep as written
 * (it would map to something else, or fails conversion). Labels are never
 * guessed at.
 */
export function canonicalLabel(label: string): string | null {
  if (label === '') return null;
  if (ASCII.test(label)) {
    const lower = asciiLowerCase(label);
    if (!lower.startsWith('xn--')) return lower;
    // An A-label must decode and encode back to itself (xn--example- decodes to plain "example").
    const unicode = domainToUnicode(lower);
    if (unicode === '' || ASCII.test(unicode) || domainToASCII(unicode) !== lower) return null;
    return lower;
  }
  const lowered = lowerCaseWithoutFolding(label);
  const alabel = domainToASCII(lowered);
  if (alabel === '' || alabel.includes('.') || !alabel.startsWith('xn--')) return null;
  // UTS #46 maps and normalizes; anything it changed (beyond the case lowered above) was not what it looked like.
  if (domainToUnicode(alabel) !== lowered) return null;
  return alabel;
}

/** The domain in its comparison form, or null when any label has none. Address literals are lowered. */
export function canonicalDomain(domain: string): string | null {
  if (domain.startsWith('[')) return asciiLowerCase(domain);
  const labels = domain.split('.');
  const out: string[] = [];
  for (const label of labels) {
    const canonical = canonicalLabel(label);
    if (canonical === null) return null;
    out.push(canonical);
  }
  return out.join('.');
}

/**
 * The comparison form of an envelope sender (as the envelope holds it,
 * without angle brackets; '' is <>): the local part with ASCII letters
 * lowered, `@`, the canonical domain. Null when the domain has no
 * canonical form: such a sender matches no pattern.
 */
export function addressKey(address: string): string | null {
  const at = address.lastIndexOf('@');
  if (at < 0) return asciiLowerCase(address);
  const domain = canonicalDomain(address.slice(at + 1));
  return domain === null ? null : `${asciiLowerCase(address.slice(0, at))}@${domain}`;
}

/**
 * A sender pattern as written on the list (`*` matches any run of
 * characters), in comparison form: the part after the last `@` is a domain,
 * converted label by label. A label with a wildcard must be ASCII (write an
 * internationalized label whole, as a U-label or an A-label). Throws a
 * plain Error naming the problem; the list parser adds the line.
 */
export function canonicalPattern(pattern: string): string {
  const at = pattern.lastIndexOf('@');
  if (at < 0) return asciiLowerCase(pattern);
  const labels = pattern.slice(at + 1).split('.');
  const out: string[] = [];
  for (const label of labels) {
    if (label.includes('*')) {
      if (!ASCII.test(label)) throw new Error(`the domain label "${label}" mixes a wildcard with non-ASCII characters; write the label whole`);
      out.push(asciiLowerCase(label));
      continue;
    }
    const canonical = canonicalLabel(label);
    if (canonical === null) {
      throw new Error(`"${label}" is not a domain label as written (IDNA would read it as another label, or cannot convert it)`);
    }
    out.push(canonical);
  }
  return `${asciiLowerCase(pattern.slice(0, at))}@${out.join('.')}`;
}

const compiled = new Map<string, RegExp>();

/** Whether `sender` matches `pattern` (both as written): see the rules above. */
export function senderMatchesPattern(pattern: string, sender: string): boolean {
  const key = addressKey(sender);
  if (key === null) return false;
  let regex = compiled.get(pattern);
  if (regex === undefined) {
    let canonical: string;
    try {
      canonical = canonicalPattern(pattern);
    } catch {
      // The list parser refuses such a pattern; one built another way matches nothing.
      return false;
    }
    const escaped = canonical.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
    regex = new RegExp(`^${escaped}$`, 'su');
    // The list holds a few dozen patterns at most; a bound keeps a hostile caller from growing this.
    if (compiled.size >= 1024) compiled.clear();
    compiled.set(pattern, regex);
  }
  return regex.test(key);
}
