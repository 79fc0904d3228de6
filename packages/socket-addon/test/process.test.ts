/**
 * Behaviour that needs a process of its own: an exception thrown by an event
 * handler, and accept failing with EMFILE. Each runs a child script
 * (test/child/) and checks what it prints.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTempDir, runPeer } from './support.ts';
import type { PeerResult } from './support.ts';

let temp: ReturnType<typeof makeTempDir>;

beforeEach(() => {
  temp = makeTempDir();
});

afterEach(() => {
  temp.cleanup();
});

/**
 * Starts a child script; once it prints "ready", runs the peers one after
 * another, then waits for the child's JSON line and exit.
 */
function runChild(script: string, path: string, plans: Parameters<typeof runPeer>[0][], prefix: string[] = [], extra: string[] = []) {
  const command = prefix.length > 0 ? (prefix[0] as string) : process.execPath;
  const args = [...prefix.slice(1), ...(prefix.length > 0 ? [process.execPath] : []), '--import', 'tsx', join(import.meta.dirname, 'child', script), path, ...extra];
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: join(import.meta.dirname, '..') });
  let stdout = '';
  let stderr = '';
  const peers: PeerResult[] = [];
  return new Promise<{ output: unknown; peers: PeerResult[]; code: number | null; stderr: string }>((resolve, reject) => {
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on('data', async (chunk: Buffer) => {
      const before = stdout;
      stdout += chunk.toString();
      if (!before.includes('ready\n') && stdout.includes('ready\n')) {
        try {
          for (const plan of plans) peers.push(await runPeer(plan));
        } catch (error) {
          reject(error);
        }
      }
    });
    child.on('close', (code) => {
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      resolve({ output: line ? JSON.parse(line) : undefined, peers, code, stderr });
    });
  });
}

describe('in a process of its own', () => {
  it('reports a throwing handler as an uncaught exception and keeps serving', async () => {
    const path = join(temp.dir, 'throw.sock');
    const result = await runChild('throwing-handler.ts', path, [
      { path, payload: 'throw' },
      { path, payload: 'next' },
      { path, payload: 'last' },
    ]);
    expect(result.stderr).toBe('');
    expect(result.output).toEqual({ frames: 3, caught: ['thrown by the handler'] });
    expect(result.peers.map((p) => p.results[0])).toEqual([{ eof: true }, { reply: 'ok:next' }, { reply: 'ok:last' }]);
    expect(result.code).toBe(0);
  });

  it('pauses accepting on EMFILE and resumes by itself', async () => {
    const path = join(temp.dir, 'emfile.sock');
    const limit = ['python3', '-c', 'import os,resource,sys; resource.setrlimit(resource.RLIMIT_NOFILE,(64,64)); os.execvp(sys.argv[1],sys.argv[1:])'];
    const result = await runChild('accept-emfile.ts', path, [{ path, payload: 'after-emfile' }], limit);
    expect(result.output).toEqual({ errors: ['EMFILE'] });
    expect(result.peers[0]?.results).toEqual([{ reply: 'ok:after-emfile' }]);
    expect(result.code).toBe(0);
  });

  it('at the fd limit flags passed fds as lost and fails user lookups with EMFILE, never "no such user"', async () => {
    const path = join(temp.dir, 'lost.sock');
    const limit = ['python3', '-c', 'import os,resource,sys; resource.setrlimit(resource.RLIMIT_NOFILE,(64,64)); os.execvp(sys.argv[1],sys.argv[1:])'];
    // uid 1 (daemon) is in /etc/passwd only: no NSS module makes it up when the file cannot be read.
    const result = await runChild('fds-lost.ts', path, [{ path, payload: 'x', fds: ['null'] }], limit, ['1']);
    expect(result.output).toEqual({
      flags: { truncated: false, ctruncated: true, fdsLost: true },
      fds: 0,
      atLimit: { user: 'EMFILE', group: 'EMFILE' },
      afterwards: { user: 'found', group: 'found' },
    });
    expect(result.peers[0]?.results).toEqual([{ reply: 'ok' }]);
    expect(result.code).toBe(0);
  });
});