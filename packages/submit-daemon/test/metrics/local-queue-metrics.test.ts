/**
 * The local queue on the metrics endpoint of a real mailsubmitd (the built
 * bundle, the set-gid helper in front, a recording SMTP sink as the MTA
 * that answers what each test sets): a message the MTA puts off waits in
 * the queue and shows in the gauges; an attempt from the queue that fails
 * again is a retry, one that succeeds a delivery; a message refused later
 * is a bounce, and a null-sender message refused later (or a notice about
 * one) is dropped. Each figure is checked against the daemon's own log
 * lines and its status reply.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../../test/support/free-port.ts';
import { MailsubmitUnderTest } from '../../../../test/support/mailsubmit-under-test.ts';
import { RecordingSink } from '../../../../test/support/recording-sink.ts';
import { until } from '../../../../test/support/until.ts';
import { ensureUser, removeAll, type TestUser } from '../../../../test/support/test-accounts.ts';
import { ask, status } from '../control/ask-control.ts';

const SERIES = [
  'mailsubmit_local_queue_messages',
  'mailsubmit_local_queue_bytes',
  'mailsubmit_local_queue_oldest_age_seconds',
  'mailsubmit_local_queue_deliveries_total',
  'mailsubmit_local_queue_retries_total',
  'mailsubmit_local_queue_bounces_total',
  'mailsubmit_local_queue_delay_warnings_total',
  'mailsubmit_local_queue_dropped_total',
] as const;

type Figures = Record<(typeof SERIES)[number], number>;

function submission(sender: string, subject: string): string {
  return `sender: <${sender}>\nrecipient: <rcpt@example.org>\n\nSubject: ${subject}\n\nqueued for a while\n`;
}

describe('the local queue on the metrics endpoint', () => {
  const sink = new RecordingSink();
  let ms: MailsubmitUnderTest;
  let user: TestUser;
  let url: string;

  /** Every local-queue series of one scrape; a series that is missing fails the test. */
  async function scrape(): Promise<Figures> {
    const response = await fetch(url);
    expect(response.status).toBe(200);
    const lines = (await response.text()).split('\n');
    const figures = {} as Figures;
    for (const series of SERIES) {
      const line = lines.find((l) => l.startsWith(`${series} `));
      expect(line, series).toBeDefined();
      figures[series] = Number((line as string).slice(series.length + 1));
      const type = series.endsWith('_total') ? 'counter' : 'gauge';
      expect(lines, series).toContain(`# TYPE ${series} ${type}`);
    }
    return figures;
  }

  /** Log lines of the queue runner whose message starts with `prefix`. */
  function queueLines(prefix: string): Record<string, unknown>[] {
    return ms.logLines.filter((line) => typeof line.msg === 'string' && line.msg.startsWith(prefix));
  }

  async function flush(): Promise<void> {
    const reply = await ask(ms.controlSocketPath, { command: 'queue-flush' });
    expect(reply.ok).toBe(true);
  }

  beforeAll(async () => {
    const port = await freePort();
    url = `http://127.0.0.1:${port}/metrics`;
    ms = await MailsubmitUnderTest.start({
      downstreamPort: await sink.listen(),
      group: 'mstqmetricg',
      daemon: `metrics_listen = "127.0.0.1:${port}"`,
      // Attempts from the queue happen when the test flushes it, not on their own.
      queue: 'probe_interval = 3600\nminimal_backoff_time = 86400\nmaximal_backoff_time = 86400',
    });
    user = ensureUser('mstqmetric');
    ms.setAuthorizations([`${user.name} queue`]);
  });

  afterAll(async () => {
    await ms?.stop();
    await sink.close();
    removeAll();
  });

  it('starts with an empty queue and every counter at zero', async () => {
    expect(await scrape()).toEqual(Object.fromEntries(SERIES.map((series) => [series, 0])));
  });

  it('shows a message the MTA put off: one message, its octets, its age', async () => {
    sink.replies = { 'data-end': '451 4.3.0 try again later' };
    const queued = await ms.submit(user, submission('sender@example.org', 'put off'));
    expect(queued.code).toBe(0);
    await ms.waitForSubmission((line) => line.status === 'queued-locally');
    const figures = await scrape();
    const queue = (await status(ms.controlSocketPath)).local_queue;
    expect(queue).not.toBeNull();
    expect(figures.mailsubmit_local_queue_messages).toBe(1);
    expect(queue?.messages).toBe(1);
    expect(figures.mailsubmit_local_queue_bytes).toBeGreaterThan(0);
    expect(figures.mailsubmit_local_queue_bytes).toBe(queue?.octets);
    expect(figures.mailsubmit_local_queue_oldest_age_seconds).toBeGreaterThanOrEqual(0);
    // The caller's own attempt is not a retry from the queue.
    expect(figures.mailsubmit_local_queue_retries_total).toBe(0);
    expect(figures.mailsubmit_local_queue_deliveries_total).toBe(0);
  });

  it('counts an attempt from the queue that fails again as a retry; the message stays', async () => {
    // Queueing logs the caller's own attempt as deferred; the retry is the next such line.
    const deferrals = queueLines('local queue: deferred').length;
    expect(deferrals).toBe(1);
    await flush();
    await until(() => queueLines('local queue: deferred').length === deferrals + 1, 'the retry\'s log line');
    const figures = await scrape();
    expect(figures.mailsubmit_local_queue_retries_total).toBe(1);
    expect(figures.mailsubmit_local_queue_messages).toBe(1);
  });

  it('counts the delivery when the MTA takes it; the queue is empty again', async () => {
    sink.replies = {};
    await flush();
    await until(() => queueLines('local queue: delivered').length === 1, 'the delivery\'s log line');
    expect(sink.messages.filter((m) => m.data.includes('Subject: put off\r\n'))).toHaveLength(1);
    const figures = await scrape();
    expect(figures.mailsubmit_local_queue_deliveries_total).toBe(1);
    expect(figures.mailsubmit_local_queue_messages).toBe(0);
    expect(figures.mailsubmit_local_queue_bytes).toBe(0);
    expect(figures.mailsubmit_local_queue_oldest_age_seconds).toBe(0);
    expect(figures.mailsubmit_local_queue_retries_total).toBe(1);
  });

  it('counts a notice for a message refused later as a bounce, and null-sender mail refused later as dropped', async () => {
    sink.replies = { 'data-end': '451 4.3.0 try again later' };
    expect((await ms.submit(user, submission('sender@example.org', 'refused later'))).code).toBe(0);
    expect((await ms.submit(user, submission('', 'null sender refused later'))).code).toBe(0);
    await until(() => ms.submissions().filter((line) => line.status === 'queued-locally').length === 3, 'both submissions queued');
    expect((await scrape()).mailsubmit_local_queue_messages).toBe(2);
    sink.replies = { 'data-end': '554 5.7.1 refused for good' };
    await flush();
    // Three removals: the two messages, then the notice about the first (null sender, refused as well).
    await until(() => queueLines('local queue: removed').length === 3, 'three removals');
    const noticed = queueLines('local queue: removed').filter((line) => line.notice_queue_id !== undefined);
    expect(noticed).toHaveLength(1);
    const figures = await scrape();
    expect(figures.mailsubmit_local_queue_bounces_total).toBe(1);
    expect(figures.mailsubmit_local_queue_dropped_total).toBe(2);
    expect(figures.mailsubmit_local_queue_delay_warnings_total).toBe(0);
    expect(figures.mailsubmit_local_queue_messages).toBe(0);
    expect(figures.mailsubmit_local_queue_deliveries_total).toBe(1);
    sink.replies = {};
  });
});
