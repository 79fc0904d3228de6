/**
 * The Prometheus endpoint of a real mailsubmitd (the built bundle as a child
 * process, the set-gid helper in front, a recording SMTP sink as the MTA):
 * what a scrape shows after real submissions, the in-flight gauge while a
 * slow writer holds a submission open, and the configuration's refusals.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../../test/support/free-port.ts';
import { DAEMON_BUNDLE, MailsubmitUnderTest } from '../../../../test/support/mailsubmit-under-test.ts';
import { RecordingSink } from '../../../../test/support/recording-sink.ts';
import { ensureUser, removeAll, type TestUser } from '../../../../test/support/test-accounts.ts';
import { waitForStatus } from '../control/ask-control.ts';

function submission(body: string): string {
  return `sender: <sender@example.org>\nrecipient: <rcpt@example.org>\n\nSubject: metrics test\n\n${body}`;
}

/** The value of one sample, e.g. sample(text, 'mailsubmit_submissions_total{status="ok"}'); null when absent. */
function sample(text: string, series: string): number | null {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? null : Number(line.slice(series.length + 1));
}

describe('mailsubmitd metrics endpoint', () => {
  const sink = new RecordingSink();
  let ms: MailsubmitUnderTest;
  let user: TestUser;
  let url: string;

  async function scrape(): Promise<string> {
    const response = await fetch(url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return response.text();
  }

  beforeAll(async () => {
    const port = await freePort();
    url = `http://127.0.0.1:${port}/metrics`;
    ms = await MailsubmitUnderTest.start({ downstreamPort: await sink.listen(), group: 'mstmetricg', daemon: `metrics_listen = "127.0.0.1:${port}"` });
    user = ensureUser('mstmetric');
    ms.setAuthorizations([user.name]);
  });

  afterAll(async () => {
    await ms?.stop();
    await sink.close();
    removeAll();
  });

  it('starts every outcome and every downstream error at zero', async () => {
    const text = await scrape();
    expect(sample(text, 'mailsubmit_submissions_total{status="ok"}')).toBe(0);
    expect(sample(text, 'mailsubmit_submissions_total{status="internal"}')).toBe(0);
    expect(sample(text, 'mailsubmit_downstream_errors_total{outcome="mta-unreachable"}')).toBe(0);
    expect(sample(text, 'mailsubmit_in_flight')).toBe(0);
    expect(sample(text, 'mailsubmit_submission_duration_seconds_count')).toBe(0);
    expect(text).toContain('# TYPE mailsubmit_message_bytes histogram');
    expect(text).toContain('# TYPE process_resident_memory_bytes gauge');
  });

  it('counts submissions by status, their durations and sizes, and downstream errors', async () => {
    expect((await ms.submit(user, submission('hello\n'))).code).toBe(0);
    expect((await ms.submit(user, submission(`${'bigger\n'.repeat(1000)}`))).code).toBe(0);
    expect((await ms.submit(user, 'sender: <a@example.org>\nrecipient: <>\n\nSubject: x\n\n')).code).toBe(65);
    sink.replies = { 'data-end': '451 4.3.0 try again later' };
    try {
      expect((await ms.submit(user, submission('refused for now\n'))).code).toBe(75);
    } finally {
      sink.replies = {};
    }
    await ms.waitForSubmission((line) => line.status === 'mta-tempfail');
    const text = await scrape();
    expect(sample(text, 'mailsubmit_submissions_total{status="ok"}')).toBe(2);
    expect(sample(text, 'mailsubmit_submissions_total{status="recipient-syntax"}')).toBe(1);
    expect(sample(text, 'mailsubmit_submissions_total{status="mta-tempfail"}')).toBe(1);
    expect(sample(text, 'mailsubmit_downstream_errors_total{outcome="mta-tempfail"}')).toBe(1);
    expect(sample(text, 'mailsubmit_downstream_errors_total{outcome="mta-unreachable"}')).toBe(0);
    expect(sample(text, 'mailsubmit_submission_duration_seconds_count')).toBe(4);
    // Sizes are those of the messages the daemon read to the end, as its log reports them.
    const sizes = ms.submissions().map((line) => line.size).filter((size): size is number => typeof size === 'number');
    expect(sizes.length).toBeGreaterThanOrEqual(2);
    expect(sample(text, 'mailsubmit_message_bytes_count')).toBe(sizes.length);
    expect(sample(text, 'mailsubmit_message_bytes_sum')).toBe(sizes.reduce((a, b) => a + b, 0));
    expect(sample(text, 'mailsubmit_message_bytes_bucket{le="1024"}')).toBe(sizes.filter((s) => s <= 1024).length);
  });

  it('shows a submission in flight while its writer is still writing', async () => {
    const open = ms.startSubmission(user);
    open.write(submission('part one\n'));
    await waitForStatus(ms.controlSocketPath, (s) => s.in_flight === 1);
    expect(sample(await scrape(), 'mailsubmit_in_flight')).toBe(1);
    expect((await open.end('part two\n')).code).toBe(0);
    await waitForStatus(ms.controlSocketPath, (s) => s.in_flight === 0);
    expect(sample(await scrape(), 'mailsubmit_in_flight')).toBe(0);
  });

  it('serves nothing but /metrics', async () => {
    const other = await fetch(url.replace('/metrics', '/'));
    expect(other.status).toBe(404);
    await other.text();
    const post = await fetch(url, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    await post.text();
  });
});

describe('daemon.metrics_listen at start', () => {
  const dirs: string[] = [];
  let dir: string;

  /** A configuration that needs no group or helper: install_mode open, everything (the local queue too) in `dir`. */
  function configWith(metricsListen: string): string {
    dir = mkdtempSync('/tmp/mailsubmit-metrics-');
    dirs.push(dir);
    writeFileSync(join(dir, 'authorized'), '', { mode: 0o644 });
    mkdirSync(join(dir, 'spool'), { mode: 0o700 });
    mkdirSync(join(dir, 'queue'), { mode: 0o700 });
    const path = join(dir, 'mailsubmit.conf');
    writeFileSync(
      path,
      [
        '[daemon]',
        `socket = "${join(dir, 'submit.sock')}"`,
        'install_mode = "open"',
        'socket_mode = "0666"',
        `authorization_list = "${join(dir, 'authorized')}"`,
        `control_socket = "${join(dir, 'control.sock')}"`,
        `spool_directory = "${join(dir, 'spool')}"`,
        `metrics_listen = "${metricsListen}"`,
        // The daemon opens its local queue before it listens: its own, not the installed one.
        '[queue]',
        `directory = "${join(dir, 'queue')}"`,
        '',
      ].join('\n'),
      { mode: 0o644 },
    );
    return path;
  }

  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('refuses an address that is not loopback, before listening on anything (78)', () => {
    const result = spawnSync(process.execPath, [DAEMON_BUNDLE, '-c', configWith('0.0.0.0:9465')], { encoding: 'utf8', timeout: 20_000 });
    expect(result.stderr).toMatch(/daemon\.metrics_listen: 0\.0\.0\.0 is not a loopback address/);
    expect(result.status).toBe(78);
  });

  it('stops with 78 and the address when the port is taken, leaving no socket behind', async () => {
    const squatter = createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', () => resolve()));
    try {
      const config = configWith(`127.0.0.1:${port}`);
      const result = spawnSync(process.execPath, [DAEMON_BUNDLE, '-c', config], { encoding: 'utf8', timeout: 20_000 });
      expect(result.stderr).toContain(`daemon.metrics_listen: cannot listen on 127.0.0.1:${port}: EADDRINUSE`);
      expect(result.status).toBe(78);
      expect(readdirSync(dir).sort()).toEqual(['authorized', 'mailsubmit.conf', 'queue', 'spool']);
    } finally {
      await new Promise<void>((resolve) => squatter.close(() => resolve()));
    }
  });
});
