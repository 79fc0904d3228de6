/**
 * Each downstream on the metrics endpoint of a real mailsubmitd: with two
 * configured, one that cannot be reached (priority 1) and a recording SMTP
 * sink (priority 2), a submission moves on to the sink; the first shows as
 * unhealthy with its failure counted by outcome, the second as healthy with
 * the delivery. The counts survive a reload that rebuilds the downstreams.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../../test/support/free-port.ts';
import { MailsubmitUnderTest } from '../../../../test/support/mailsubmit-under-test.ts';
import { RecordingSink } from '../../../../test/support/recording-sink.ts';
import { ensureUser, removeAll, type TestUser } from '../../../../test/support/test-accounts.ts';
import { ask } from '../control/ask-control.ts';

describe('each downstream on the metrics endpoint', () => {
  const sink = new RecordingSink();
  let ms: MailsubmitUnderTest;
  let user: TestUser;
  let url: string;
  let sinkPort: number;

  /** The value of one series with its labels, as the exposition writes it; undefined when absent. */
  async function sample(series: string): Promise<number | undefined> {
    const response = await fetch(url);
    expect(response.status).toBe(200);
    const line = (await response.text()).split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  }

  beforeAll(async () => {
    const port = await freePort();
    url = `http://127.0.0.1:${port}/metrics`;
    sinkPort = await sink.listen();
    ms = await MailsubmitUnderTest.start({ downstreamPort: sinkPort, group: 'mstdsmetricg', daemon: `metrics_listen = "127.0.0.1:${port}"` });
    user = ensureUser('mstdsmetric');
    ms.setAuthorizations([user.name]);
    const closedPort = await freePort();
    const text = readFileSync(ms.configPath, 'utf8');
    const single = `[downstream]\ntarget = "127.0.0.1:${sinkPort}"`;
    expect(text).toContain(single);
    writeFileSync(
      ms.configPath,
      text.replace(single, `[[downstream]]\nname = "gone"\ntarget = "127.0.0.1:${closedPort}"\npriority = 1\nprobe_interval = 3600\n[[downstream]]\nname = "sink"\ntarget = "127.0.0.1:${sinkPort}"\npriority = 2`),
      { mode: 0o644 },
    );
    expect((await ask(ms.controlSocketPath, { command: 'reload' })).ok).toBe(true);
  });

  afterAll(async () => {
    await ms?.stop();
    await sink.close();
    removeAll();
  });

  it('starts with both healthy and nothing counted', async () => {
    expect(await sample('mailsubmit_downstream_healthy{downstream="gone"}')).toBe(1);
    expect(await sample('mailsubmit_downstream_healthy{downstream="sink"}')).toBe(1);
    expect(await sample('mailsubmit_downstream_deliveries_total{downstream="sink"}')).toBe(0);
    expect(await sample('mailsubmit_downstream_failures_total{downstream="gone",outcome="mta-unreachable"}')).toBeUndefined();
  });

  it('counts the failure where the submission was first tried and the delivery where it moved on', async () => {
    const result = await ms.submit(user, 'sender: <a@example.org>\nrecipient: <b@example.org>\n\nSubject: moved on\n\nhello\n');
    expect(result.code).toBe(0);
    const line = await ms.waitForSubmission((l) => l.status === 'ok');
    expect(line.downstream).toBe('sink');
    expect(await sample('mailsubmit_downstream_healthy{downstream="gone"}')).toBe(0);
    expect(await sample('mailsubmit_downstream_healthy{downstream="sink"}')).toBe(1);
    expect(await sample('mailsubmit_downstream_failures_total{downstream="gone",outcome="mta-unreachable"}')).toBe(1);
    expect(await sample('mailsubmit_downstream_deliveries_total{downstream="sink"}')).toBe(1);
    expect(await sample('mailsubmit_downstream_deliveries_total{downstream="gone"}')).toBe(0);
  });

  it('keeps the counts across a reload that rebuilds the downstreams', async () => {
    writeFileSync(ms.configPath, readFileSync(ms.configPath, 'utf8').replace('priority = 2', 'priority = 3'), { mode: 0o644 });
    expect((await ask(ms.controlSocketPath, { command: 'reload' })).ok).toBe(true);
    expect(await sample('mailsubmit_downstream_deliveries_total{downstream="sink"}')).toBe(1);
    expect(await sample('mailsubmit_downstream_failures_total{downstream="gone",outcome="mta-unreachable"}')).toBe(1);
    // Rebuilt: healthy until it fails again.
    expect(await sample('mailsubmit_downstream_healthy{downstream="gone"}')).toBe(1);
  });
});
