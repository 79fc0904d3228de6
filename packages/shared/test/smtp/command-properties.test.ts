/**
 * Property tests for the command builders: whatever Envelope object they are
 * handed (including values the parser would refuse, built directly from the
 * types), a builder either throws one of the two expected error types or
 * produces a line that reads back exactly as the envelope says, with no
 * CR, LF or NUL and no parameter the server did not announce.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Address, ClientAttributes, Envelope, NotifyKeyword, Recipient } from '../../src/envelope/envelope.ts';
import { SubmissionError } from '../../src/errors.ts';
import type { ServerCapabilities } from '../../src/smtp/capabilities.ts';
import { UnsafeCommandLineError } from '../../src/smtp/command-line-safety.ts';
import { mailFromCommand, rcptToCommand } from '../../src/smtp/mail-command.ts';
import { xforwardCommands } from '../../src/smtp/xforward.ts';
import { decodeUtf8AddrXtext, decodeXtext, encodeUtf8AddrXtext, encodeXtext } from '../../src/smtp/xtext.ts';

const RUNS = { numRuns: 2000 };

// Characters that matter to the SMTP grammar, mixed with ordinary ones.
const tricky = fc.constantFrom(
  'a', 'Z', '0', '@', '.', '-', '"', '\\', ' ', '\t', '<', '>', '=', '+', ';', ',', ':', '[', ']',
  '\r', '\n', '\0', '\x1b', '\x7f', '\u00e9', '\u7528', '\u{1F600}', '\ud800',
);
const hostile = fc.oneof(
  fc.string({ unit: tricky, maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme-ascii', maxLength: 40 }),
);
const plausibleAddress = fc.oneof(
  fc.emailAddress(),
  fc.constant(''),
  fc.constant('"a b>c"@example.org'),
  fc.constant('j\u00f6rg@b\u00fccher.example'),
);

const addressArb: fc.Arbitrary<Address> = fc.record({
  text: fc.oneof(plausibleAddress, hostile),
  utf8: fc.boolean(),
  unqualified: fc.boolean(),
});

const notifyArb = fc.oneof(
  fc.subarray<NotifyKeyword>(['SUCCESS', 'FAILURE', 'DELAY'], { minLength: 1 }),
  fc.constant<NotifyKeyword[]>(['NEVER']),
  fc.array(hostile, { maxLength: 3 }) as fc.Arbitrary<NotifyKeyword[]>,
);

const recipientArb: fc.Arbitrary<Recipient> = fc.record(
  {
    address: addressArb,
    notify: notifyArb,
    orcpt: fc.record({ type: fc.oneof(fc.constantFrom('rfc822', 'utf-8', 'RFC822', 'x400'), hostile), value: fc.oneof(plausibleAddress, hostile) }),
    line: fc.nat({ max: 10_000 }),
  },
  { requiredKeys: ['address', 'line'] },
);

const envelopeArb: fc.Arbitrary<Envelope> = fc.record(
  {
    sender: addressArb,
    recipients: fc.array(recipientArb, { minLength: 1, maxLength: 3 }),
    envelopeId: fc.oneof(fc.string({ unit: 'grapheme-ascii', maxLength: 100 }), hostile),
    returnOption: fc.oneof(fc.constantFrom('FULL', 'HDRS'), hostile) as fc.Arbitrary<'FULL'>,
    size: fc.oneof(fc.nat(), fc.integer(), fc.double()),
    client: fc.constant({}),
    sasl: fc.constant({}),
    tls: fc.constant({}),
    asserted: fc.constant([]),
  },
  { requiredKeys: ['sender', 'recipients', 'client', 'sasl', 'tls', 'asserted'] },
);

const XFORWARD_NAMES = ['NAME', 'ADDR', 'PORT', 'PROTO', 'HELO', 'SOURCE', 'IDENT'];
const capsArb: fc.Arbitrary<ServerCapabilities> = fc.record({
  pipelining: fc.boolean(),
  size: fc.option(fc.nat()),
  eightBitMime: fc.boolean(),
  smtpUtf8: fc.boolean(),
  dsn: fc.boolean(),
  enhancedStatusCodes: fc.boolean(),
  chunking: fc.boolean(),
  xforward: fc.subarray(XFORWARD_NAMES).map((names) => new Set(names)),
  auth: fc.subarray(['PLAIN', 'LOGIN', 'SCRAM-SHA-256']).map((names) => new Set(names)),
});

/** The only errors a builder may throw. */
function isExpectedError(err: unknown): boolean {
  return err instanceof SubmissionError || err instanceof UnsafeCommandLineError;
}

