/** Runs the built mailsubmitctl as an administrator would, optionally as another user. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..', '..');
export const COMMAND = join(ROOT, 'node_modules', '.bin', 'mailsubmitctl');

export interface CtlResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function ctl(args: readonly string[], as?: { uid: number; gid: number }): CtlResult {
  const result = spawnSync(COMMAND, args, {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    timeout: 30_000,
    ...(as ? { uid: as.uid, gid: as.gid } : {}),
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}
