import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load-config.ts';

describe('mailsubmit.conf', () => {
  it('fills every default from an empty file', () => {
    const config = parseConfig('', 'test.conf');
    expect(config.socket).toEqual({ path: '/run/mailsubmit/mailsubmit.sock', mode: 0o660, group: 'mailsubmit' });
    expect(config.installMode).toBe('setgid');
    expect(config.downstreams[0]?.target).toEqual({ kind: 'unix', path: '/var/spool/postfix/mailsubmit/smtpd' });
    expect(config.downstreams[0]?.transport).toBe('smtp');
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
    expect(config.downstreams[0]?.target).toEqual({ kind: 'unix', path: '/var/spool/postfix/public/lmtp' });
    expect(config.downstreams[0]?.poolSize).toBe(0);
    expect(config.downstreams[0]?.xforward).toBe(false);
    expect(config.limits.maxMessageOctets).toBe(1_048_576);
    expect(config.timeouts.inputIdle).toBe(5_000);
    expect(parseConfig('[downstream]\ntarget = "[::1]:25"').downstreams[0]?.target).toEqual({ kind: 'tcp', host: '::1', port: 25 });
    expect(parseConfig('[downstream]\ntarget = "mx:Example.NET"').downstreams[0]?.target).toEqual({ kind: 'mx', domain: 'example.net', port: 25 });
    expect(parseConfig('[downstream]\ntarget = "mx:example.net:587"').downstreams[0]?.target).toEqual({ kind: 'mx', domain: 'example.net', port: 587 });
  });

  it.each([
    ['[daemon]\nsokcet = "/x"', /^test\.conf:2: daemon\.sokcet: unknown key/],
    ['[deamon]\n', /^test\.conf:1: deamon: unknown table/],
    ['[downstream]\ntarget = "localhost"', /downstream\.target: expected host:port/],
    ['[downstream]\ntarget = "127.0.0.1:0"', /downstream\.target/],
    ['[downstream]\ntarget = "mx:"', /downstream\.target: expected mx:domain or mx:domain:port/],
    ['[downstream]\ntarget = "mx:example.net:0"', /downstream\.target: expected mx:domain or mx:domain:port/],
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

describe('several downstreams', () => {
  const TWO = [
    '[[downstream]]',
    'name = "local"',
    'priority = 1',
    '[[downstream]]',
    'target = "relay.example.net:587"',
    'priority = 2',
    'tls = "verify"',
    'tls_fingerprints = ["AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"]',
    'auth_username = "mailsubmit"',
    'auth_secret_file = "/etc/mailsubmit/relay.secret"',
    'sender_domains = ["Example.ORG"]',
  ].join('\n');

  it('reads each [[downstream]] table with every key\'s default, in the file\'s order', () => {
    const [local, relay] = parseConfig(TWO, 'test.conf').downstreams;
    expect(local).toMatchObject({ name: 'local', priority: 1, weight: 1, tls: 'none', target: { kind: 'unix', path: '/var/spool/postfix/mailsubmit/smtpd' } });
    expect(relay).toMatchObject({ name: null, priority: 2, tls: 'verify', authUsername: 'mailsubmit', senderDomains: ['example.org'], authMechanisms: ['SCRAM-SHA-256', 'PLAIN', 'LOGIN'] });
    expect(relay?.tlsFingerprints).toEqual(['abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789']);
    expect(relay?.target).toEqual({ kind: 'tcp', host: 'relay.example.net', port: 587 });
  });

  it.each([
    ['[[downstream]]\nname = "a"\n[[downstream]]\nname = "a"', /^test\.conf:4: downstream\.name: "a" names two downstreams \(the first and the second/],
    ['[[downstream]]\ntarget = "127.0.0.1:25"\n[[downstream]]\ntarget = "127.0.0.1:25"', /test\.conf: downstream\.name: "127\.0\.0\.1:25" names two downstreams/],
    ['[[downstream]]\ndoors = ["native"]', /downstream: every downstream has a selector .*leave one without/],
    ['[[downstream]]\n[[downstream]]\ntls = "always"', /^test\.conf:3: downstream\.tls: expected one of none, may, encrypt, verify/],
    ['[downstream]\nauth_username = "u"', /downstream\.auth_username: auth_username and auth_secret_file go together/],
    ['[downstream]\ntransport = "sendmail"\nauth_username = "u"\nauth_secret_file = "/etc/s"', /downstream\.auth_username: SMTP AUTH needs transport = "smtp" or "lmtp"/],
    ['[downstream]\ntls_fingerprints = ["abc"]', /downstream\.tls_fingerprints: item 1: expected a SHA-256 fingerprint/],
    ['[downstream]\ndoors = "native"', /downstream\.doors: expected an array/],
    ['[downstream]\ndoors = ["smtp"]', /downstream\.doors: item 1: expected one of native, sendmail, qmail-queue/],
    ['[[downstream]]\n[[downstream]]\nweight = 0', /^test\.conf:3: downstream\.weight: expected a whole number from 1/],
  ])('refuses %j, naming the key and its line', (text, message) => {
    expect(() => parseConfig(text, 'test.conf')).toThrow(message);
  });
});
