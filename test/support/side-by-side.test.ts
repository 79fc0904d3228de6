/**
 * The side-by-side harness itself: each door's run queues what its sendmail
 * made of the input (so a difference the harness reports is real), and the
 * comparison hides only what is allowed to differ.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { comparable, SideBySide } from './side-by-side.ts';

describe.skipIf(!SideBySide.isAvailable() && !process.env.CI)('side by side with Postfix sendmail', () => {
  let sbs: SideBySide;
  beforeAll(async () => {
    sbs = await SideBySide.start();
  }, 60_000);
  afterAll(() => sbs?.stop());

  it('queues one message per door for the same command, equal once Received and generated fields are masked', async () => {
    const input = 'Subject: side by side\nTo: bob@example.org\n\nbody line\n';
    const { postfix, mailsubmit } = await sbs.runBoth(['/usr/sbin/sendmail', '-i', 'bob@example.org'], { input });
    expect([postfix.code, mailsubmit.code]).toEqual([0, 0]);
    expect(postfix.queued).toHaveLength(1);
    expect(mailsubmit.queued).toHaveLength(1);
    const [p, m] = [postfix.queued[0]!, mailsubmit.queued[0]!];
    expect(p.queueId).not.toBe(m.queueId);
    expect(p.content.toString()).toContain('Subject: side by side\n');
    expect(m.content.toString()).toContain('Subject: side by side\n');
    expect(comparable(m, ['subject', 'to'])).toEqual(comparable(p, ['subject', 'to']));
  }, 60_000);

  it('sees a difference in the body', async () => {
    const postfix = await sbs.run('postfix', ['/usr/sbin/sendmail', '-i', 'bob@example.org'], { input: 'Subject: a\n\none\n' });
    const mailsubmit = await sbs.run('mailsubmit', ['/usr/sbin/sendmail', '-i', 'bob@example.org'], { input: 'Subject: a\n\ntwo\n' });
    expect(comparable(mailsubmit.queued[0]!).content).not.toEqual(comparable(postfix.queued[0]!).content);
  }, 60_000);

  it('runs the program with the door\'s sendmail at /usr/sbin/sendmail', async () => {
    const run = await sbs.run('postfix', ['/bin/sh', '-c', '/usr/sbin/sendmail -bv nobody 2>&1; echo "exit $?"'], {});
    expect(run.stdout.toString()).toMatch(/exit \d+/);
    const refused = await sbs.run('mailsubmit', ['/usr/sbin/sendmail', '-i'], { input: 'Subject: a\n\nno recipient\n' });
    expect(refused.code).toBe(75);
    expect(refused.stderr).toMatch(/^mailsubmit-sendmail|^sendmail|recipient/m);
    expect(refused.queued).toHaveLength(0);
  }, 60_000);
});
