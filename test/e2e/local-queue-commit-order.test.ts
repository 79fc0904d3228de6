/**
 * The commit order of the local queue, traced on the running daemon as
 * Postfix's own commit was checked: strace follows every thread of the
 * daemon while one caller's message is queued (Postfix stopped), and the
 * calls on that message come in this order, each after the one before it
 * returned: the writes of the message file, its fsync, the rename into
 * ready/ (the completion mark), the fsync of ready/, and only then the
 * reply on the caller's connection. The store's own test
 * (packages/submit-daemon/test/5-transport/local-queue/queue-syscall-order.test.ts)
 * checks the first four; this one adds the reply, which only the daemon
 * sends. strace comes from install/test-tools.sh.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childOutput } from '../support/child-output.ts';
import { startMailPath } from '../support/mail-path.ts';
import type { MailsubmitUnderTest } from '../support/mailsubmit-under-test.ts';
import { PrivatePostfix } from '../support/private-postfix.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import { sendmail } from '../support/sendmail-caller.ts';
import { tearDown } from '../support/tear-down.ts';
import { ensureUser, type TestUser } from '../support/test-accounts.ts';
import { until } from '../support/until.ts';

const TRACED = 'write,writev,pwrite64,pwritev,fsync,fdatasync,rename,renameat,renameat2,send,sendto,sendmsg';

type Step = 'write' | 'fsync file' | 'rename into ready' | 'fsync ready' | 'reply';
const COMMIT_ORDER: readonly string[] = ['write', 'fsync file', 'rename into ready', 'fsync ready', 'reply'];

interface Call {
  readonly step: Step;
  /** Line of the trace where the call was entered, and where it returned. */
  readonly entered: number;
  readonly returned: number;
}

/**
 * The steps of committing ready/`queueId` in one `strace -f -yy` log, in
 * the order they were entered, runs of one step as one; a step entered
 * before the step ahead of it had returned is named so. A call strace
 * splits (`<unfinished ...>`, then `<... name resumed>`) returns at its
 * resumed line. `connection` is the path of the submission socket the
 * caller's connection was accepted on.
 */
