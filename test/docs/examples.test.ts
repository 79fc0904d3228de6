/**
 * Every code block of README.md, docs/*.md, docs/man/*.md and
 * test/support/README.md is accounted for here, and each one that shows a
 * command is run:
 *
 * - transcripts (`$ ` or `# ` before each command, then what it prints) run
 *   in one shell, command after command, and each command's printed output
 *   (standard output and error, as a terminal shows them) must be the one
 *   shown; a command not followed by `echo $?` must exit 0. A queue id is
 *   the one thing allowed to differ ("queued as" what Postfix chose). An
 *   output line indented by four spaces goes on with the line above, broken
 *   to fit a man page's 80 columns.
 * - scripts and pipelines run as shown and must exit 0 (or as stated);
 * - configuration and authorization-list blocks go through the daemon's own
 *   parsers; submissions through `mailsubmitctl validate`.
 *
 * The examples name the installed paths (/etc/mailsubmit/...), and some of
 * them change what they act on (allow edits the authorization list, reload
 * signals the daemon), so they run against a staged install instead of this
 * machine's: the helper built with a temporary directory's paths, the
 * daemon's bundle with a configuration there, a private Postfix behind it,
 * and `mailsubmitctl` on PATH as a wrapper that passes that configuration
 * (`-c`). Output that names a staged path is compared with the staged path
 * written as the installed one. `$` commands run as an unprivileged user
 * on the staged authorization list, `#` commands as root.
 *
 * A block that is not a command (a diagram, a log excerpt, a master.cf or
 * MTA configuration snippet, a report of figures) is listed with the reason
 * it is not run; a new block that is not listed fails the first test.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAuthorizationList } from '@mailsubmit/shared';
import { CONFIG_KEYS } from '@mailsubmit/submit-daemon/documented-values';
import { parseConfig } from '@mailsubmit/submit-daemon/admin';
import { buildHelper } from '../support/helper-build.ts';
import { startMailPath } from '../support/mail-path.ts';
import { MailsubmitUnderTest } from '../support/mailsubmit-under-test.ts';
import { PrivatePostfix } from '../support/private-postfix.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import { tearDown } from '../support/tear-down.ts';
import { ensureUser, type TestUser } from '../support/test-accounts.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const CTL = join(ROOT, 'packages', 'admin-cli', 'dist', 'mailsubmitctl.cjs');

interface Block {
  readonly file: string;
  readonly line: number;
  readonly text: string;
}

/** The fenced code blocks of a Markdown file, with the line of their opening fence. */
function blocksOf(file: string): Block[] {
  const found: Block[] = [];
  let open: { line: number; lines: string[] } | null = null;
  readFileSync(join(ROOT, file), 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (/^ {0,3}```/.test(line)) {
        if (open === null) open = { line: i + 1, lines: [] };
        else {
          found.push({ file, line: open.line, text: `${open.lines.join('\n')}\n` });
          open = null;
        }
      } else open?.lines.push(line);
    });
  return found;
}

const FILES = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`),
  ...readdirSync(join(ROOT, 'docs', 'man')).map((f) => `docs/man/${f}`),
  'test/support/README.md',
];
const BLOCKS = FILES.flatMap(blocksOf);

type Kind = 'transcript' | 'refusal' | 'script' | 'toml' | 'authorization-list' | 'submission' | 'elsewhere' | 'not-run';

/** How each block is covered: by file and the start of its first line. */
const COVERAGE: readonly { file: string; starts: string; kind: Kind; why?: string }[] = [
  { file: 'README.md', starts: 'caller --stdin-->', kind: 'not-run', why: 'a diagram' },
  { file: 'README.md', starts: './install/install.sh', kind: 'elsewhere', why: 'test/install runs install.sh and uninstall.sh on a staged root' },
  { file: 'README.md', starts: "$ mailsubmit -v <<'END'", kind: 'transcript' },
  { file: 'README.md', starts: "$ printf 'To: ops@example.org", kind: 'transcript' },
  { file: 'README.md', starts: '$ node_modules/.bin/mailsubmitctl validate', kind: 'transcript' },
  { file: 'README.md', starts: 'npm run deb -- ', kind: 'elsewhere', why: 'test/install/deb-package.test.ts runs npm run deb, as this block writes it, and checks the package' },
  { file: 'README.md', starts: 'apt install /tmp/mailsubmit-debs/', kind: 'elsewhere', why: 'test/install/deb-lifecycle.test.ts runs it, as this block writes it, in a Debian booted by systemd-nspawn' },
  { file: 'README.md', starts: 'apt remove mailsubmit', kind: 'elsewhere', why: 'test/install/deb-lifecycle.test.ts runs both, as this block writes them, in a Debian booted by systemd-nspawn' },
  { file: 'README.md', starts: 'npm run build', kind: 'not-run', why: 'the developer commands: build, typecheck and the test suite this file is part of' },
  { file: 'docs/architecture.md', starts: 'caller (cron, mutt', kind: 'not-run', why: 'a diagram' },
  { file: 'docs/integrations.md', starts: '# /etc/mailsubmit/authorized', kind: 'authorization-list' },
  { file: 'docs/integrations.md', starts: 'queue/qmail-queue', kind: 'not-run', why: 'a qpsmtpd config line; test/e2e runs qpsmtpd with it (test/support/private-qpsmtpd.ts)' },
  { file: 'docs/integrations.md', starts: 'install -d /usr/local/share/qpsmtpd/plugins', kind: 'not-run', why: 'installs into qpsmtpd, which this machine does not run' },
  { file: 'docs/integrations.md', starts: 'queue_mailsubmit', kind: 'not-run', why: 'a qpsmtpd plugins line' },
  { file: 'docs/integrations.md', starts: '250 2.0.0 queued as', kind: 'not-run', why: 'an SMTP reply excerpt' },
  { file: 'docs/integrations.md', starts: '1318720E060: client=', kind: 'not-run', why: 'a Postfix log excerpt' },
  { file: 'docs/integrations.md', starts: 'Received: from localhost', kind: 'not-run', why: 'a header excerpt' },
  { file: 'docs/integrations.md', starts: '[downstream]', kind: 'toml' },
  { file: 'docs/integrations.md', starts: 'swaks --server', kind: 'not-run', why: 'probes a second MTA the reader sets up' },
  { file: 'docs/integrations.md', starts: 'listen on 127.0.0.1 port 10027', kind: 'not-run', why: "an OpenSMTPD smtpd.conf snippet; test/support/second-mta.ts uses it" },
  { file: 'docs/compatibility.md', starts: 'npx vitest run test/compat/corpus.test.ts', kind: 'elsewhere', why: 'the command that runs test/compat/corpus.test.ts, which the suite runs; that test checks the page names it' },
  { file: 'docs/performance.md', starts: 'npx tsx bench/', kind: 'not-run', why: 'the benchmarks: minutes of load, not a test' },
  { file: 'docs/performance.md', starts: 'mailsubmit:   run-timed', kind: 'not-run', why: 'the benchmark driver command lines it reports' },
  { file: 'docs/postfix.md', starts: '../mailsubmit/smtpd unix', kind: 'not-run', why: 'a master.cf excerpt; test/install checks the listener install.sh adds' },
  { file: 'docs/postfix.md', starts: 'postfix/mailsubmit/smtpd[', kind: 'not-run', why: 'a Postfix log excerpt' },
  { file: 'docs/postfix.md', starts: 'Internet -> smtpd', kind: 'not-run', why: 'a diagram' },
  { file: 'docs/reliability.md', starts: '  seed', kind: 'not-run', why: 'a report of a long fault run (npm run test:faults)' },
  { file: 'docs/reliability.md', starts: 'Faults injected', kind: 'not-run', why: 'a report of a long fault run (npm run test:faults)' },
  { file: 'docs/scripts.md', starts: '#!/bin/sh', kind: 'elsewhere', why: 'test/docs/scripts-examples.test.ts runs each marked script' },
  { file: 'docs/scripts.md', starts: '# m  h  dom', kind: 'not-run', why: 'a crontab line for the script run above' },
  { file: 'docs/security.md', starts: 'caller --stdin-->', kind: 'not-run', why: 'a diagram' },
  { file: 'docs/submission-interface.md', starts: 'envelope block', kind: 'not-run', why: 'the grammar in brief' },
  { file: 'docs/submission-interface.md', starts: 'protocol_name: ESMTP', kind: 'submission' },
  { file: 'docs/submission-interface.md', starts: 'sender: <>', kind: 'submission' },
  // What a refused option prints, broken in two to fit the page.
  { file: 'docs/man/mailsubmit-sendmail.8.md', starts: 'mailsubmit-sendmail: bad command line', kind: 'refusal' },
  { file: 'docs/man/mailsubmit-sendmail.8.md', starts: '{', kind: 'script' },
  { file: 'docs/man/mailsubmit-sendmail.8.md', starts: 'until mailsubmit-sendmail', kind: 'script' },
  { file: 'docs/man/mailsubmit-postfix-listener.8.md', starts: 'mailsubmit-postfix-listener add', kind: 'elsewhere', why: 'test/install/postfix-listener.test.ts runs it against a private Postfix, and the package tests in a booted Debian' },
  { file: 'docs/man/mailsubmit.1.md', starts: 'envelope block', kind: 'not-run', why: 'the grammar in brief' },
  { file: 'docs/man/mailsubmit.1.md', starts: 'sender: <alice@example.net>', kind: 'submission' },
  { file: 'docs/man/mailsubmit.1.md', starts: "$ printf 'sender: <%s>", kind: 'transcript' },
  { file: 'docs/man/mailsubmit.1.md', starts: '#!/bin/sh', kind: 'script' },
  { file: 'docs/man/mailsubmit.1.md', starts: 'case $from$rcpt in', kind: 'script' },
  { file: 'docs/man/mailsubmit.conf.5.md', starts: '# principal', kind: 'authorization-list' },
  { file: 'docs/man/mailsubmit.conf.5.md', starts: '# /etc/mailsubmit/authorized', kind: 'authorization-list' },
  { file: 'docs/man/mailsubmit.conf.5.md', starts: '# /etc/mailsubmit/mailsubmit.conf', kind: 'toml' },
  { file: 'docs/man/mailsubmit.conf.5.md', starts: '[[downstream]]', kind: 'toml' },
  { file: 'README.md', starts: '[[downstream]]', kind: 'toml' },
  // Before the general entry below: the first entry a block matches is its own.
  { file: 'docs/man/mailsubmitctl.8.md', starts: '# mailsubmitctl queue list', kind: 'elsewhere', why: 'packages/admin-cli/test/queue-command.test.ts prints it, word for word, from a queue whose messages are the example\'s' },
  { file: 'docs/man/mailsubmitctl.8.md', starts: '# mailsubmitctl', kind: 'transcript' },
  { file: 'docs/man/mailsubmitctl.8.md', starts: '$ mailsubmitctl', kind: 'transcript' },
  { file: 'docs/man/mailsubmitd.8.md', starts: '{"level":30', kind: 'not-run', why: "a log excerpt; the daemon's log tests check its fields" },
  { file: 'test/support/README.md', starts: '/**\n * The privileged path end to end', kind: 'elsewhere', why: 'test/e2e/smoke.test.ts, word for word (checked below), which the suite runs' },
];

function coverageOf(block: Block) {
  return COVERAGE.filter((c) => c.file === block.file && block.text.startsWith(c.starts));
}

const blocksOfKind = (kind: Kind) => BLOCKS.filter((b) => coverageOf(b)[0]?.kind === kind);
const where = (b: Block) => `${b.file}:${b.line}`;

describe('the code blocks of README.md, docs/ and the man pages', () => {
  it('are each run below, run by another test, or listed with the reason they are not commands', () => {
    expect(BLOCKS.length).toBeGreaterThan(30);
    const unlisted = BLOCKS.filter((b) => coverageOf(b).length === 0).map((b) => `${where(b)}: ${b.text.split('\n')[0]}`);
    expect(unlisted, 'add each to COVERAGE in test/docs/examples.test.ts, run').toEqual([]);
    const stale = COVERAGE.filter((c) => !BLOCKS.some((b) => coverageOf(b).includes(c))).map((c) => `${c.file}: ${c.starts}`);
    expect(stale).toEqual([]);
  });

  it("test/support/README.md's example is test/e2e/smoke.test.ts, word for word", () => {
    const example = BLOCKS.find((b) => b.file === 'test/support/README.md' && coverageOf(b)[0]?.kind === 'elsewhere');
    expect(example?.text).toBe(readFileSync(join(ROOT, 'test', 'e2e', 'smoke.test.ts'), 'utf8'));
  });

  it.each(blocksOfKind('toml').map((b) => [where(b), b] as const))('%s: the daemon parses the configuration', (_where, block) => {
    expect(() => parseConfig(block.text, where(block))).not.toThrow();
  });

  it.each(blocksOfKind('authorization-list').map((b) => [where(b), b] as const))('%s: the daemon parses each line of the authorization list', (_where, block) => {
    // Line by line: a block may show one principal's alternatives, (a) or (b), which a list could not hold together.
    const entries = block.text.split('\n').flatMap((line, i) => parseAuthorizationList(line, `${where(block)}+${i + 1}`));
    expect(entries.length).toBeGreaterThan(0);
  });

  it.each(blocksOfKind('submission').map((b) => [where(b), b] as const))('%s: mailsubmitctl validate accepts the submission', (_where, block) => {
    const result = spawnSync(process.execPath, [CTL, 'validate'], { input: block.text, encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^ok: /);
    expect(result.status).toBe(0);
  });

  it('mentions only configuration keys the parser knows', () => {
    const known = new Set(CONFIG_KEYS.map((k) => k.key));
    const unknown: string[] = [];
    for (const file of FILES) {
      readFileSync(join(ROOT, file), 'utf8')
        .split('\n')
        .forEach((line, i) => {
          for (const [, key] of line.matchAll(/`((?:daemon|downstream|limits|timeouts|queue)\.[a-z_]+)/g)) if (!known.has(key as string)) unknown.push(`${file}:${i + 1}: ${key}`);
        });
    }
    expect(known.size).toBeGreaterThan(20);
    expect(unknown).toEqual([]);
  });
});

interface Step {
  readonly command: string;
  readonly root: boolean;
  readonly output: string;
}

/** A transcript's commands, each with its prompt's user and the lines it prints. */
function stepsOf(text: string): Step[] {
  const steps: { command: string; root: boolean; output: string[] }[] = [];
  const lines = text.replace(/\n$/, '').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const prompt = /^([$#]) (.*)$/.exec(line);
    if (prompt === null) {
      const last = steps[steps.length - 1];
      if (last === undefined) throw new Error(`output before the first command: ${line}`);
      // Four spaces go on with a line broken to fit the page (two begin a line of its own).
      if (line.startsWith('    ') && last.output.length > 0) last.output.push(`${last.output.pop() as string} ${line.trimStart()}`);
      else last.output.push(line);
      continue;
    }
    const command = [prompt[2] as string];
    // A backslash continues the command; a here-document runs to its word.
    while (command[command.length - 1]?.endsWith('\\')) command.push(lines[++i] as string);
    const heredoc = /<<-?'?(\w+)'?/.exec(command.join('\n'))?.[1];
    if (heredoc !== undefined) while (lines[i] !== heredoc && i < lines.length) command.push(lines[++i] as string);
    steps.push({ command: command.join('\n'), root: prompt[1] === '#', output: [] });
  }
  return steps.map((s) => ({ ...s, output: s.output.length === 0 ? '' : `${s.output.join('\n')}\n` }));
}

describe.skipIf(process.getuid?.() !== 0)('the command examples, run on a staged install', () => {
  const sink = new RecordingSink();
  let postfix: PrivatePostfix;
  let ms: MailsubmitUnderTest;
  let user: TestUser;
  let bin: string;
  let work: string;
  let rootList: { file: string; text: string } | null = null;
  /** Staged path -> the installed path the examples name. */
  let installedNames: [string, string][];

  beforeAll(async () => {
    ({ postfix, ms } = await startMailPath(sink));
    bin = dirname(ms.helperPath);
    symlinkSync(ms.helperPath, join(bin, 'mailsubmit-sendmail'));
    // mailsubmitctl as installed, but reading the staged configuration.
    writeFileSync(join(bin, 'mailsubmitctl'), `#!/bin/sh\nexec ${process.execPath} ${CTL} -c ${ms.configPath} "$@"\n`, { mode: 0o755 });
    work = join(ms.dir, 'work');
    mkdirSync(work);
    user = ensureUser('mstdocex');
    chownSync(work, user.uid, user.gid);
    chmodSync(work, 0o755);
    installedNames = [
      [ms.configPath, '/etc/mailsubmit/mailsubmit.conf'],
      [ms.authorizationList, '/etc/mailsubmit/authorized'],
    ];
  }, 60_000);

  afterAll(() => tearDown(ms, postfix, sink));

  /** Runs `script` with sh as root or the test user, standard error into standard output. */
  function shell(script: string, root: boolean, cwd: string): { code: number | null; output: string } {
    const result = spawnSync('/bin/sh', ['-c', `exec 2>&1\n${script}`], {
      cwd,
      encoding: 'utf8',
      env: { PATH: `${bin}:${join(ROOT, 'node_modules', '.bin')}:/usr/local/bin:/usr/bin:/bin`, HOME: '/', LC_ALL: 'C.UTF-8' },
      ...(root ? {} : { uid: user.uid, gid: user.gid }),
      timeout: 60_000,
    });
    return { code: result.status, output: result.stdout };
  }

  /** Runs a transcript's commands in one shell and compares what each printed. */
  function runTranscript(block: Block, cwd: string): void {
    const steps = stepsOf(block.text);
    expect(steps.length, where(block)).toBeGreaterThan(0);
    const root = steps[0]?.root ?? false;
    for (const step of steps) expect(step.root, `${where(block)}: one user per transcript`).toBe(root);
    // A separator after each command; the command's status is kept for a following `echo $?`.
    const script = steps.map((s) => `${s.command}\n__status=$?; printf '\\036%d\\n' "$__status"; (exit $__status)`).join('\n');
    const { output } = shell(script, root, cwd);
    const printed = output.split(/\x1e(\d+)\n/);
    for (const [i, step] of steps.entries()) {
      let actual = printed[2 * i] ?? '';
      for (const [staged, installed] of installedNames) actual = actual.split(staged).join(installed);
      // The staged daemon reaches its private Postfix by TCP (the harness's); an install uses a private socket.
      actual = actual.replace(/^warning: downstream\.target 127\.0\.0\.1:\d+ is a TCP port: .*\n/m, '');
      const queueIds = (text: string) => text.replace(/(queued as )[0-9A-Za-z]+/g, '$1QUEUEID');
      expect(queueIds(actual), `${where(block)}: ${step.command}`).toBe(queueIds(step.output));
      // The exit status is the example's when it shows it, else success.
      if (steps[i + 1]?.command !== 'echo $?') expect(printed[2 * i + 1], `${where(block)}: ${step.command}: exit status`).toBe('0');
    }
    expect(printed.length, where(block)).toBe(2 * steps.length + 1);
  }

  it.each(blocksOfKind('transcript').map((b) => [where(b), b] as const))('%s: prints what the example shows', async (_where, block) => {
    // The list as install.sh ships it, then as the administrator's examples before on the page left it;
    // the `$` examples get the test user on it instead.
    const shipped = readFileSync(join(ROOT, 'install', 'files', 'authorized'), 'utf8').replaceAll('@AUTH_LIST@', '/etc/mailsubmit/authorized');
    if (rootList === null || rootList.file !== block.file) rootList = { file: block.file, text: shipped };
    writeFileSync(ms.authorizationList, block.text.startsWith('#') ? rootList.text : `${shipped}mstdocex\n`, { mode: 0o644 });
    const before = sink.messages.length;
    // README's validate example names its files relative to the source tree.
    runTranscript(block, /docs\/examples\/|node_modules\//.test(block.text) ? ROOT : work);
    if (block.text.startsWith('#')) rootList = { file: block.file, text: readFileSync(ms.authorizationList, 'utf8') };
    if (/\| mailsubmit|mailsubmit -v/.test(block.text)) {
      // What was queued reached the MTA and, through it, the sink, for a recipient the example names.
      const message = await sink.waitForMessage((m) => sink.messages.indexOf(m) >= before);
      const recipient = /^RCPT TO:<([^>]+)>/.exec(message.rcptTo[0] ?? '')?.[1] ?? '';
      expect(recipient).not.toBe('');
      expect(block.text, where(block)).toContain(recipient);
    }
  });

  it.each(blocksOfKind('refusal').map((b) => [where(b), b] as const))('%s: is what a refused option prints', (_where, block) => {
    const option = /option (-\w+) is not supported/.exec(block.text)?.[1];
    expect(option).toBeDefined();
    writeFileSync(ms.authorizationList, 'mstdocex\n', { mode: 0o644 });
    const { code, output } = shell(`mailsubmit-sendmail ${option} </dev/null`, false, work);
    // The page breaks the one line in two: joined again, it is the line printed.
    expect(output).toBe(`${block.text.replace(/\n\s+/g, ' ').trimEnd()}\n`);
    // With the exit status the page gives a bad command line.
    const status = /^\* (\d+):\n {2}bad command line/m.exec(readFileSync(join(ROOT, block.file), 'utf8'))?.[1];
    expect(status).toBeDefined();
    expect(code).toBe(Number(status));
  });

  /** What each script needs around it: its arguments, variables and files. */
  const SCRIPT_SETUP: Record<string, { args?: string; env?: string; files?: Record<string, string> }> = {
    'until mailsubmit-sendmail': { files: { 'report.txt': 'Subject: report\n\nAll well.\n' } },
    '#!/bin/sh': { args: 'prepared.txt', files: { 'prepared.txt': 'sender: <mstdocex@example.org>\nrecipient: <ops@example.org>\n\nSubject: prepared\n\nbody\n' } },
    'case $from$rcpt in': { env: 'from=mstdocex@example.org rcpt=ops@example.org', files: { 'message.eml': 'Subject: built\n\nbody\n' } },
  };

  it.each(blocksOfKind('script').map((b) => [where(b), b] as const))('%s: runs as shown and exits 0, the message handed to the MTA', async (_where, block) => {
    writeFileSync(ms.authorizationList, 'mstdocex\n', { mode: 0o644 });
    const setup = Object.entries(SCRIPT_SETUP).find(([starts]) => block.text.startsWith(starts))?.[1] ?? {};
    for (const [name, text] of Object.entries(setup.files ?? {})) writeFileSync(join(work, name), text, { mode: 0o644 });
    writeFileSync(join(work, 'example.sh'), block.text, { mode: 0o755 });
    const before = sink.messages.length;
    const { code, output } = shell(`${setup.env ?? ''} /bin/sh ./example.sh ${setup.args ?? ''}`, false, work);
    expect(output).toBe('');
    expect(code).toBe(0);
    const message = await sink.waitForMessage((m) => sink.messages.indexOf(m) >= before);
    expect(message.rcptTo.join(' ')).toContain('<ops@example.org>');
  });

  /**
   * The output quoted in the text of mailsubmitctl(8) and mailsubmit.conf(5),
   * each with the command that prints it on the staged install. FILE, LIST,
   * LINE, PRINCIPAL, HELPER, PATH and N stand for any word, `...` and a
   * closing `problem` for the rest of a line.
   */
  const INLINE: Record<string, () => string> = {
    'ok: 3 recipients, 2154 octets, 8bit': () => {
      const input = (padding: number) => `sender: <a@example.org>\nrecipient: b@example.org\nrecipient: c@example.org\nrecipient: d@example.org\n\nSubject: caf\u00e9\n\n${'x'.repeat(padding)}\n`;
      const octets = Number(/ (\d+) octets/.exec(shell(`printf '%s' '${input(0)}' | mailsubmitctl validate`, true, work).output)?.[1]);
      return shell(`printf '%s' '${input(2154 - octets)}' | mailsubmitctl validate`, true, work).output;
    },
    'mailsubmitctl: malformed recipient address: line 2: attribute "recipient": ...': () =>
      shell(`printf 'sender: <a@example.org>\\nrecipient: two words@example.org\\n\\nSubject: x\\n' | mailsubmitctl validate`, true, work).output,
    'allowed: LINE': () => shell('mailsubmitctl allow mstdocex', true, work).output,
    'updated: LINE': () => shell('mailsubmitctl allow mstdocex client', true, work).output,
    'denied: PRINCIPAL': () => shell('mailsubmitctl deny mstdocex', true, work).output,
    'ok: FILE; authorization list LIST, N entries': () => {
      writeFileSync(ms.authorizationList, 'mstdocex\nuid:4321\n', { mode: 0o644 });
      return shell('mailsubmitctl config check', true, work).output;
    },
    'mailsubmitctl: /etc/mailsubmit/mailsubmit.conf:3: daemon.sokcet: unknown key: did you mean daemon.socket? (known in [daemon]: ...)': () => typoCheck(),
    'FILE:3: daemon.sokcet: unknown key: did you mean daemon.socket?': () => typoCheck(),
    'warning: the helper HELPER connects to PATH, but daemon.socket is PATH': () => otherHelperCheck(),
    'warning: the helper HELPER checks callers against PATH, but daemon.authorization_list is PATH': () => otherHelperCheck(),
    'authorization list: INVALID: /etc/mailsubmit/authorized:3: unknown capability "clinet" ... (fix it; submissions get 75 until then)': () => invalidListStatus(),
    // mailsubmit.conf(5) on how an authorization list error reads, in the log and in status.
    'FILE:LINE: problem': () => invalidListStatus(),
    'mailsubmitctl: cannot hand mail to "NAME" as configured (see above)': () => {
      const unreachable = join(ms.dir, 'unreachable.conf');
      const text = readFileSync(ms.configPath, 'utf8');
      expect(text).toMatch(/^target = "[^"]+"$/m);
      writeFileSync(unreachable, text.replace(/^target = "[^"]+"$/m, `target = "unix:${join(ms.dir, 'nothing-listens-here')}"`), { mode: 0o644 });
      return shell(`mailsubmitctl config check --probe ${unreachable}`, true, work).output;
    },
  };
  const PLACEHOLDERS = /\b(?:FILE|LIST|LINE|PRINCIPAL|HELPER|PATH|NAME|N)\b/g;

  function invalidListStatus(): string {
    writeFileSync(ms.authorizationList, '# two lines\n# of comment\nmstdocex clinet\n', { mode: 0o644 });
    // The daemon reads the list again on a connection or a reload; status only reports.
    shell('mailsubmitctl reload', true, work);
    return shell('mailsubmitctl status', true, work).output;
  }

  function typoCheck(): string {
    const typo = join(ms.dir, 'typo.conf');
    writeFileSync(typo, `# mailsubmit.conf\n[daemon]\nsokcet = "${ms.socketPath}"\n`, { mode: 0o644 });
    return shell(`mailsubmitctl config check ${typo}`, true, work).output.split(typo).join('/etc/mailsubmit/mailsubmit.conf');
  }

  function otherHelperCheck(): string {
    const other = join(ms.dir, 'other-bin', 'mailsubmit');
    mkdirSync(dirname(other), { recursive: true });
    buildHelper({ out: other, socket: '/run/other/mailsubmit.sock', authorizationList: '/etc/other/authorized' });
    return shell(`mailsubmitctl config check --helper ${other}`, true, work).output;
  }

  it('every output quoted in the text of mailsubmitctl(8) and mailsubmit.conf(5) is one the program prints', () => {
    const quoted = ['docs/man/mailsubmitctl.8.md', 'docs/man/mailsubmit.conf.5.md'].flatMap((file) =>
      [...readFileSync(join(ROOT, file), 'utf8').matchAll(/`((?:mailsubmitctl: |ok: |allowed: |updated: |denied: |warning: |note: |authorization list: |FILE:)[^`]*\s[^`]*)`/g)].map((m) => (m[1] as string).replace(/\s+/g, ' ')),
    );
    expect(quoted.length).toBeGreaterThan(8);
    expect(quoted.filter((text) => INLINE[text] === undefined), 'add each to INLINE').toEqual([]);
    for (const text of quoted) {
      const pattern = text
        .replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
        .replace(/\\\.\\\.\\\./g, '.*')
        .replace(PLACEHOLDERS, '\\S+')
        .replace(/\bproblem$/, '.+');
      let printed = (INLINE[text] as () => string)();
      for (const [staged, installed] of installedNames) printed = printed.split(staged).join(installed);
      expect(printed.split('\n').filter((line) => new RegExp(`(^|: )${pattern}`).test(line)), `${text}\nnot in:\n${printed}`).not.toEqual([]);
    }
  });

  it('the envelope-building script refuses a value with a line break (exit 65), as it says', () => {
    const block = blocksOfKind('script').find((b) => b.text.startsWith('case $from$rcpt in'));
    expect(block).toBeDefined();
    writeFileSync(join(work, 'guard.sh'), block?.text ?? '', { mode: 0o755 });
    const { code, output } = shell(`from=a@example.org rcpt="$(printf 'ops@example.org\nrecipient: x@example.org')" /bin/sh ./guard.sh`, false, work);
    expect([code, output]).toEqual([65, 'a line break in an address\n']);
  });
});