function attempt<T>(build: () => T): T | null {
  try {
    return build();
  } catch (err) {
    if (!isExpectedError(err)) throw err;
    return null;
  }
}

interface ParsedCommand {
  readonly path: string;
  readonly params: ReadonlyMap<string, string | null>;
}

/**
 * Reads `PREFIX<path> KEY=value ...` the way a server does: the path ends at
 * the first '>' outside a quoted string; parameters are separated by single
 * spaces. Returns null when the line does not have that shape, or repeats a
 * keyword.
 */
function parseCommand(line: string, prefix: string): ParsedCommand | null {
  if (!line.startsWith(`${prefix}<`)) return null;
  let i = prefix.length + 1;
  let quoted = false;
  let escaped = false;
  for (; i < line.length; i++) {
    const char = line[i];
    if (escaped) escaped = false;
    else if (quoted && char === '\\') escaped = true;
    else if (char === '"') quoted = !quoted;
    else if (!quoted && char === '>') break;
  }
  if (i >= line.length) return null;
  const path = line.slice(prefix.length + 1, i);
  const rest = line.slice(i + 1);
  const params = new Map<string, string | null>();
  if (rest === '') return { path, params };
  if (!rest.startsWith(' ')) return null;
  for (const word of rest.slice(1).split(' ')) {
    if (word === '') return null;
    const eq = word.indexOf('=');
    const keyword = (eq < 0 ? word : word.slice(0, eq)).toUpperCase();
    if (params.has(keyword)) return null;
    params.set(keyword, eq < 0 ? null : word.slice(eq + 1));
  }
  return { path, params };
}

const XTEXT = /^(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})+$/;
const UTF8_ADDR_XTEXT = /^(?:[\x21-\x2a\x2c-\x3c\x3e-\x5b\x5d-\x7e]|\\x\{[0-9A-F]{2,6}\})+$/;

function assertWireSafe(line: string): void {
  expect(line).not.toMatch(/[\r\n\0]/);
}

