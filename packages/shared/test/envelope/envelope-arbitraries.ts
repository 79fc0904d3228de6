/**
 * fast-check generators of valid envelope blocks: every attribute's value
 * drawn from its grammar (addresses with quoted parts, literals and UTF-8;
 * every DSN form; every XFORWARD and logged fact), names in any spelling,
 * any spaces after the colon, LF or CRLF. The property tests parse these
 * blocks, so the Envelope they check always comes from the parser itself.
 */
import { isIPv6 } from 'node:net';
import fc from 'fast-check';
import { DEFAULT_LIMITS } from '../../src/limits.ts';
import { ATTRIBUTE_NAMES, type SingleName } from '../../src/envelope/attribute-names.ts';
import { findControl } from '../../src/envelope/characters.ts';

const utf8Octets = (text: string): number => Buffer.byteLength(text, 'utf8');
const NON_ASCII = ['é', 'ü', 'ß', '日', '本', 'я', '😀', '\u00a0'];
const ATEXT = [...'abcxyzABCXYZ0189', ..."!#$%&'*+-/=?^_`{|}~", ...NON_ASCII];
const QTEXT = [...' !#$%&()*,-./09:;=?@AZ[]^_`az{|}~', ...NON_ASCII];

const atom = fc.string({ unit: fc.constantFrom(...ATEXT), minLength: 1, maxLength: 8 });
const dotString = fc.array(atom, { minLength: 1, maxLength: 3 }).map((atoms) => atoms.join('.'));
const quotedPair = fc
  .integer({ min: 0x20, max: 0x7e })
  .filter((cp) => cp !== 0x3c && cp !== 0x3e)
  .map((cp) => `\\${String.fromCharCode(cp)}`);
const quoted = fc
  .array(fc.oneof(fc.constantFrom(...QTEXT), quotedPair), { maxLength: 8 })
  .map((parts) => `"${parts.join('')}"`);

const asciiLabel = fc.stringMatching(/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,8}[A-Za-z0-9])?$/);
const label = fc.oneof(asciiLabel, fc.constantFrom('bücher', '例え', 'テスト', 'xn--bcher-kva'));
const domain = fc.array(label, { minLength: 1, maxLength: 4 }).map((labels) => labels.join('.'));
const ipv6 = fc.ipV6().filter((ip) => isIPv6(ip));
const literal = fc.oneof(
  fc.ipV4().map((ip) => `[${ip}]`),
  fc.tuple(fc.constantFrom('IPv6:', 'ipv6:', 'IPV6:'), ipv6).map(([tag, ip]) => `[${tag}${ip}]`),
);

/** A mailbox text (what goes between the brackets), qualified or not, within 256 octets. */
export const mailbox = fc
  .tuple(fc.oneof({ weight: 3, arbitrary: dotString }, { weight: 1, arbitrary: quoted }), fc.option(fc.oneof(domain, literal)))
  .map(([local, where]) => (where === null ? local : `${local}@${where}`))
  .filter((text) => utf8Octets(text) <= 256);

/** An address as a caller may write it: with or without angle brackets. */
export const writtenAddress = fc.tuple(mailbox, fc.boolean()).map(([text, brackets]) => (brackets ? `<${text}>` : text));

const notify = fc.oneof(
  fc.mixedCase(fc.constant('never')),
  fc
    .tuple(
      fc.subarray(['success', 'failure', 'fail', 'delay'], { minLength: 1 }),
      fc.array(fc.constantFrom(',', ' ,', ', ', ' , '), { minLength: 4, maxLength: 4 }),
    )
    .chain(([words, commas]) =>
      fc
        .tuple(...words.map((word) => fc.mixedCase(fc.constant(word))))
        .map((cased) => cased.map((word, i) => (i === 0 ? word : `${commas[i] ?? ','}${word}`)).join('')),
    ),
);

const printableAscii = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((cp) => String.fromCharCode(cp)), minLength: 1, maxLength: 40 });
const addressType = fc.stringMatching(/^[A-Za-z0-9-]{1,10}$/);

const orcpt = fc
  .oneof(
    fc.tuple(addressType.filter((t) => t.toLowerCase() !== 'utf-8'), printableAscii).map(([type, value]) => `${type};${value}`),
    fc.tuple(fc.mixedCase(fc.constant('utf-8')), fc.oneof(printableAscii, mailbox)).map(([type, value]) => `${type};${value}`),
    writtenAddress,
  )
  .filter((value) => !value.endsWith(' ') && utf8Octets(value) <= 500);

const freeText = fc
  .string({ unit: 'grapheme', minLength: 1, maxLength: 30 })
  .filter((text) => findControl(text) === undefined && !text.endsWith(' ') && utf8Octets(text) <= 1024);