export function commitSteps(log: string, root: string, queueId: string, connection: string): string[] {
  const lines = log.split('\n');
  const target = join(root, 'ready', queueId);
  const renamed = lines.map((line) => new RegExp(`rename\\w*\\((?:[^,]*, )?"([^"]+)", (?:[^,]*, )?"${escape(target)}"`).exec(line)?.[1]).find((path) => path !== undefined);
  if (renamed === undefined) return [];
  const pending = new Map<string, { step: Step; entered: number }>();
  const calls: Call[] = [];
  lines.forEach((line, index) => {
    const resumed = /^(\d+)\s+<\.\.\. (\w+) resumed>/.exec(line);
    if (resumed !== null) {
      const key = `${resumed[1]} ${resumed[2]}`;
      const open = pending.get(key);
      if (open !== undefined) calls.push({ ...open, returned: index });
      pending.delete(key);
      return;
    }
    const call = /^(\d+)\s+(\w+)\((.*)$/.exec(line);
    if (call === null) return;
    const [, pid, name, rest] = call as unknown as [string, string, string, string];
    const step = stepOf(name, rest, renamed, join(root, 'ready'), connection);
    if (step === null) return;
    if (rest.endsWith('<unfinished ...>')) pending.set(`${pid} ${name}`, { step, entered: index });
    else calls.push({ step, entered: index, returned: index });
  });
  calls.sort((a, b) => a.entered - b.entered);
  const steps: string[] = [];
  let previous: { step: Step; returned: number } | null = null;
  for (const call of calls) {
    if (previous !== null && call.step === previous.step) {
      previous = { step: call.step, returned: Math.max(previous.returned, call.returned) };
      continue;
    }
    steps.push(previous !== null && call.entered < previous.returned ? `${call.step} (before ${previous.step} returned)` : call.step);
    previous = { step: call.step, returned: call.returned };
  }
  return steps;
}

function stepOf(name: string, rest: string, temporary: string, ready: string, connection: string): Step | null {
  const fd = /^\d+<([^>]*(?:>[^>]*)?)>/.exec(rest)?.[1] ?? '';
  if (/^(write|writev|pwrite64|pwritev)$/.test(name) && fd === temporary) return 'write';
  if (/^f(data)?sync$/.test(name) && fd === temporary) return 'fsync file';
  if (name.startsWith('rename') && rest.includes(`"${temporary}"`)) return 'rename into ready';
  if (/^f(data)?sync$/.test(name) && fd === ready) return 'fsync ready';
  if (/^(send|sendto|sendmsg|write|writev)$/.test(name) && acceptedOn(fd, connection)) return 'reply';
  return null;
}

/**
 * Whether strace's description of a descriptor is a connection accepted on
 * the submission socket `path`: the daemon binds it under a temporary name
 * beside it (.NAME.PID) and renames it into place, and strace names the
 * address it was bound to.
 */
function acceptedOn(fd: string, path: string): boolean {
  return new RegExp(`^UNIX(?:-[A-Z]+)?:\\[\\d+->\\d+,"${escape(dirname(path))}/\\.?${escape(basename(path))}(?:\\.\\d+)?"\\]$`).test(fd);
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('the commit order check itself', () => {
  const root = '/q';
  const socket = '/run/m.sock';
  const call: Record<string, string> = {
    write: '101 write(21</q/incoming/message.1.aa>, ""..., 4096) = 4096',
    fsync: '102 fsync(21</q/incoming/message.1.aa>) = 0',
    'fsync unfinished': '102 fsync(21</q/incoming/message.1.aa> <unfinished ...>',
    'fsync resumed': '102 <... fsync resumed>) = 0',
    rename: '103 rename("/q/incoming/message.1.aa", "/q/ready/ID-1") = 0',
    dirsync: '103 fsync(22</q/ready>) = 0',
    reply: '100 sendto(19<UNIX:[7196356->7195444,"/run/.m.sock.100"]>, ""..., 26, MSG_DONTWAIT|MSG_NOSIGNAL, NULL, 0) = 26',
    'log write': '100 write(1<UNIX-STREAM:[7195915->7195914]>, ""..., 940) = 940',
    'other reply': '100 sendto(20<UNIX:[7196358->7195446,"/run/control.sock"]>, ""..., 26, MSG_DONTWAIT|MSG_NOSIGNAL, NULL, 0) = 26',
  };
  const trace = (order: string[]) => order.map((name) => call[name]).join('\n');

  it('reads the right order, with writes merged and other calls left out', () => {
    expect(commitSteps(trace(['other reply', 'write', 'write', 'fsync', 'log write', 'rename', 'dirsync', 'reply']), root, 'ID-1', socket)).toEqual(COMMIT_ORDER);
  });

  it('tells each wrong order from the right one', () => {
    for (const wrong of [
      ['write', 'fsync', 'rename', 'reply', 'dirsync'],
      ['write', 'rename', 'fsync', 'dirsync', 'reply'],
      ['write', 'fsync', 'rename', 'reply'],
      ['write', 'fsync', 'rename', 'dirsync'],
      ['reply', 'write', 'fsync', 'rename', 'dirsync'],
      ['write', 'fsync', 'write', 'rename', 'dirsync', 'reply'],
      // The rename entered while the file's fsync had not yet returned (another thread).
      ['write', 'fsync unfinished', 'rename', 'fsync resumed', 'dirsync', 'reply'],
    ]) {
      expect(commitSteps(trace(wrong), root, 'ID-1', socket), wrong.join(', ')).not.toEqual(COMMIT_ORDER);
    }
  });

  it('finds nothing when no file was renamed to the id', () => {
    expect(commitSteps(trace(['write', 'fsync', 'rename', 'dirsync', 'reply']), root, 'ID-2', socket)).toEqual([]);
  });
});

describe.skipIf(!PrivatePostfix.isAvailable() && !process.env.CI)('the local queue commit order on the running daemon', () => {
  const sink = new RecordingSink();
  let postfix: PrivatePostfix;
  let ms: MailsubmitUnderTest;
  let user: TestUser;

  beforeAll(async () => {
    ({ postfix, ms } = await startMailPath(sink, { mailsubmit: { queue: 'probe_interval = 1\nminimal_backoff_time = 1' } }));
    user = ensureUser('mstqorder');
    ms.setAuthorizations(['mstqorder']);
  }, 60_000);

  afterAll(() => tearDown(ms, postfix, sink), 60_000);

  it('writes, fsyncs the file, renames it into ready/, fsyncs ready/, and only then replies to the caller', { timeout: 60_000 }, async () => {
    await postfix.stopMailSystem();
    const traceFile = join(ms.dir, 'daemon.strace');
    const strace = spawn('strace', ['-f', '-yy', '-s', '0', '-e', `trace=${TRACED}`, '-o', traceFile, '-p', String(ms.daemonPid)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let attached = '';
    strace.stderr.on('data', (chunk: Buffer) => (attached += chunk.toString()));
    const traced = childOutput(strace);
    await until(() => /attached/.test(attached), 'strace to attach to the daemon', 10_000);

    const result = await sendmail(ms, user, ['-i', '-f', 'cron@example.org', 'ops@example.org'], 'From: cron@example.org\nSubject: traced\n\ntraced commit\n');
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const logged = await ms.waitForSubmission((line) => line.status === 'queued-locally');
    strace.kill('SIGINT');
    await traced;

    const queueId = String(logged.local_queue_id);
    const steps = commitSteps(readFileSync(traceFile, 'utf8'), join(ms.dir, 'queue'), queueId, ms.socketPath);
    expect(steps).toEqual(COMMIT_ORDER);

    await postfix.startMailSystem();
    await sink.waitForMessage((m) => m.data.includes('Subject: traced\r\n'));
  });
});
