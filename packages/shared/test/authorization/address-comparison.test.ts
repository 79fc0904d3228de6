/**
 * Sender patterns compared as the MTA compares addresses: ASCII case aside,
 * exactly; no non-ASCII character ever passes for an ASCII one; a U-label and
 * its A-label are one domain.
 */
import { describe, expect, it } from 'vitest';
import { addressKey, canonicalDomain, canonicalPattern, senderMatchesPattern } from '../../src/authorization/address-comparison.ts';
import { AuthorizationListError, parseAuthorizationList } from '../../src/authorization/authorization-list.ts';
import { authorize, senderPermitted, type CallerIdentity } from '../../src/authorization/authorize.ts';

const alice: CallerIdentity = { uid: 1001, userName: 'alice', groupNames: ['alice'] };
const permitted = (line: string, sender: string): boolean => senderPermitted(authorize(parseAuthorizationList(line), alice)!, alice, sender);

describe('confusable senders never pass a pattern for another domain', () => {
  it.each([
    ['KELVIN SIGN in the domain', '*@example.com', 'user@exampl\u212a.com'],
    ['KELVIN SIGN in the local part', 'kim@example.com', '\u212aim@example.com'],
    ['dotted capital I (U+0130) in the domain', '*@ibm.com', 'user@\u0130bm.com'],
    ['dotted capital I (U+0130) in the local part', 'info@example.com', '\u0130nfo@example.com'],
    ['dotless i (U+0131) in the domain', '*@mail.com', 'user@ma\u0131l.com'],
    ['dotless i (U+0131) in the local part', 'bill@example.com', 'b\u0131ll@example.com'],
    ['long s (U+017F) in the domain', '*@ssl.example', 'user@\u017fsl.example'],
    ['long s (U+017F) in the local part', 'sales@example.com', '\u017fales@example.com'],
    ['fullwidth letters in the domain', '*@example.com', 'user@\uff45xample.com'],
    ['fullwidth letters in the local part', 'bob@example.com', '\uff42ob@example.com'],
    ['the ff ligature (U+FB00) in the domain', '*@office.example', 'user@o\ufb00ice.example'],
    ['the ff ligature (U+FB00) in the local part', 'jeff@example.com', 'je\ufb00@example.com'],
    ['Cyrillic e in the domain', '*@example.com', 'user@\u0435xample.com'],
    ['Greek omicron in the domain', '*@google.com', 'user@g\u03bfogle.com'],
    ['Cyrillic a in the local part', 'admin@example.com', '\u0430dmin@example.com'],
    ['a zero-width space (IDNA drops it) in the domain', '*@example.com', 'user@exam\u200bple.com'],
    ['a soft hyphen (IDNA drops it) in the domain', '*@example.com', 'user@exam\u00adple.com'],
    ['an A-label that decodes to ASCII', '*@example.com', 'user@xn--example-.com'],
    ['a broken A-label', '*@example.com', 'user@xn--.com'],
  ])('%s', (_name, pattern, sender) => {
    expect(permitted(`alice sender=${pattern}`, sender)).toBe(false);
  });

  it('still compares ASCII letters without regard to case', () => {
    expect(permitted('alice sender=*@example.org', 'X@Example.ORG')).toBe(true);
    expect(permitted('alice sender=Bounces@EXAMPLE.net', 'bounces@example.NET')).toBe(true);
    expect(permitted('alice sender=*@example.org', 'x@example.org.evil')).toBe(false);
  });

  it('takes a U-label and its A-label, in any ASCII case, as one domain', () => {
    const list = 'alice sender=*@xn--bcher-kva.example';
    expect(permitted(list, 'user@b\u00fccher.example')).toBe(true);
    expect(permitted(list, 'user@XN--BCHER-KVA.example')).toBe(true);
    expect(permitted(list, 'user@Xn--Bcher-Kva.Example')).toBe(true);
    expect(permitted(list, 'user@B\u00dcCHER.example')).toBe(true);
    expect(permitted(list, 'user@bucher.example')).toBe(false);
    const unicode = 'alice sender=*@b\u00fccher.example';
    expect(permitted(unicode, 'user@xn--bcher-kva.example')).toBe(true);
    expect(permitted(unicode, 'user@b\u00fccher.example')).toBe(true);
    expect(permitted(unicode, 'user@bucher.example')).toBe(false);
  });

  it('keeps non-ASCII local parts exact', () => {
    expect(permitted('alice sender=j\u00f6rg@example.com', 'j\u00f6rg@example.com')).toBe(true);
    expect(permitted('alice sender=j\u00f6rg@example.com', 'j\u00d6rg@example.com')).toBe(false);
    expect(permitted('alice sender=j\u00f6rg@example.com', 'jorg@example.com')).toBe(false);
  });

  it('refuses sender=own with a domain that is not what it looks like', () => {
    expect(permitted('alice sender=own', 'alice@example.com')).toBe(true);
    expect(permitted('alice sender=own', 'alice@exampl\u212a.com')).toBe(false);
    expect(permitted('alice sender=own', '\u0430lice@example.com')).toBe(false);
    expect(permitted('alice sender=own', 'al\u0131ce@example.com')).toBe(false);
  });
});

describe('comparison forms', () => {
  it('gives domains as lower-case A-labels, and none for labels IDNA would change', () => {
    expect(canonicalDomain('B\u00dcCHER.Example')).toBe('xn--bcher-kva.example');
    expect(canonicalDomain('XN--BCHER-KVA.example')).toBe('xn--bcher-kva.example');
    expect(canonicalDomain('exampl\u212a.com')).toBeNull();
    expect(canonicalDomain('\u0130stanbul.example')).toBeNull();
    expect(canonicalDomain('[IPv6:2001:DB8::1]')).toBe('[ipv6:2001:db8::1]');
    expect(addressKey('')).toBe('');
    expect(addressKey('Alice')).toBe('alice');
    expect(addressKey('J\u00f6rg@B\u00fccher.example')).toBe('j\u00f6rg@xn--bcher-kva.example');
  });

  it('refuses, on the list, a pattern whose domain is not a domain as written', () => {
    expect(() => canonicalPattern('*@exampl\u212a.com')).toThrow(/IDNA/);
    expect(() => parseAuthorizationList('alice sender=*@exampl\u212a.com', 'authorized')).toThrow(AuthorizationListError);
    expect(() => parseAuthorizationList('alice sender=*@exampl\u212a.com', 'authorized')).toThrow(/^authorized:1: /);
    expect(() => parseAuthorizationList('alice sender=*@b\u00fc*.example', 'authorized')).toThrow(/wildcard/);
    expect(() => parseAuthorizationList('alice sender=*@exa\u202emple.com', 'authorized')).toThrow(/format character/);
    expect(canonicalPattern('*@*.Example.COM')).toBe('*@*.example.com');
  });

  it('matches wildcards across the comparison form', () => {
    expect(senderMatchesPattern('*@*.example.com', 'x@mail.EXAMPLE.com')).toBe(true);
    expect(senderMatchesPattern('*', '')).toBe(true);
    expect(senderMatchesPattern('*@*', 'x@exampl\u212a.com')).toBe(false);
  });
});
