/**
 * Side by side with Postfix's own sendmail: the same program, arguments and
 * input run twice, once with Postfix's sendmail at /usr/sbin/sendmail and
 * once with mailsubmit's (the set-gid helper under test, whose basename
 * `sendmail` picks the sendmail front door), and what each queued compared.
 *
 * Both feed one private Postfix started without its queue manager, so every
 * message stays in the incoming queue exactly as cleanup wrote it, and
 * postcat shows it (test/support/queued-messages.ts). Postfix's sendmail
 * reaches that instance through MAIL_CONFIG; mailsubmit through its daemon,
 * whose downstream is the instance's re-injection listener.
 *
 * The program sees either sendmail at the usual path: each run is in a
 * mount namespace of its own (unshare --mount) with /usr/sbin/sendmail
 * bind-mounted over, so programs that hard-code the path (cron, mailx,
 * PHP's default sendmail_path) are tested as they are. Runs as root:
 * Postfix's sendmail takes an alternate configuration directory only from
 * root (or from directories listed in the system's main.cf).
 *
 *   const sbs = await SideBySide.start();
 *   const { postfix, mailsubmit } = await sbs.runBoth(['/usr/bin/mail', '-s', 'hi', 'bob@example.org'], { input: 'text\n' });
 *   expect(comparable(mailsubmit.queued[0])).toEqual(comparable(postfix.queued[0]));
 */
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MailsubmitUnderTest } from './mailsubmit-under-test.ts';
import { PrivatePostfix } from './private-postfix.ts';
import { incomingIds, readQueued, settledNewIds, type QueuedMessage } from './queued-messages.ts';
import { RecordingSink } from './recording-sink.ts';
import { removeAll } from './test-accounts.ts';

export type Door = 'postfix' | 'mailsubmit';

export interface RunOptions {
  readonly input?: string | Buffer;
  /** The program's environment (default: PATH and HOME=/root only). */
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Kills the program after this long (it hangs, or waits for a terminal). */
  readonly timeoutMs?: number;
  /** What to bind-mount at /usr/sbin/sendmail instead of the door's (e.g. a wrapper recording argv, then exec'ing the door's). */
  readonly sendmail?: string;
}

export interface DoorRun {
  readonly door: Door;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: Buffer;
  readonly stderr: string;
  /** The messages this run left in the queue, in queue id order. */
  readonly queued: readonly QueuedMessage[];
}

