/**
 * What the helper's tests share: building the helper with its paths pointed
 * into a temp dir, a fake daemon on the socket addon that records each
 * request (decoded frame, fds, what they point at, peer credentials) and
 * answers as told, and a launcher for the helper that runs it without
 * blocking the loop the fake daemon needs.
 */
import { spawn } from 'node:child_process';
import { chmodSync, fstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeRequest, encodeReply, requestLengthOf, type FrameRequest } from '@mailsubmit/shared';
import { closeFd, fdKind, listenSeqpacket, type FdInfo, type PeerCredentials, type SeqpacketListener } from '@mailsubmit/socket-addon';
import { childOutput } from '../../../test/support/child-output.ts';
import { buildHelper as buildSetgidHelper } from '../../../test/support/helper-build.ts';

export interface HelperBuild {
  dir: string;
  binary: string;
  socket: string;
  authList: string;
  cleanup(): void;
}

/** Builds the helper into a fresh temp dir, with every compiled-in path inside it. */
export function buildHelper(timeoutSeconds = 3): HelperBuild {
  const dir = mkdtempSync(join(tmpdir(), 'submit-helper-'));
  chmodSync(dir, 0o755);
  const binary = join(dir, 'mailsubmit');
  const socket = join(dir, 'daemon.sock');
  const authList = join(dir, 'authorized');
  buildSetgidHelper({ out: binary, socket, authorizationList: authList, timeoutSeconds });
  return { dir, binary, socket, authList, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Writes the authorization list as root with exactly this mode. */
export function writeAuthList(build: HelperBuild, content: string, mode = 0o644): void {
  writeFileSync(build.authList, content);
  chmodSync(build.authList, mode);
}

export interface Captured {
  /** The frame as received (its packets joined), for checks that must not depend on the codec. */
  raw: Buffer;
  /** The length of each packet the frame came in. */
  packets: number[];
  request: FrameRequest;
  argv: string[];
  fds: FdInfo[];
  /** dev:ino of each received fd, to compare with what the caller passed. */
  identities: string[];
  /** Everything readable from each received fd that is a regular file. */
  contents: string[];
  credentials: PeerCredentials;
  /** The Gid: line of the helper's /proc status when its frame arrived. */
  procGid: string;
}

export type Answer = Uint8Array | 'close' | 'silent';

export class FakeDaemon {
  readonly captured: Captured[] = [];
  // The daemon's silent success: no text unless the caller asked with -v.
  answer: (captured: Captured) => Answer = () => encodeReply({ status: 0, outcome: 'ok', text: '' });
  /** When set: answered at the first packet of a request, and the connection closed, as the daemon refuses a request too long to take. */
  answerEarly: (() => Uint8Array) | null = null;
  readonly #listener: SeqpacketListener;

  constructor(path: string, options: { mode?: number; gid?: number } = {}) {
    this.#listener = listenSeqpacket({ path, mode: options.mode ?? 0o666, ...(options.gid === undefined ? {} : { gid: options.gid }) });
    this.#listener.on('connection', (connection) => {
      connection.on('end', () => connection.close());
      // A request longer than one packet comes in several, the fds with the first.
      const packets: Buffer[] = [];
      let fds: number[] = [];
      let expected = 0;
      connection.on('frame', (packet, packetFds) => {
        if (packets.length === 0) {
          if (this.answerEarly !== null) {
            packetFds.forEach(closeFd);
            connection.send(this.answerEarly());
            connection.close();
            return;
          }
          fds = packetFds;
          expected = requestLengthOf(packet) ?? packet.byteLength;
        } else {
          packetFds.forEach(closeFd);
        }
        packets.push(packet);
        const data = Buffer.concat(packets);
        if (data.byteLength < expected) return;
        const credentials = connection.peerCredentials();
        const captured: Captured = {
          raw: data,
          packets: packets.map((p) => p.byteLength),
          request: decodeRequest(data),
          argv: [],
          fds: fds.map((fd) => fdKind(fd)),
          identities: fds.map((fd) => identity(fstatSync(fd))),
          contents: fds.map((fd) => (fdKind(fd).kind === 'file' ? readFileSync(fd, 'latin1') : '')),
          credentials,
          procGid: /^Gid:.*$/m.exec(readFileSync(`/proc/${credentials.pid}/status`, 'utf8'))?.[0] ?? '',
        };
        captured.argv = captured.request.argv.map((a) => Buffer.from(a).toString('utf8'));
        fds.forEach(closeFd);
        this.captured.push(captured);
        const answer = this.answer(captured);
        if (answer === 'close') connection.close();
        else if (answer !== 'silent') connection.send(answer);
      });
    });
  }

  close(): void {
    this.#listener.close();
  }
}

export function identity(st: { dev: number; ino: number }): string {
  return `${st.dev}:${st.ino}`;
}

export interface LaunchPlan {
  argv: string[];
  env?: Record<string, string>;
  closeStdin?: boolean;
  closeStdout?: boolean;
  setid?: [number, number];
  /** fds for the helper's stdin and stdout; default /dev/null and a pipe. */
  stdin?: number;
  stdout?: number;
}

export interface HelperRun {
  code: number | null;
  stderr: string;
}

export function runHelper(binary: string, plan: LaunchPlan): Promise<HelperRun> {
  const { stdin, stdout, ...rest } = plan;
  const child = spawn('python3', [join(import.meta.dirname, 'launch.py'), JSON.stringify({ binary, ...rest })], {
    stdio: [stdin ?? 'ignore', stdout ?? 'pipe', 'pipe'],
    env: {},
  });
  return childOutput(child).then(({ code, stderr }) => ({ code, stderr }));
}
