/**
 * Real programs, side by side: each program in test/compat/programs.ts sends
 * the same message twice, once with Postfix's sendmail at /usr/sbin/sendmail
 * and once with mailsubmit-sendmail there, each called the way the program
 * calls it by default. Both runs must end with the same exit code and queue
 * the same messages: envelope sender, recipients, header and body, with only
 * what each run generates itself masked (comparable(), maskGenerated()).
 *
 * In Postfix's run a wrapper records the arguments before it starts
 * Postfix's sendmail, so the suite also shows how each program calls
 * sendmail (the table in docs/compatibility.md).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { comparable, SideBySide, type Door, type DoorRun } from '../support/side-by-side.ts';
import { maskGenerated, PROGRAM_CASES, writeMessageFiles, type ProgramCase } from './programs.ts';

interface CaseRuns {
  readonly runs: Record<Door, DoorRun>;
  /** The arguments of each sendmail call in Postfix's run. */
  readonly argv: string[][];
}

describe.skipIf(!SideBySide.isAvailable() && !process.env.CI)('real programs through Postfix sendmail and mailsubmit-sendmail', () => {
  let sbs: SideBySide;
  let work: string;
  const results = new Map<string, Promise<CaseRuns>>();

  beforeAll(async () => {
    sbs = await SideBySide.start();
    work = mkdtempSync('/tmp/mailsubmit-compat-');
  }, 120_000);
  afterAll(async () => {
    await sbs?.stop();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  /** Runs the program once per door (each in a fresh directory), once for both tests of a case. */
  function runCase(program: ProgramCase, index: number): Promise<CaseRuns> {
    let result = results.get(program.name);
    if (result === undefined) {
      result = (async () => {
        const runs = {} as Record<Door, DoorRun>;
        const argvLog = join(work, `argv-${index}`);
        writeFileSync(argvLog, '');
        const recorder = join(work, `sendmail-recorder-${index}`);
        writeFileSync(recorder, `#!/bin/sh\nfor a in "$@"; do printf '%s\\037' "$a"; done >>'${argvLog}'\necho >>'${argvLog}'\nexec '${sbs.sendmailPath.postfix}' "$@"\n`, {
          mode: 0o755,
        });
        // The same directory for both runs, made afresh: paths end up in messages (cron's Subject).
        const dir = join(work, String(index));
        for (const door of ['postfix', 'mailsubmit'] as const) {
          rmSync(dir, { recursive: true, force: true });
          mkdirSync(dir);
          writeMessageFiles(dir);
          const prepared = program.prepare(dir);
          runs[door] = await sbs.run(door, prepared.command, {
            ...(prepared.input !== undefined ? { input: prepared.input } : {}),
            ...(prepared.env !== undefined ? { env: prepared.env } : {}),
            ...(prepared.cwd !== undefined ? { cwd: prepared.cwd } : {}),
            ...(door === 'postfix' ? { sendmail: recorder } : {}),
            timeoutMs: 90_000,
          });
        }
        const argv = readFileSync(argvLog, 'utf8')
          .split('\n')
          .filter((line) => line !== '')
          .map((line) => line.split('\x1f').slice(0, -1));
        return { runs, argv };
      })();
      results.set(program.name, result);
    }
    return result;
  }

  PROGRAM_CASES.forEach((program, index) => {
    describe(program.name, () => {
      it('calls sendmail with its default arguments, and Postfix queues its message', async () => {
        const { runs, argv } = await runCase(program, index);
        expect(argv).toEqual([program.argv.map((arg) => arg.replace('{host}', hostname()))]);
        expect({ code: runs.postfix.code, stderr: runs.postfix.stderr }).toMatchObject({ code: 0 });
        expect(runs.postfix.queued).toHaveLength(1);
      }, 150_000);

      const agree = program.knownDifference === undefined ? it : it.fails;
      agree('mailsubmit-sendmail: the same exit code and the same queued message', async () => {
        const { runs } = await runCase(program, index);
        expect(runs.postfix.queued.length).toBeGreaterThan(0);
        const view = (run: DoorRun) => ({
          code: run.code,
          // What the program printed: a sendmail's complaints reach the user through it.
          stdout: run.stdout.toString('utf8'),
          stderr: run.stderr,
          queued: run.queued.map((message) => {
            const { sender, recipients, content } = comparable(message);
            return { sender, recipients, content: maskGenerated(content, program.masks) };
          }),
        });
        expect(view(runs.mailsubmit)).toEqual(view(runs.postfix));
      }, 150_000);
    });
  });
});
