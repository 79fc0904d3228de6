/**
 * One corpus, two readers of the authorization list: the daemon's parser
 * (@mailsubmit/shared, authorization-list.ts and authorize.ts) and the
 * helper's (packages/submit-helper/src/authorization-list.c, compiled here
 * with a driver that answers group membership from the query). Every case in
 * authorization-list/cases/ (NAME.list, NAME.expect; the format is in the
 * README there) is run through both; a verdict other than the expected one
 * fails, and so does a pair the helper could act on wrongly: it may refuse
 * (77) only a caller the daemon refuses as not listed, and may find on the
 * list only a caller the daemon does not refuse as not listed.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthorizationListError, authorize, parseAuthorizationList, senderPermitted, type CallerIdentity } from '@mailsubmit/shared';

const CASES = join(import.meta.dirname, 'authorization-list', 'cases');
const HELPER_SOURCE = join(import.meta.dirname, '..', '..', 'packages', 'submit-helper', 'src');

type DaemonVerdict = 'allow' | 'deny' | 'invalid' | 'sender-refused';
type HelperVerdict = 'listed' | 'not-listed' | 'unsure';

interface Query {
  readonly line: number;
  readonly uid: number;
  readonly user: string | null;
  readonly groups: readonly string[];
  /** null: authorization only; '' is <>. */
  readonly sender: string | null;
  readonly daemon: DaemonVerdict;
  readonly helper: HelperVerdict;
}

const DAEMON_VERDICTS: readonly string[] = ['allow', 'deny', 'invalid', 'sender-refused'];
const HELPER_VERDICTS: readonly string[] = ['listed', 'not-listed', 'unsure'];

function readExpectations(name: string): Query[] {
  const queries: Query[] = [];
  readFileSync(join(CASES, `${name}.expect`), 'utf8').split('\n').forEach((text, index) => {
    if (text.trim() === '' || text.startsWith('#')) return;
    const fields = text.trim().split(/\s+/);
    const [uid, user, groups, sender, daemon, helper] = fields;
    if (fields.length !== 6 || !/^[0-9]+$/.test(uid!) || !DAEMON_VERDICTS.includes(daemon!) || !HELPER_VERDICTS.includes(helper!)) {
      throw new Error(`${name}.expect:${index + 1}: want UID USER GROUPS SENDER DAEMON HELPER, got "${text}"`);
    }
    queries.push({
      line: index + 1,
      uid: Number(uid),
      user: user === '-' ? null : user!,
      groups: groups === '-' ? [] : groups!.split(','),
      sender: sender === '-' ? null : sender === '<>' ? '' : sender!,
      daemon: daemon as DaemonVerdict,
      helper: helper as HelperVerdict,
    });
  });
  return queries;
}

/** What mailsubmitd decides: the store reads the file as UTF-8, then parse, authorize and the sender check. */
function daemonVerdict(list: Buffer, query: Query): DaemonVerdict {
  let entries;
  try {
    entries = parseAuthorizationList(list.toString('utf8'));
  } catch (err) {
    if (err instanceof AuthorizationListError) return 'invalid';
    throw err;
  }
  const caller: CallerIdentity = { uid: query.uid, userName: query.user, groupNames: query.groups };
  const grant = authorize(entries, caller);
  if (grant === null) return 'deny';
  return query.sender !== null && !senderPermitted(grant, caller, query.sender) ? 'sender-refused' : 'allow';
}

const names = readdirSync(CASES)
  .filter((file) => file.endsWith('.list'))
  .map((file) => file.slice(0, -'.list'.length))
  .sort();

let dir: string;
let listCheck: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'authorization-list-conformance-'));
  listCheck = join(dir, 'list-check');
  // The helper's own warning flags, so that the file compiled here is the file the helper is built from.
  execFileSync('cc', ['-std=c11', '-Wall', '-Wextra', '-Werror', '-Wformat=2', '-Wshadow', '-O2', '-D_FORTIFY_SOURCE=2', `-I${HELPER_SOURCE}`, '-o', listCheck,
    join(import.meta.dirname, 'authorization-list', 'list-check.c'), join(HELPER_SOURCE, 'authorization-list.c')]);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The helper's verdicts for every query of a case, in order (one run of the driver). */
function helperVerdicts(name: string, queries: readonly Query[]): string[] {
  const input = queries.map((q) => `${q.uid} ${q.user ?? '-'} ${q.groups.length > 0 ? q.groups.join(',') : '-'}\n`).join('');
  return execFileSync(listCheck, [join(CASES, `${name}.list`)], { input, encoding: 'utf8' }).trim().split('\n');
}

describe('the authorization-list corpus', () => {
  it('has an .expect for every .list and the other way round, and every verdict occurs', () => {
    const expects = readdirSync(CASES).filter((file) => file.endsWith('.expect')).map((file) => file.slice(0, -'.expect'.length)).sort();
    expect(expects).toEqual(names);
    const all = names.flatMap(readExpectations);
    expect(new Set(all.map((q) => q.daemon))).toEqual(new Set(DAEMON_VERDICTS));
    expect(new Set(all.map((q) => q.helper))).toEqual(new Set(HELPER_VERDICTS));
  });
});

describe.each(names)('%s', (name) => {
  const queries = readExpectations(name);

  it('gets the expected verdicts from the daemon and the helper, which agree', () => {
    const list = readFileSync(join(CASES, `${name}.list`));
    const helper = helperVerdicts(name, queries);
    const describeQuery = (q: Query): string => `${name}.expect:${q.line} uid ${q.uid} ${q.user ?? '-'} [${q.groups.join(',')}] ${q.sender ?? '-'}`;
    const got = queries.map((q, i) => `${describeQuery(q)}: daemon ${daemonVerdict(list, q)}, helper ${helper[i]}`);
    expect(got).toEqual(queries.map((q) => `${describeQuery(q)}: daemon ${q.daemon}, helper ${q.helper}`));
    for (const [i, q] of queries.entries()) {
      // A 77 from the helper is a 77 the daemon would give; a caller the helper finds is one the daemon does not refuse as unlisted.
      if (helper[i] === 'not-listed') expect(q.daemon, describeQuery(q)).toBe('deny');
      if (helper[i] === 'listed') expect(q.daemon, describeQuery(q)).not.toBe('deny');
    }
  });
});