describe('command builders on arbitrary envelopes', () => {
  it('MAIL FROM is either refused or reads back as the envelope says', () => {
    fc.assert(
      fc.property(envelopeArb, capsArb, fc.boolean(), (envelope, caps, eightBit) => {
        const built = attempt(() => mailFromCommand(envelope, { eightBit }, caps));
        if (built === null) return;
        assertWireSafe(built.line);
        const parsed = parseCommand(built.line, 'MAIL FROM:');
        expect(parsed).not.toBeNull();
        if (parsed === null) return;
        expect(parsed.path).toBe(envelope.sender.text);

        const allowed = new Set<string>();
        if (caps.size !== null) allowed.add('SIZE');
        if (caps.eightBitMime) allowed.add('BODY');
        if (caps.smtpUtf8) allowed.add('SMTPUTF8');
        if (caps.dsn) allowed.add('RET').add('ENVID');
        for (const keyword of parsed.params.keys()) expect(allowed).toContain(keyword);

        const size = parsed.params.get('SIZE');
        if (size !== undefined) expect(size).toBe(String(envelope.size));
        if (parsed.params.has('BODY')) expect(parsed.params.get('BODY')).toBe('8BITMIME');
        if (parsed.params.has('SMTPUTF8')) expect(parsed.params.get('SMTPUTF8')).toBeNull();
        if (parsed.params.has('RET')) expect(parsed.params.get('RET')).toBe(envelope.returnOption);
        const envid = parsed.params.get('ENVID');
        if (envid !== undefined) {
          expect(envid).toMatch(XTEXT);
          expect(decodeXtext(envid as string)).toBe(envelope.envelopeId);
        }
      }),
      RUNS,
    );
  });

  it('RCPT TO is either refused or reads back as the recipient says', () => {
    fc.assert(
      fc.property(recipientArb, capsArb, (recipient, caps) => {
        const built = attempt(() => rcptToCommand(recipient, caps));
        if (built === null) return;
        assertWireSafe(built.line);
        const parsed = parseCommand(built.line, 'RCPT TO:');
        expect(parsed).not.toBeNull();
        if (parsed === null) return;
        expect(parsed.path).toBe(recipient.address.text);

        for (const keyword of parsed.params.keys()) expect(caps.dsn ? ['NOTIFY', 'ORCPT'] : []).toContain(keyword);
        const notify = parsed.params.get('NOTIFY');
        if (notify !== undefined) expect(notify).toBe(recipient.notify?.join(','));
        const orcpt = parsed.params.get('ORCPT');
        if (orcpt !== undefined && orcpt !== null) {
          expect(orcpt.length).toBeLessThanOrEqual(500);
          const semicolon = orcpt.indexOf(';');
          const type = orcpt.slice(0, semicolon);
          const encoded = orcpt.slice(semicolon + 1);
          if (type === 'utf-8') {
            expect(encoded).toMatch(UTF8_ADDR_XTEXT);
            expect(decodeUtf8AddrXtext(encoded)).toBe(recipient.orcpt?.value);
          } else {
            expect(type).toBe(recipient.orcpt?.type.toLowerCase());
            expect(encoded).toMatch(XTEXT);
            expect(decodeXtext(encoded)).toBe(recipient.orcpt?.value);
          }
        }
      }),
      RUNS,
    );
  });

  it('XFORWARD lines are either refused or within 512 octets with announced, decodable attributes', () => {
    const clientArb: fc.Arbitrary<ClientAttributes> = fc.record(
      {
        protocolName: hostile,
        heloName: fc.oneof(hostile, fc.domain()),
        clientName: fc.oneof(hostile, fc.domain()),
        clientAddress: fc.oneof(
          fc.record({ family: fc.constant(4 as const), address: fc.ipV4() }),
          fc.record({ family: fc.constant(6 as const), address: fc.ipV6() }),
          fc.record({ family: fc.constantFrom(4 as const, 6 as const), address: hostile }),
        ),
        clientPort: fc.oneof(fc.integer({ min: 0, max: 65535 }), fc.integer()),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(clientArb, capsArb, (client, caps) => {
        const lines = attempt(() => xforwardCommands(client, caps));
        if (lines === null) return;
        if (caps.xforward.size === 0) expect(lines).toEqual([]);
        for (const line of lines) {
          assertWireSafe(line);
          expect(Buffer.byteLength(line) + 2).toBeLessThanOrEqual(512);
          const [command, ...params] = line.split(' ');
          expect(command).toBe('XFORWARD');
          expect(params.length).toBeGreaterThan(0);
          for (const param of params) {
            const [name, value] = param.split('=', 2) as [string, string];
            expect(caps.xforward.has(name)).toBe(true);
            expect(value).toMatch(XTEXT);
            expect(value.length).toBeLessThanOrEqual(255);
            decodeXtext(value);
          }
        }
      }),
      RUNS,
    );
  });
});

describe('encodings round-trip', () => {
  const wellFormed = fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: tricky.filter((c) => c !== '\ud800') }));

  it('xtext', () => {
    fc.assert(
      fc.property(wellFormed, (value) => {
        const encoded = encodeXtext(value);
        if (value !== '') expect(encoded).toMatch(XTEXT);
        expect(decodeXtext(encoded)).toBe(value);
      }),
      RUNS,
    );
  });

  it('utf-8-addr-xtext', () => {
    fc.assert(
      fc.property(wellFormed, (value) => {
        const encoded = encodeUtf8AddrXtext(value);
        if (value !== '') expect(encoded).toMatch(UTF8_ADDR_XTEXT);
        expect(decodeUtf8AddrXtext(encoded)).toBe(value);
      }),
      RUNS,
    );
  });
});
