/**
 * The commit order, checked on the system calls themselves as Postfix's
 * was: a child process queues one message under strace, and the calls on
 * that message's file come in this order and no other: the data writes,
 * the fsync of the file, the rename into ready/ (the completion mark), the
 * fsync of ready/. strace comes from install/test-tools.sh.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const TRACED = 'openat,write,writev,pwrite64,fsync,fdatasync,rename,renameat,renameat2,fchmod,unlink,close';
const LOCAL_QUEUE = join(import.meta.dirname, '../../../src/5-transport/local-queue/local-queue.ts');
const FIXTURES = join(import.meta.dirname, 'queue-fixtures.ts');

const QUEUE_ONE_MESSAGE = `
import { LocalQueue } from ${JSON.stringify(LOCAL_QUEUE)};
import { entryFor, FULL_ENVELOPE_BLOCK, NO_LIMITS, patternedBody } from ${JSON.stringify(FIXTURES)};
const { queue } = await LocalQueue.open(process.argv[1], { limits: NO_LIMITS });
const { queueId } = await queue.enqueue(entryFor(FULL_ENVELOPE_BLOCK), patternedBody(200 * 1024, 64 * 1024));
process.stdout.write(queueId + '\\n');
`;

type Step = 'create' | 'write' | 'fsync file' | 'close' | 'rename into ready' | 'fsync ready' | 'other';

/**
 * The calls of one strace -y log that concern the message file of
 * `queueId` (whatever its temporary name) and the ready/ directory after
 * it, in order, with runs of writes as one step.
 */
function commitSteps(log: string, root: string, queueId: string): Step[] {
  const incoming = `${join(root, 'incoming')}/`;
  const ready = join(root, 'ready');
  const renamed = new RegExp(`rename(?:at2?)?\\((?:[^,]*, )?"(${escape(incoming)}[^"]+)", (?:[^,]*, )?"${escape(join(ready, queueId))}"`);
  const temporary = log.split('\n').map((line) => renamed.exec(line)?.[1]).find((path) => path !== undefined);
  if (temporary === undefined) return [];
  const steps: Step[] = [];
  for (const line of log.split('\n')) {
    const call = /^(?:\[pid\s+\d+\] |\d+\s+)?(\w+)\((.*)$/.exec(line);
    if (call === null) continue;
    const [, name, rest] = call as unknown as [string, string, string];
    let step: Step | null = null;
    if (name === 'openat' && rest.includes(`"${temporary}"`)) step = 'create';
    else if (/^(write|writev|pwrite64)$/.test(name) && rest.startsWith(`${fdOf(rest)}<${temporary}>`)) step = 'write';
    else if (/^f(data)?sync$/.test(name) && rest.startsWith(`${fdOf(rest)}<${temporary}>`)) step = 'fsync file';
    else if (name === 'close' && rest.startsWith(`${fdOf(rest)}<${temporary}>`)) step = 'close';
    else if (name.startsWith('rename') && rest.includes(`"${temporary}"`)) step = 'rename into ready';
    else if (/^f(data)?sync$/.test(name) && rest.startsWith(`${fdOf(rest)}<${ready}>`) && steps.length > 0) step = 'fsync ready';
    else if (rest.includes(temporary)) step = 'other';
    if (step === null || (step === 'write' && steps.at(-1) === 'write')) continue;
    steps.push(step);
  }
  return steps;
}

function fdOf(rest: string): string {
  return /^\d+/.exec(rest)?.[0] ?? '';
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const COMMIT_ORDER: Step[] = ['create', 'write', 'fsync file', 'close', 'rename into ready', 'fsync ready'];

let parent: string;

beforeAll(async () => {
  parent = await mkdtemp(join(tmpdir(), 'local-queue-strace-'));
});
afterAll(async () => rm(parent, { recursive: true, force: true }));

describe('local queue: the order of the system calls that commit a message', () => {
  it('writes, fsyncs the file, renames it into ready/, then fsyncs ready/', async () => {
    const root = join(parent, 'queue');
    const traceFile = join(parent, 'trace.log');
    const stdout = execFileSync(
      'strace',
      ['-f', '-qq', '-y', '-s', '0', '-e', `trace=${TRACED}`, '-o', traceFile, process.execPath, '--import', 'tsx', '--input-type=module', '-e', QUEUE_ONE_MESSAGE, root],
      { encoding: 'utf8', timeout: 60_000 },
    );
    const queueId = stdout.trim();
    expect(queueId).toMatch(/^[0-9A-Z]{11}-[0-9A-Z]+$/);
    const log = await readFile(traceFile, 'utf8');
    expect(commitSteps(log, root, queueId)).toEqual(COMMIT_ORDER);
  });

  it('tells a wrong order from the right one (the check itself can fail)', () => {
    const root = '/q';
    const lines = (order: string[]): string =>
      order
        .map((step) =>
          ({
            create: '101 openat(AT_FDCWD, "/q/incoming/message.1.aa", O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC, 0600) = 21</q/incoming/message.1.aa>',
            write: '102 write(21</q/incoming/message.1.aa>, ""..., 4096) = 4096',
            fsync: '102 fsync(21</q/incoming/message.1.aa>) = 0',
            close: '101 close(21</q/incoming/message.1.aa>) = 0',
            rename: '103 rename("/q/incoming/message.1.aa", "/q/ready/ID-1") = 0',
            dirsync: '103 fsync(22</q/ready>) = 0',
          })[step],
        )
        .join('\n');
    expect(commitSteps(lines(['create', 'write', 'write', 'fsync', 'close', 'rename', 'dirsync']), root, 'ID-1')).toEqual(COMMIT_ORDER);
    expect(commitSteps(lines(['create', 'write', 'close', 'rename', 'dirsync', 'fsync']), root, 'ID-1')).not.toEqual(COMMIT_ORDER);
    expect(commitSteps(lines(['create', 'write', 'fsync', 'close', 'rename']), root, 'ID-1')).not.toEqual(COMMIT_ORDER);
    expect(commitSteps(lines(['create', 'write', 'fsync', 'write', 'close', 'rename', 'dirsync']), root, 'ID-1')).not.toEqual(COMMIT_ORDER);
  });
});
