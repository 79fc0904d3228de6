import { describe, expect, it } from 'vitest';
import {
  AuthorizationListError,
  formatEntry,
  parseAuthorizationList,
  parsePrincipal,
} from '../../src/authorization/authorization-list.ts';
import { authorize, firstUnpermittedAttribute, senderPermitted, type CallerIdentity } from '../../src/authorization/authorize.ts';

const alice: CallerIdentity = { uid: 1001, userName: 'alice', groupNames: ['alice', 'filters'] };
const nobody: CallerIdentity = { uid: 65534, userName: null, groupNames: [] };

describe('authorization list syntax', () => {
  it('reads user names, uid:N and @group with capabilities, skipping comments and blank lines', () => {
    const entries = parseAuthorizationList('# comment\n\nalice client sasl\nuid:1002 sender=own  # trailing comment\n@filters tls sender=*@example.org,b@example.net\n');
    expect(entries.map(formatEntry)).toEqual(['alice client sasl', 'uid:1002 sender=own', '@filters tls sender=*@example.org,b@example.net']);
    expect(entries.map((e) => e.line)).toEqual([3, 4, 5]);
  });

  it.each([
    ['alice bogus', /^authorized:1: unknown capability "bogus"/],
    ['uid:abc', /^authorized:1: "uid:abc" is not a user name/],
    ['uid:99999999999', /not a user name, uid:N or @group/],
    ['@', /not a user name/],
    ['alice\nalice client', /^authorized:2: alice is already listed on line 1/],
    ['alice sender=own sender=any', /sender= given twice/],
    ['alice sender=a,,b', /sender pattern "" is empty/],
  ])('refuses %j naming the line', (text, message) => {
    expect(() => parseAuthorizationList(text, 'authorized')).toThrow(AuthorizationListError);
    expect(() => parseAuthorizationList(text, 'authorized')).toThrow(message);
  });

  it('parses principals on their own', () => {
    expect(parsePrincipal('uid:0')).toEqual({ kind: 'uid', uid: 0 });
    expect(parsePrincipal('@mail')).toEqual({ kind: 'group', name: 'mail' });
    expect(parsePrincipal('www-data')).toEqual({ kind: 'user', name: 'www-data' });
    expect(parsePrincipal('a b')).toBeNull();
    expect(parsePrincipal('-rf')).toBeNull();
  });
});

describe('authorize', () => {
  const entries = parseAuthorizationList('alice client\n@filters sasl\nuid:1003\n');

  it('matches by name, uid and group, and unions the capabilities of every match', () => {
    const grant = authorize(entries, alice);
    expect(grant?.matched.map((e) => e.line)).toEqual([1, 2]);
    expect([...(grant?.capabilities ?? [])].sort()).toEqual(['client', 'sasl']);
    expect(authorize(entries, { uid: 1003, userName: 'carol', groupNames: [] })?.matched).toHaveLength(1);
  });

  it('refuses a caller that matches nothing, including a uid without a user name', () => {
    expect(authorize(entries, nobody)).toBeNull();
    expect(authorize(entries, { uid: 1004, userName: 'dave', groupNames: ['users'] })).toBeNull();
  });

  it('names the first asserted attribute a capability does not cover', () => {
    const grant = authorize(parseAuthorizationList('alice client'), alice)!;
    expect(firstUnpermittedAttribute(grant, ['sender', 'client_address', 'recipient'])).toBeNull();
    expect(firstUnpermittedAttribute(grant, ['client_name', 'sasl_username', 'ccert_subject'])).toEqual({ attribute: 'sasl_username', capability: 'sasl' });
  });

  it('applies sender policies: any, own and patterns', () => {
    const grant = (line: string) => authorize(parseAuthorizationList(line), alice)!;
    expect(senderPermitted(grant('alice'), alice, 'anyone@example.com')).toBe(true);
    expect(senderPermitted(grant('alice sender=own'), alice, 'alice@example.net')).toBe(true);
    expect(senderPermitted(grant('alice sender=own'), alice, 'alice')).toBe(true);
    expect(senderPermitted(grant('alice sender=own'), alice, '')).toBe(true);
    expect(senderPermitted(grant('alice sender=own'), alice, 'bob@example.net')).toBe(false);
    expect(senderPermitted(grant('alice sender=*@example.org'), alice, 'X@Example.ORG')).toBe(true);
    expect(senderPermitted(grant('alice sender=*@example.org'), alice, 'x@example.org.evil')).toBe(false);
    expect(senderPermitted(grant('alice sender=a.b@example.org'), alice, 'aXb@example.org')).toBe(false);
  });
});