const hostLabel = fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/);
const clientName = fc.oneof(
  fc.constant('unknown'),
  fc
    .tuple(fc.array(hostLabel, { minLength: 1, maxLength: 4 }), fc.boolean())
    .map(([labels, root]) => `${labels.join('.')}${root ? '.' : ''}`),
);

const clientAddress = fc.oneof(
  fc.ipV4(),
  fc.ipV4().map((ip) => `[${ip}]`),
  ipv6,
  fc.tuple(fc.mixedCase(fc.constant('ipv6:')), ipv6).map(([tag, ip]) => `[${tag}${ip}]`),
);

const fingerprint = fc
  .array(fc.integer({ min: 0, max: 255 }), { minLength: 16, maxLength: 64 })
  .chain((bytes) => fc.mixedCase(fc.constant(bytes.map((b) => b.toString(16).padStart(2, '0')).join(':'))));

const decimal = (min: number, max: number): fc.Arbitrary<string> => fc.integer({ min, max }).map(String);

/** A valid value for every single-valued attribute but sender. */
const SINGLE_VALUES: Record<Exclude<SingleName, 'sender'>, fc.Arbitrary<string>> = {
  'dsn-envelope-id': fc.stringMatching(/^[\x21-\x7e]{1,100}$/),
  'dsn-return-option': fc.constantFrom('full', 'headers', 'hdrs').chain((word) => fc.mixedCase(fc.constant(word))),
  size: decimal(0, DEFAULT_LIMITS.maxMessageOctets),
  protocol_name: fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
  helo_name: fc.stringMatching(/^[\x21-\x7e]{1,255}$/),
  client_name: clientName,
  client_address: clientAddress,
  client_port: decimal(0, 65535),
  sasl_method: fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
  sasl_username: freeText,
  sasl_sender: writtenAddress,
  ccert_subject: freeText,
  ccert_issuer: freeText,
  ccert_fingerprint: fingerprint,
  encryption_protocol: fc.stringMatching(/^[A-Za-z0-9._/-]{1,64}$/),
  encryption_cipher: fc.stringMatching(/^[A-Za-z0-9._/+=-]{1,128}$/),
  encryption_keysize: decimal(1, 65535),
};

/** A name as a caller may spell it: any case, `-` and `_` swapped. */
function spelled(name: string): fc.Arbitrary<string> {
  return fc
    .mixedCase(fc.constant(name))
    .chain((cased) => fc.constantFrom(cased, cased.replaceAll('-', '_'), cased.replaceAll('_', '-')));
}

const lineEnd = fc.constantFrom('\n', '\r\n');
const afterColon = fc.constantFrom('', ' ', ' ', '   ');

function attributeLine(name: string, value: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.tuple(spelled(name), afterColon, value, lineEnd).map(([n, spaces, v, eol]) => `${n}:${spaces}${v}${eol}`);
}

const recipientGroup = fc
  .tuple(
    attributeLine('recipient', writtenAddress),
    fc.option(attributeLine('dsn-notify-options', notify)),
    fc.option(attributeLine('dsn-orig-rcpt', orcpt)),
    fc.boolean(),
  )
  .map(([recipient, n, o, swap]) => {
    const extra = [n, o].filter((x): x is string => x !== null);
    return recipient + (swap ? extra.reverse() : extra).join('');
  });

const OPTIONAL_SINGLES = ATTRIBUTE_NAMES.filter(
  (name): name is Exclude<SingleName, 'sender'> =>
    name !== 'sender' && name !== 'recipient' && name !== 'dsn-notify-options' && name !== 'dsn-orig-rcpt',
);

/** Each optional attribute: absent, given with a value, or (rarely) given empty. */
const optionalLines = fc.tuple(
  ...OPTIONAL_SINGLES.map((name) =>
    fc.oneof(
      { weight: 3, arbitrary: fc.constant(null) },
      { weight: 3, arbitrary: attributeLine(name, SINGLE_VALUES[name]) },
      { weight: 1, arbitrary: attributeLine(name, fc.constant('')) },
    ),
  ),
);

/** A valid envelope block, its empty line, and a short message after it. */
export const validBlock: fc.Arbitrary<string> = fc
  .tuple(
    attributeLine('sender', fc.oneof(fc.constant('<>'), writtenAddress)),
    fc.array(recipientGroup, { minLength: 1, maxLength: 5 }),
    optionalLines,
    lineEnd,
  )
  .chain(([sender, recipients, optional, eol]) => {
    const units = [sender, ...recipients, ...optional.filter((x): x is string => x !== null)];
    return fc.shuffledSubarray(units, { minLength: units.length }).map((shuffled) => `${shuffled.join('')}${eol}Subject: x${eol}`);
  });
