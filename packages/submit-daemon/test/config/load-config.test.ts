import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load-config.ts';

describe('mailsubmit.conf', () => {
  it('fills every default from an empty file', () => {
    const config = parseConfig('', 'test.conf');
    expect(config.socket).toEqual({ path: '/run/mailsubmit/mailsubmit.sock', mode: 0o660, group: 'mailsubmit' });
    expect(config.installMode).toBe('setgid');
    expect(config.downstream.target).toEqual({ kind: 'unix', path: '/var/spool/postfix/mailsubmit/smtpd' });
    expect(config.downstream.transport).toBe('smtp');
    expect(config.limits.maxLineOctets).toBe(998);
    expect(config.timeouts.input).toBe(600_000);
  });

  it('reads every kind of value', () => {
    const config = parseConfig(
      [
        '[daemon]',
        'socket = "/run/x/s.sock"',
        'install_mode = "open"',
        'socket_mode = "0666"',
        '[downstream]',
        'transport = "lmtp"',
        'target = "unix:/var/spool/postfix/public/lmtp"',
        'pool_size = 0',
        'xforward = false',
        '[limits]',
        'max_message_size = 1048576',
        '[timeouts]',
        'input_idle = 5',
      ].join('\n'),
    );
    expect(config.installMode).toBe('open');
    expect(config.socket.mode).toBe(0o666);
    expect(config.downstream.target).toEqual({ kind: 'unix', path: '/var/spool/postfix/public/lmtp' });
    expect(config.downstream.poolSize).toBe(0);
    expect(config.downstream.xforward).toBe(false);
    expect(config.limits.maxMessageOctets).toBe(1_048_576);
    expect(config.timeouts.inputIdle).toBe(5_000);
    expect(parseConfig('[downstream]\ntarget = "[::1]:25"').downstream.target).toEqual({ kind: 'tcp', host: '::1', port: 25 });
  });

  it.each([
    ['[daemon]\nsokcet = "/x"', /^test\.conf:2: daemon\.sokcet: unknown key/],
    ['[deamon]\n', /^test\.conf:1: deamon: unknown table/],
    ['[downstream]\ntarget = "localhost"', /downstream\.target: expected host:port/],
    ['[downstream]\ntarget = "127.0.0.1:0"', /downstream\.target/],
    ['[downstream]\ntransport = "uucp"', /downstream\.transport: expected one of smtp, lmtp, sendmail/],
    ['[limits]\nmax_message_size = -1', /limits\.max_message_size: expected a whole number/],
    ['[limits]\nmax_line_length = 1.5', /limits\.max_line_length: expected a whole number/],
    ['[timeouts]\ninput = "10"', /timeouts\.input: expected a whole number/],
    ['[daemon]\nsocket = "relative.sock"', /daemon\.socket: expected an absolute path/],
    ['[daemon]\nsocket_mode = "0666"', /daemon\.socket_mode: gives others access/],
    ['[daemon]\nsocket_mode = "rw"', /daemon\.socket_mode: expected an octal mode/],
    ['[daemon\n', /^test\.conf:1: not valid TOML: /],
  ])('refuses %j with a message naming the key', (text, message) => {
    expect(() => parseConfig(text, 'test.conf')).toThrow(ConfigError);
    expect(() => parseConfig(text, 'test.conf')).toThrow(message);
  });
});
