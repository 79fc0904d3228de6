/** client_address: the accepted forms, their normalization, and what is refused. */
import { describe, expect, it } from 'vitest';
import { parseClientAddress } from '../../src/envelope/client-address.ts';
import { expectSubmissionError } from './expect-submission-error.ts';

const at = { line: 4, attribute: 'client_address' };

describe('parseClientAddress', () => {
  it.each([
    ['[192.0.2.1]', 4, '192.0.2.1'],
    ['192.0.2.1', 4, '192.0.2.1'],
    ['[ipv6:2001:db8::1]', 6, '2001:db8::1'],
    ['[IPv6:2001:DB8::A]', 6, '2001:db8::a'],
    ['[IPV6:::1]', 6, '::1'],
    ['2001:DB8:0:0:0:0:0:1', 6, '2001:db8:0:0:0:0:0:1'],
    ['::ffff:192.0.2.1', 6, '::ffff:192.0.2.1'],
  ])('%s', (value, family, address) => {
    const parsed = parseClientAddress(value, at);
    expect(parsed).toEqual({ family, address });
    expect(Object.isFrozen(parsed)).toBe(true);
  });

  it.each([
    ['[192.0.2.1', /no closing bracket/],
    ['192.0.2.1]', /closing bracket without an opening one/],
    ['[::1]', /needs the prefix/],
    ['fe80::1%eth0', /zone ids/],
    ['[ipv6:fe80::1%eth0]', /zone ids/],
    ['[ipv6:192.0.2.1]', /not a valid IPv6/],
    ['1::2::3', /not a valid IPv6/],
    ['192.0.2.256', /not an IP address/],
    ['01.2.3.4', /not an IP address/],
    ['unknown', /not an IP address/],
    ['host.example', /not an IP address/],
    ['[ipv4:192.0.2.1]', /not an IP address/],
    ['192.0.2.1 PORT=25', /not an IP address/],
  ])('refuses %j', (value, detail) => {
    expectSubmissionError(() => parseClientAddress(value, at), {
      outcome: 'envelope-syntax',
      line: 4,
      attribute: 'client_address',
      detail,
    });
  });
});
