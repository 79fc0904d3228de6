import { describe, expect, it } from 'vitest';
import { NO_CAPABILITIES, parseEhloReply } from '../../src/smtp/capabilities.ts';

// What Postfix's re-injection listener on 127.0.0.1:10026 answers.
const POSTFIX = [
  'mail.example.org',
  'PIPELINING',
  'SIZE 10240000',
  'XCLIENT NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN DESTADDR DESTPORT',
  'XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT',
  'ENHANCEDSTATUSCODES',
  '8BITMIME',
  'DSN',
  'SMTPUTF8',
  'CHUNKING',
];

describe('parseEhloReply', () => {
  it('reads everything Postfix announces', () => {
    const caps = parseEhloReply(POSTFIX);
    expect(caps).toMatchObject({
      pipelining: true,
      size: 10_240_000,
      eightBitMime: true,
      smtpUtf8: true,
      dsn: true,
      enhancedStatusCodes: true,
      chunking: true,
    });
    expect([...caps.xforward].sort()).toEqual(['ADDR', 'HELO', 'IDENT', 'NAME', 'PORT', 'PROTO', 'SOURCE']);
  });

  it('matches keywords case-insensitively and upper-cases XFORWARD names', () => {
    const caps = parseEhloReply(['host', 'pipelining', 'Dsn', 'xforward name addr']);
    expect(caps.pipelining).toBe(true);
    expect(caps.dsn).toBe(true);
    expect([...caps.xforward]).toEqual(['NAME', 'ADDR']);
  });

  it('never reads the first line (the server name) as a keyword', () => {
    expect(parseEhloReply(['PIPELINING']).pipelining).toBe(false);
  });

  it('accepts lines with their 250- prefix', () => {
    const caps = parseEhloReply(['250-host', '250-8BITMIME', '250 SIZE 1000']);
    expect(caps.eightBitMime).toBe(true);
    expect(caps.size).toBe(1000);
  });

  it('distinguishes SIZE without a limit from no SIZE', () => {
    expect(parseEhloReply(['h', 'SIZE']).size).toBe(0);
    expect(parseEhloReply(['h', 'SIZE 0']).size).toBe(0);
    expect(parseEhloReply(['h', 'SIZE lots']).size).toBe(0);
    expect(parseEhloReply(['h']).size).toBeNull();
  });

  it('reads the AUTH mechanisms, upper case, in either spelling', () => {
    expect([...parseEhloReply(['h', 'AUTH PLAIN login SCRAM-SHA-256']).auth]).toEqual(['PLAIN', 'LOGIN', 'SCRAM-SHA-256']);
    expect([...parseEhloReply(['h', 'AUTH=LOGIN PLAIN']).auth]).toEqual(['LOGIN', 'PLAIN']);
    expect(parseEhloReply(['h', 'PIPELINING']).auth.size).toBe(0);
  });

  it('gives an empty XFORWARD set when XFORWARD is not announced', () => {
    expect(parseEhloReply(['h', 'PIPELINING']).xforward.size).toBe(0);
  });

  it('ignores unknown keywords and blank lines', () => {
    expect(parseEhloReply(['h', '', 'X-EXPERIMENT', 'ETRN', 'VRFY'])).toEqual(NO_CAPABILITIES);
  });
});
