/**
 * Shared pieces of the addon's tests: the Python peer (a real SEQPACKET
 * client, run asynchronously so the loop under test stays free to answer),
 * temp dirs, the process's open fd count, and a forced GC.
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface PeerPlan {
  path: string;
  count?: number;
  payload?: string;
  size?: number;
  fds?: string[];
  expect?: string;
  silent?: boolean;
  noReply?: boolean;
  nonblock?: boolean;
  setid?: [number, number];
}

export interface PeerRound {
  reply?: string;
  eof?: boolean;
  timeout?: boolean;
  reset?: boolean;
  sent?: number;
  nonblock?: boolean[];
}

export interface PeerResult {
  pid: number;
  uid: number;
  gid: number;
  rounds: number;
  bad: number;
  results: PeerRound[];
}

const peerScript = join(import.meta.dirname, 'peer.py');

export function runPeer(plan: PeerPlan): Promise<PeerResult> {
  return new Promise((resolve, reject) => {
    execFile('python3', [peerScript, JSON.stringify(plan)], { env: {} }, (error, stdout, stderr) => {
      if (error) reject(new Error(`peer failed: ${error.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as PeerResult);
    });
  });
}

/** A temp dir others may enter, so a peer with dropped ids can reach the socket. */
export function makeTempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'socket-addon-'));
  chmodSync(dir, 0o755);
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

let gcFunction: (() => void) | undefined;

/** global.gc without --expose-gc: the flag can be set at run time for new contexts. */
export function forceGc(): void {
  if (!gcFunction) {
    setFlagsFromString('--expose-gc');
    gcFunction = runInNewContext('gc') as () => void;
  }
  gcFunction();
}

/** Lets pending finalizers and weak callbacks run: they need a turn of the loop. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    forceGc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}