export interface SideBySideOptions {
  /** Authorization list lines (default: root may send as anyone). */
  readonly authorizations?: readonly string[];
  /** Extra main.cf lines for the private Postfix. */
  readonly mainCf?: readonly string[];
  readonly listenerOptions?: readonly string[];
  /** Extra [limits] lines for mailsubmit. */
  readonly limits?: string;
}

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export class SideBySide {
  private constructor(
    readonly postfix: PrivatePostfix,
    readonly mailsubmit: MailsubmitUnderTest,
    private readonly sink: RecordingSink,
    /** What is bind-mounted at /usr/sbin/sendmail, per door. */
    readonly sendmailPath: Readonly<Record<Door, string>>,
  ) {}

  static isAvailable(): boolean {
    return PrivatePostfix.isAvailable();
  }

  static async start(options: SideBySideOptions = {}): Promise<SideBySide> {
    const sink = new RecordingSink();
    let postfix: PrivatePostfix | undefined;
    let mailsubmit: MailsubmitUnderTest | undefined;
    try {
      postfix = await PrivatePostfix.start({
        relayPort: await sink.listen(),
        queueManager: false,
        // Header rewriting as Debian's Postfix does it out of the box: the private
        // instance turns it off for its other users, this comparison needs the default.
        // in_flow_delay 0: cleanup waits up to that long (1 s) for a flow-control token
        // only the queue manager hands out, and none runs here.
        mainCf: ['local_header_rewrite_clients = permit_inet_interfaces', 'in_flow_delay = 0s', ...(options.mainCf ?? [])],
        ...(options.listenerOptions !== undefined ? { listenerOptions: options.listenerOptions } : {}),
      });
      // The instance's own empty value for that parameter goes: the later line wins anyway, but
      // Postfix's sendmail and postdrop warn about the duplicate on standard error, which callers see.
      const mainCfPath = join(postfix.dir, 'main.cf');
      writeFileSync(mainCfPath, readFileSync(mainCfPath, 'utf8').replace(/^local_header_rewrite_clients =\n/m, ''));
      mailsubmit = await MailsubmitUnderTest.start({ downstreamPort: postfix.port, ...(options.limits !== undefined ? { limits: options.limits } : {}) });
      mailsubmit.setAuthorizations(options.authorizations ?? ['root']);
      // A copy of Postfix's sendmail, started by a wrapper that names the private
      // instance: /usr/sbin/sendmail itself is hidden by the bind mount in the run.
      const bin = join(postfix.dir, 'side-by-side');
      mkdirSync(bin);
      copyFileSync('/usr/sbin/sendmail', join(bin, 'sendmail'));
      chmodSync(join(bin, 'sendmail'), 0o755);
      const wrapper = join(bin, 'postfix-sendmail');
      writeFileSync(wrapper, `#!/bin/sh\nMAIL_CONFIG='${postfix.dir}' exec '${join(bin, 'sendmail')}' "$@"\n`, { mode: 0o755 });
      return new SideBySide(postfix, mailsubmit, sink, { postfix: wrapper, mailsubmit: mailsubmit.helperPath });
    } catch (error) {
      await mailsubmit?.stop();
      await postfix?.stop();
      await sink.close();
      throw error;
    }
  }

  async stop(): Promise<void> {
    await this.mailsubmit.stop();
    await this.postfix.stop();
    await this.sink.close();
    removeAll();
  }

  /** Runs `command` with `door`'s sendmail at /usr/sbin/sendmail and collects what it queued. */
  async run(door: Door, command: readonly string[], options: RunOptions = {}): Promise<DoorRun> {
    const before = new Set(incomingIds(this.postfix.dir));
    const [program, ...args] = command;
    if (program === undefined) throw new Error('side-by-side: empty command');
    const child = spawn(
      'unshare',
      ['--mount', '--propagation', 'private', '--', 'sh', '-c', 'mount --bind "$0" /usr/sbin/sendmail && exec "$@"', options.sendmail ?? this.sendmailPath[door], program, ...args],
      { env: options.env ?? { PATH: DEFAULT_PATH, HOME: '/root' }, cwd: options.cwd ?? '/', stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const stdout: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
    const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (c, s) => resolve([c, s]));
    }).finally(() => clearTimeout(timer));
    const ids = await settledNewIds(this.postfix.dir, before);
    const queued = await Promise.all(ids.map((id) => readQueued(this.postfix.dir, id)));
    return { door, code, signal, stdout: Buffer.concat(stdout), stderr, queued };
  }

  /** The same command through Postfix's sendmail, then through mailsubmit's. */
  async runBoth(command: readonly string[], options: RunOptions = {}): Promise<Record<Door, DoorRun>> {
    const postfix = await this.run('postfix', command, options);
    const mailsubmit = await this.run('mailsubmit', command, options);
    return { postfix, mailsubmit };
  }
}

/** Header fields whose value each sendmail generates itself (when the caller did not write them). */
const GENERATED = /^(date|message-id|resent-date|resent-message-id):/i;

/**
 * A queued message reduced to what must agree between the two sendmails:
 * the envelope sender and recipients, and the content without the Received
 * fields Postfix prepends (they name the path and the queue id), with the
 * values of generated Date and Message-ID fields masked. `inputHeaders` are
 * the field names the caller wrote: a Date or Message-ID the caller wrote
 * must arrive unchanged, so it is not masked.
 */
export function comparable(message: QueuedMessage, inputHeaders: readonly string[] = []): { sender: string; recipients: string[]; content: string } {
  const written = new Set(inputHeaders.map((name) => name.toLowerCase()));
  const lines = message.content.toString('latin1').split('\n');
  const out: string[] = [];
  let inHeader = true;
  let skipping = false;
  for (const line of lines) {
    if (inHeader && line === '') inHeader = false;
    if (inHeader && /^[ \t]/.test(line) && skipping) continue;
    skipping = false;
    if (inHeader && /^received:/i.test(line)) {
      skipping = true;
      continue;
    }
    if (inHeader && GENERATED.test(line)) {
      const name = (line.split(':')[0] as string).toLowerCase();
      if (!written.has(name)) {
        out.push(`${name}: (generated)`);
        skipping = true;
        continue;
      }
    }
    out.push(line);
  }
  return { sender: message.sender, recipients: [...message.recipients].sort(), content: out.join('\n') };
}
