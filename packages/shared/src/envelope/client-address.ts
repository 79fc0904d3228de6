/**
 * The client_address attribute: the IP address of the original SMTP client,
 * which goes downstream as XFORWARD ADDR.
 *
 * Accepted forms are the contract's: `[ipv4]`, `[ipv6:addr]` (the prefix in
 * any case), or the bare address. Zone ids (`fe80::1%eth0`) are refused: they
 * name an interface of the machine that saw the client, which means nothing
 * to the MTA, and `%` has no place in XFORWARD. IPv6 is lower-cased but not
 * expanded or compressed: the log shows what the caller wrote.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { ClientAddress } from './envelope.ts';
import { SubmissionError, type InputPosition } from '../errors.ts';

const IPV6_PREFIX = /^ipv6:/i;

export function parseClientAddress(value: string, at: InputPosition = {}): ClientAddress {
  const refuse = (detail: string): never => {
    throw new SubmissionError('envelope-syntax', detail, at);
  };
  let bare = value;
  let bracketed = false;
  if (value.startsWith('[')) {
    if (!value.endsWith(']')) refuse('no closing bracket');
    bare = value.slice(1, -1);
    bracketed = true;
  } else if (value.endsWith(']')) {
    refuse('a closing bracket without an opening one');
  }
  if (bracketed && IPV6_PREFIX.test(bare)) return ipv6(bare.slice(5), refuse);
  if (isIPv4(bare)) return Object.freeze({ family: 4, address: bare });
  if (bracketed && isIPv6(bare)) refuse('an IPv6 address in brackets needs the prefix: [ipv6:addr]');
  if (!bracketed && bare.includes(':')) return ipv6(bare, refuse);
  return refuse('not an IP address; write [1.2.3.4], [ipv6:addr], or the bare address');
}

function ipv6(address: string, refuse: (detail: string) => never): ClientAddress {
  if (address.includes('%')) refuse('zone ids (%interface) are not accepted');
  if (!isIPv6(address)) refuse('not a valid IPv6 address');
  return Object.freeze({ family: 6, address: address.toLowerCase() });
}
