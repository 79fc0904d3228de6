/** What a reload applies and what it leaves for a restart; the keys of the control socket and the metrics endpoint. */
import { describe, expect, it } from 'vitest';
import { changedKeys, reloadableMerge, RESTART_KEYS } from '../../src/config/config-changes.ts';
import { CONFIG_KEYS } from '../../src/config/config-keys.ts';
import { ConfigError, parseConfig } from '../../src/config/load-config.ts';

const BASE = parseConfig('', 'base.conf');

/** Every key of the file set to a value other than its default. */
const EVERYTHING_CHANGED = parseConfig(
  [
    '[daemon]',
    'socket = "/run/other/s.sock"',
    'socket_mode = "0666"',
    'socket_group = "other"',
    'install_mode = "open"',
    'authorization_list = "/etc/other/authorized"',
    'control_socket = "/run/other/control.sock"',
    'metrics_listen = "127.0.0.1:9465"',
    'log_level = "debug"',
    'spool_directory = "/var/spool/other"',
    // Two tables: the selectors can change only where another downstream takes every submission.
    '[[downstream]]',
    'name = "other"',
    'transport = "lmtp"',
    'target = "127.0.0.1:24"',
    'helo_name = "other.example"',
    'sendmail_path = "/opt/sendmail"',
    'sendmail_config_directory = "/etc/postfix-other"',
    'pool_size = 1',
    'xforward = false',
    'priority = 1',
    'weight = 2',
    'doors = ["native"]',
    'callers = ["root"]',
    'sender_domains = ["example.org"]',
    'probe_interval = 7',
    'connect_timeout = 9',
    'command_timeout = 9',
    'tls = "verify"',
    'tls_ca_file = "/etc/mailsubmit/ca.pem"',
    `tls_fingerprints = ["${'ab'.repeat(32)}"]`,
    'tls_min_version = "TLSv1.3"',
    'tls_server_name = "mx.example"',
    'auth_username = "submitter"',
    'auth_secret_file = "/etc/mailsubmit/secret"',
    'auth_mechanisms = ["PLAIN"]',
    'auth_without_tls = true',
    '[[downstream]]',
    '[queue]',
    'directory = "/var/spool/other-queue"',
    'sendmail_door = false',
    'native_door = true',
    'qmail_queue_door = true',
    'minimal_backoff_time = 10',
    'maximal_backoff_time = 20',
    'maximal_queue_lifetime = 30',
    'delay_warning_time = 5',
    'probe_interval = 3',
    'max_deliveries = 7',
    'max_messages = 9',
    'max_size = 10',
    'max_size_per_uid = 11',
    'min_free = 12',
    '[limits]',
    'max_message_size = 1000',
    'max_line_length = 100',
    'strict_message_syntax = true',
    'max_header_size = 2000',
    'max_recipients = 5',
    'max_envelope_size = 5000',
    'max_connections = 5',
    'max_per_uid = 2',
    'max_file_reads = 1',
    'spool_quota_per_uid = 1',
    'spool_quota_total = 2',
    'spool_min_free = 3',
    '[timeouts]',
    'input = 1',
    'input_idle = 2',
    'connect = 3',
    'command = 4',
    'data_block = 5',
    'data_end = 6',
    'sendmail = 7',
    'shutdown = 8',
  ].join('\n'),
  'next.conf',
);

describe('reload: changed keys', () => {
  it('finds nothing between a configuration and itself', () => {
    expect(changedKeys(BASE, parseConfig('', 'again.conf'))).toEqual([]);
  });

  it('names every key of the file when every value changed, each with where it takes effect', () => {
    const changes = changedKeys(BASE, EVERYTHING_CHANGED);
    expect(changes.map((c) => c.key)).toEqual(CONFIG_KEYS.map((k) => k.key));
    expect(changes.filter((c) => c.effect === 'restart').map((c) => c.key)).toEqual([...RESTART_KEYS]);
    expect(changes.find((c) => c.key === 'limits.max_message_size')?.effect).toBe('next-submission');
    expect(changes.find((c) => c.key === 'timeouts.command')?.effect).toBe('downstream');
    expect(changes.find((c) => c.key === 'downstream.target')?.effect).toBe('downstream');
    expect(changes.find((c) => c.key === 'daemon.log_level')?.effect).toBe('log');
  });

  it('keeps the sockets, the install mode, the list path and the file-read cap of the running daemon', () => {
    const merged = reloadableMerge(BASE, EVERYTHING_CHANGED);
    expect(changedKeys(BASE, merged).filter((c) => c.effect === 'restart')).toEqual([]);
    expect(merged.source).toBe('base.conf');
    expect(merged.socket).toEqual(BASE.socket);
    expect(merged.control.path).toBe('/run/mailsubmit/control.sock');
    expect(merged.metrics).toBeNull();
    expect(merged.limits.maxFileReads).toBe(BASE.limits.maxFileReads);
  });

  it('applies everything else from the new file', () => {
    const merged = reloadableMerge(BASE, EVERYTHING_CHANGED);
    const applied = changedKeys(merged, EVERYTHING_CHANGED).map((c) => c.key);
    expect(applied).toEqual([...RESTART_KEYS]);
    expect(merged.limits.maxMessageOctets).toBe(1000);
    expect(merged.timeouts.command).toBe(4000);
    expect(merged.log.level).toBe('debug');
    expect(merged.downstreams[0]?.transport).toBe('lmtp');
  });
});

describe('daemon.control_socket and daemon.metrics_listen', () => {
  it('default to /run/mailsubmit/control.sock and no metrics endpoint', () => {
    expect(BASE.control).toEqual({ path: '/run/mailsubmit/control.sock' });
    expect(BASE.metrics).toBeNull();
  });

  it.each([
    ['127.0.0.1:9465', { host: '127.0.0.1', port: 9465 }],
    ['127.10.0.2:80', { host: '127.10.0.2', port: 80 }],
    ['[::1]:9465', { host: '::1', port: 9465 }],
  ])('accepts the loopback address %s', (value, expected) => {
    expect(parseConfig(`[daemon]\nmetrics_listen = "${value}"`).metrics).toEqual(expected);
  });

  it.each([
    ['0.0.0.0:9465', /daemon\.metrics_listen: 0\.0\.0\.0 is not a loopback address/],
    ['192.0.2.1:9465', /daemon\.metrics_listen: 192\.0\.2\.1 is not a loopback address/],
    ['[::]:9465', /daemon\.metrics_listen: :: is not a loopback address/],
    ['localhost:9465', /daemon\.metrics_listen: expected address:port/],
    ['127.0.0.1', /daemon\.metrics_listen: expected address:port/],
    ['127.0.0.1:0', /daemon\.metrics_listen: expected address:port/],
    ['127.0.0.256:9465', /daemon\.metrics_listen: 127\.0\.0\.256 is not a loopback address/],
  ])('refuses %j with a message naming the key', (value, message) => {
    expect(() => parseConfig(`[daemon]\nmetrics_listen = "${value}"`, 'test.conf')).toThrow(ConfigError);
    expect(() => parseConfig(`[daemon]\nmetrics_listen = "${value}"`, 'test.conf')).toThrow(message);
  });

  it('refuses a relative control socket path', () => {
    expect(() => parseConfig('[daemon]\ncontrol_socket = "control.sock"')).toThrow(/daemon\.control_socket: expected an absolute path/);
  });
});
