import { describe, expect, it } from 'vitest';
import { SubmissionError } from '../../src/errors.ts';
import { xforwardCommands, xforwardOmitted } from '../../src/smtp/xforward.ts';
import { ALL_CAPABILITIES, capabilities } from './envelope-builders.ts';

const FULL_CLIENT = {
  clientName: 'spike.porcupine.org',
  clientAddress: { family: 4 as const, address: '168.100.189.2' },
  clientPort: 54321,
  protocolName: 'ESMTP',
  heloName: 'spike.porcupine.org',
};

describe('xforwardCommands', () => {
  it('sends every announced attribute and SOURCE=REMOTE on one line', () => {
    expect(xforwardCommands(FULL_CLIENT, ALL_CAPABILITIES)).toEqual([
      'XFORWARD NAME=spike.porcupine.org ADDR=168.100.189.2 PORT=54321 PROTO=ESMTP HELO=spike.porcupine.org SOURCE=REMOTE',
    ]);
  });

  it('writes an IPv6 address with the IPV6: prefix', () => {
    const lines = xforwardCommands({ clientAddress: { family: 6, address: '2001:db8::1' } }, ALL_CAPABILITIES);
    expect(lines).toEqual(['XFORWARD ADDR=IPV6:2001:db8::1 SOURCE=REMOTE']);
  });

  it('sends SOURCE=REMOTE when no client attribute was given: the message is passed on, not submitted here', () => {
    expect(xforwardCommands({}, ALL_CAPABILITIES)).toEqual(['XFORWARD SOURCE=REMOTE']);
  });

  it('sends SOURCE=LOCAL for a message submitted on this host, with or without client attributes', () => {
    expect(xforwardCommands({}, ALL_CAPABILITIES, { source: 'LOCAL' })).toEqual(['XFORWARD SOURCE=LOCAL']);
    expect(xforwardCommands({ heloName: 'h.example' }, ALL_CAPABILITIES, { source: 'LOCAL' })).toEqual(['XFORWARD HELO=h.example SOURCE=LOCAL']);
  });

  it('sends only the attributes the server announced', () => {
    const caps = capabilities({ xforward: new Set(['NAME', 'HELO']) });
    expect(xforwardCommands(FULL_CLIENT, caps)).toEqual(['XFORWARD NAME=spike.porcupine.org HELO=spike.porcupine.org']);
  });

  it('sends nothing when the server announces no XFORWARD, or nothing it can use', () => {
    expect(xforwardCommands(FULL_CLIENT, capabilities())).toEqual([]);
    expect(xforwardCommands(FULL_CLIENT, capabilities({ xforward: new Set(['IDENT']) }))).toEqual([]);
  });

  it('xtext-encodes values', () => {
    expect(xforwardCommands({ heloName: 'a=b+c d' }, ALL_CAPABILITIES)).toEqual(['XFORWARD HELO=a+3Db+2Bc+20d SOURCE=REMOTE']);
  });

  it('splits the attributes over several commands to stay within 512 octets', () => {
    const client = { ...FULL_CLIENT, clientName: `${'n'.repeat(63)}.${'m'.repeat(63)}.${'o'.repeat(63)}.${'p'.repeat(60)}`, heloName: 'h'.repeat(250) };
    const lines = xforwardCommands(client, ALL_CAPABILITIES);
    expect(lines.length).toBe(2);
    for (const line of lines) expect(line.length + 2).toBeLessThanOrEqual(512);
    expect(lines[0]).toMatch(/^XFORWARD NAME=n+\.m+\.o+\.p+ ADDR=168\.100\.189\.2 PORT=54321 PROTO=ESMTP$/);
    expect(lines[1]).toBe(`XFORWARD HELO=${'h'.repeat(250)} SOURCE=REMOTE`);
  });

  it('refuses a value over 255 characters once encoded', () => {
    // 100 '=' are 300 characters of xtext.
    let caught: unknown;
    try {
      xforwardCommands({ heloName: '='.repeat(100) }, ALL_CAPABILITIES);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(SubmissionError);
    expect((caught as SubmissionError).position.attribute).toBe('helo_name');
  });

  it('refuses a port out of range', () => {
    expect(() => xforwardCommands({ clientPort: 70000 }, ALL_CAPABILITIES)).toThrow(SubmissionError);
  });

  it('never puts a CR or LF on the line', () => {
    const [line] = xforwardCommands({ heloName: 'x\r\nMAIL FROM:<a@b>' }, ALL_CAPABILITIES);
    expect(line).toBe('XFORWARD HELO=x+0D+0AMAIL+20FROM:<a@b> SOURCE=REMOTE');
  });
});

describe('xforwardOmitted', () => {
  it('lists SOURCE=LOCAL for local mail when the server cannot take SOURCE, nothing for passed-on mail', () => {
    expect(xforwardOmitted({}, capabilities(), { source: 'LOCAL' })).toEqual(['XFORWARD SOURCE=LOCAL (no XFORWARD)']);
    expect(xforwardOmitted({}, capabilities({ xforward: new Set(['NAME']) }), { source: 'LOCAL' })).toEqual(['XFORWARD SOURCE=LOCAL (not announced)']);
    expect(xforwardOmitted({}, ALL_CAPABILITIES, { source: 'LOCAL' })).toEqual([]);
    expect(xforwardOmitted({}, capabilities())).toEqual([]);
  });

  it('lists every given attribute when the server announces no XFORWARD (Exim, OpenSMTPD)', () => {
    expect(xforwardOmitted(FULL_CLIENT, capabilities())).toEqual([
      'XFORWARD NAME (no XFORWARD)',
      'XFORWARD ADDR (no XFORWARD)',
      'XFORWARD PORT (no XFORWARD)',
      'XFORWARD PROTO (no XFORWARD)',
      'XFORWARD HELO (no XFORWARD)',
    ]);
  });

  it('lists only the attributes the server left out of its XFORWARD list', () => {
    const caps = capabilities({ xforward: new Set(['NAME', 'HELO']) });
    expect(xforwardOmitted(FULL_CLIENT, caps)).toEqual(['XFORWARD ADDR (not announced)', 'XFORWARD PORT (not announced)', 'XFORWARD PROTO (not announced)']);
  });

  it('lists nothing when nothing was given or everything is carried', () => {
    expect(xforwardOmitted({}, capabilities())).toEqual([]);
    expect(xforwardOmitted(FULL_CLIENT, ALL_CAPABILITIES)).toEqual([]);
  });

  it('does not refuse a value XFORWARD could not carry when XFORWARD is not used', () => {
    expect(xforwardOmitted({ heloName: '='.repeat(100) }, capabilities())).toEqual(['XFORWARD HELO (no XFORWARD)']);
  });
});
