/** Where in mailsubmit.conf an error is, and what the administrator is told to do. */
import { describe, expect, it } from 'vitest';
import { lineOfKey, nearestName } from '../../src/config/config-error-text.ts';
import { ConfigError, parseConfig } from '../../src/config/load-config.ts';

function messageOf(text: string): string {
  try {
    parseConfig(text, 'm.conf');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('parsed');
}

describe('lineOfKey', () => {
  const text = ['# top', '[daemon]', 'socket = "/a"  # the socket', '', '[ "limits" ]', '  max_recipients=3', "'max_line_length' = 100", '[downstream]', 'limits.x = 1'].join('\n');

  it('finds a key under its table header, bare, quoted or indented', () => {
    expect(lineOfKey(text, 'daemon', 'socket')).toBe(3);
    expect(lineOfKey(text, 'limits', 'max_recipients')).toBe(6);
    expect(lineOfKey(text, 'limits', 'max_line_length')).toBe(7);
  });

  it('finds a table by its header, and a dotted key by its full name', () => {
    expect(lineOfKey(text, 'limits', null)).toBe(5);
    expect(lineOfKey(text, 'downstream', 'limits')).toBe(9);
    expect(lineOfKey('daemon.socket = "/x"', 'daemon', 'socket')).toBe(1);
  });

  it('gives null for a key set nowhere (a default)', () => {
    expect(lineOfKey(text, 'daemon', 'log_level')).toBeNull();
    expect(lineOfKey(text, 'timeouts', null)).toBeNull();
  });
});

describe('nearestName', () => {
  it('names the likely typo target, and nothing when no name is close', () => {
    expect(nearestName('sokcet', ['socket', 'socket_mode'])).toBe('socket');
    expect(nearestName('max_recipient', ['max_recipients', 'max_envelope_size'])).toBe('max_recipients');
    expect(nearestName('colour', ['socket', 'socket_mode'])).toBeNull();
  });
});

describe('ConfigError messages from parseConfig', () => {
  it('are FILE:LINE: KEY: problem; fix for each kind of mistake', () => {
    expect(messageOf('[daemon]\n\nlog_level = "loud"')).toBe('m.conf:3: daemon.log_level: expected one of fatal, error, warn, info, debug, trace, got "loud"');
    expect(messageOf('[limits]\nmax_recipients = "10"')).toBe('m.conf:2: limits.max_recipients: expected a whole number from 1 to 100000, got "10"; write it without quotes');
    expect(messageOf('[daemon]\nsocket_mode = "0666"')).toBe('m.conf:2: daemon.socket_mode: gives others access (666): with install_mode = "setgid" only the group may connect; use "0660"');
    expect(messageOf('[timeouts]\ninput = 1\ninput = 2')).toBe('m.conf:3: not valid TOML: trying to redefine an already defined table or value (column 1) in "input = 2"; each table and key may appear once: remove or merge the repeated one');
    expect(messageOf('[downstream]\ntarget = "unix:/x')).toMatch(/^m\.conf:2: not valid TOML: [^;]*string[^;]* in "target = \\"unix:\/x"; close the string on the same line/);
  });

  it('leaves the line out when the mistake is on none', () => {
    // A key set nowhere cannot be wrong; a table given as a value has a line, found by its dotted name.
    expect(messageOf('daemon = 5')).toBe('m.conf:1: daemon: must be a table ([daemon])');
  });
});
