/**
 * The man pages: scripts/build-man.mjs turns each docs/man/*.md into roff
 * that groff renders without a single warning, with the sections the page
 * promises, within 80 columns. And the pages say what the code does: every
 * key the daemon's configuration parser knows, with its default and whether
 * only a restart applies it; every mailsubmitctl command and option; every
 * exit code of the status table and every outcome the log can name. Those
 * lists are read from the code (the parser's source, the commands' own
 * --help, the status table, the sendmail front door's option table), so a
 * key, command or option added without its page fails here.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_FULL_NAME_OCTETS, OUTCOMES, SENDMAIL_OPTION_LETTERS, statusOf } from '@mailsubmit/shared';
import { RESTART_KEYS } from '@mailsubmit/submit-daemon/documented-values';

const ROOT = join(import.meta.dirname, '..', '..');
const BUILD_MAN = join(ROOT, 'scripts', 'build-man.mjs');
// Rebuilt from the tree by test/global-setup.ts before every run.
const CTL = join(ROOT, 'packages', 'admin-cli', 'dist', 'mailsubmitctl.cjs');
const DAEMON = join(ROOT, 'packages', 'submit-daemon', 'dist', 'mailsubmitd.mjs');

const PAGES: Readonly<Record<string, readonly string[]>> = {
  'man1/mailsubmit.1': ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'OPTIONS', 'EXIT STATUS', 'SECURITY', 'FILES', 'EXAMPLES', 'SEE ALSO'],
  'man8/mailsubmit-sendmail.8': ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'OPTIONS', 'THE MESSAGE', 'LIMITS', 'EXIT STATUS', 'COMPATIBILITY', 'FILES', 'EXAMPLES', 'SEE ALSO'],
  'man5/mailsubmit.conf.5': ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'KEYS', 'THE AUTHORIZATION LIST', 'EXAMPLES', 'SEE ALSO'],
  'man8/mailsubmitctl.8': ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'OPTIONS', 'COMMANDS', 'EXIT STATUS', 'FILES', 'EXAMPLES', 'SEE ALSO'],
  'man8/mailsubmit-postfix-listener.8': ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'COMMANDS', 'OPTIONS', 'EXIT STATUS', 'FILES', 'EXAMPLES', 'SEE ALSO'],
  'man8/mailsubmitd.8': ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'OPTIONS', 'SIGNALS', 'EXIT STATUS', 'LOGGING', 'SECURITY', 'FILES', 'SEE ALSO'],
};

const ENV = { ...process.env, LC_ALL: 'C.UTF-8', MANWIDTH: '80', MAN_KEEP_FORMATTING: '', SOURCE_DATE_EPOCH: '1795000000' };

function run(command: string, args: readonly string[]): SpawnSyncReturns<string> {
  const result = spawnSync(command, args, { cwd: ROOT, env: ENV, encoding: 'utf8' });
  if (result.error) throw new Error(`${command} could not run (${result.error.message}): the tests need man-db and groff`);
  return result;
}

let out: string;
const rendered = new Map<string, string>();

beforeAll(() => {
  out = mkdtempSync(join(tmpdir(), 'man-pages-'));
  const build = run(process.execPath, [BUILD_MAN, '--out', out]);
  expect(build.stderr).toBe('');
  expect(build.status).toBe(0);
  for (const page of Object.keys(PAGES)) {
    const man = run('man', ['--warnings', '-l', join(out, page)]);
    expect(man.stderr, `man -l ${page}`).toBe('');
    expect(man.status).toBe(0);
    // Overstrike bold and underline, should man keep them anyway.
    rendered.set(page, man.stdout.replace(/.\x08/g, ''));
  }
});

afterAll(() => rmSync(out, { recursive: true, force: true }));

function page(name: string): string {
  const text = rendered.get(name);
  if (text === undefined) throw new Error(`${name} was not rendered`);
  return text;
}

/** Rendered sections by heading: headings start in column 0, in capitals. */
function sections(text: string): Map<string, string> {
  const found = new Map<string, string>();
  let heading: string | null = null;
  for (const line of text.split('\n')) {
    if (/^[A-Z][A-Z0-9 .-]*$/.test(line)) {
      heading = line;
      found.set(heading, '');
    } else if (heading !== null) {
      found.set(heading, `${found.get(heading)}${line}\n`);
    }
  }
  return found;
}

/** Subsections of a section: headings indented by three spaces. */
function subsections(text: string): Map<string, string> {
  const found = new Map<string, string>();
  let heading: string | null = null;
  for (const line of text.split('\n')) {
    if (/^ {3}\S/.test(line)) {
      heading = line.trim();
      found.set(heading, '');
    } else if (heading !== null) {
      found.set(heading, `${found.get(heading)}${line}\n`);
    }
  }
  return found;
}

function section(pageName: string, heading: string): string {
  const text = sections(page(pageName)).get(heading);
  if (text === undefined) throw new Error(`${pageName} has no ${heading} section`);
  return text;
}

const flat = (text: string) => text.replace(/\s+/g, ' ');

describe('the man pages as built', () => {
  it('are exactly the pages listed here', () => {
    const built = readdirSync(out).flatMap((dir) => readdirSync(join(out, dir)).map((file) => `${dir}/${file}`));
    expect(built.sort()).toEqual(Object.keys(PAGES).sort());
  });

  it.each(Object.keys(PAGES))('%s: groff -ww finds nothing to warn about', (name) => {
    const groff = run('groff', ['-t', '-man', '-Tutf8', '-ww', '-z', join(out, name)]);
    expect(groff.stderr).toBe('');
    expect(groff.status).toBe(0);
  });

  it.each(Object.entries(PAGES))('%s: has its sections, in order, within 80 columns', (name, expected) => {
    const text = page(name);
    expect([...sections(text).keys()]).toEqual(expected);
    for (const heading of expected) expect(flat(section(name, heading)).trim().length, heading).toBeGreaterThan(20);
    const wide = text.split('\n').filter((line) => line.length > 80);
    expect(wide).toEqual([]);
  });
});

/** Each key's description in mailsubmit.conf(5), by table.key. */
function documentedKeys(): Map<string, string> {
  const keys = new Map<string, string>();
  for (const [heading, text] of subsections(section('man5/mailsubmit.conf.5', 'KEYS'))) {
    const table = /^\[(\w+)\]$/.exec(heading)?.[1];
    if (table === undefined) continue;
    for (const block of text.split(/^(?= {7}\w+ \()/m)) {
      const key = /^ {7}(\w+) \(/.exec(block)?.[1];
      if (key !== undefined) keys.set(`${table}.${key}`, flat(block));
    }
  }
  return keys;
}

// Each key's type, range, default and opening sentence against the table of keys:
// packages/submit-daemon/test/config/config-keys.test.ts, from the page's source.
describe('mailsubmit.conf(5) as built', () => {
  it('marks exactly the keys that only a restart applies', () => {
    const documented = documentedKeys();
    expect(documented.size).toBeGreaterThan(30);
    const marked = [...documented].filter(([, text]) => /\bRestart\./.test(text)).map(([key]) => key);
    expect(marked.sort()).toEqual([...RESTART_KEYS].sort());
  });
});

interface CliCommand {
  readonly path: readonly string[];
  readonly options: readonly string[];
}

/** Commands and options from the program's own --help, walking into command groups. */
function commandsOf(program: string, path: readonly string[] = []): { options: string[]; commands: CliCommand[] } {
  const help = run(process.execPath, [program, ...path, '--help']);
  expect(help.status, `${path.join(' ')} --help`).toBe(0);
  const block = (title: string) => help.stdout.split(`\n${title}:\n`)[1]?.split('\n\n')[0] ?? '';
  const options = [...block('Options').matchAll(/^ {2}(?:-\w, )?(--[\w-]+)/gm)].map((m) => m[1] as string).filter((o) => o !== '--help');
  const commands: CliCommand[] = [];
  // A group's subcommands are listed by their full names (`queue list`, `queue show`): each group once.
  for (const name of new Set([...block('Commands').matchAll(/^ {2}([\w-]+)/gm)].map((m) => m[1] as string))) {
    if (name === 'help') continue;
    const child = commandsOf(program, [...path, name as string]);
    if (child.commands.length === 0) commands.push({ path: [...path, name as string], options: child.options });
    commands.push(...child.commands);
  }
  return { options, commands };
}

describe('mailsubmitctl(8) and the commands registered in packages/admin-cli/src', () => {
  const cli = commandsOf(CTL);

  it('has a subsection with its exit status for every command, and none for a command that does not exist', () => {
    const documented = subsections(section('man8/mailsubmitctl.8', 'COMMANDS'));
    const names = cli.commands.map((c) => c.path.join(' '));
    expect(names).toContain('validate');
    expect([...documented.keys()].sort()).toEqual([...names].sort());
    for (const name of names) expect(documented.get(name), name).toMatch(/Exit status: 0[ ;]/);
  });

  it("documents every command's options in its subsection, and the global ones under OPTIONS", () => {
    const documented = subsections(section('man8/mailsubmitctl.8', 'COMMANDS'));
    for (const command of cli.commands) {
      for (const option of command.options) expect(documented.get(command.path.join(' ')), `${command.path.join(' ')} ${option}`).toContain(option);
    }
    expect(cli.options.length).toBeGreaterThan(0);
    for (const option of cli.options) expect(section('man8/mailsubmitctl.8', 'OPTIONS')).toContain(option);
  });

  it('lists every command in the SYNOPSIS', () => {
    const synopsis = flat(section('man8/mailsubmitctl.8', 'SYNOPSIS'));
    for (const command of cli.commands) expect(synopsis).toContain(`mailsubmitctl ${command.path.join(' ')}`);
  });
});

describe('mailsubmitd(8) and the daemon', () => {
  it("documents every option of the daemon's command line", () => {
    const { options } = commandsOf(DAEMON);
    expect(options).toContain('--config');
    for (const option of options) expect(section('man8/mailsubmitd.8', 'OPTIONS')).toContain(option);
  });

  it('names every outcome of the status table that the log can carry as status', () => {
    const logging = section('man8/mailsubmitd.8', 'LOGGING');
    for (const outcome of OUTCOMES) expect(logging, outcome).toMatch(new RegExp(`(^|[\\s,])${outcome}[\\s,.]`));
  });
});

describe('mailsubmit(1) and the status table', () => {
  const codes = new Map(OUTCOMES.map((outcome) => [statusOf(outcome).exitCode, statusOf(outcome).exitName]));

  it('has a row for every exit code the status table uses, with its sysexits name, and no other', () => {
    const table = section('man1/mailsubmit.1', 'EXIT STATUS');
    const rows = [...table.matchAll(/^ {7}([0-9]+) +(EX_[A-Z]+) /gm)].map((m) => `${m[1]} ${m[2]}`);
    expect(rows.sort()).toEqual([...codes].map(([code, name]) => `${code} ${name}`).sort());
  });
});

describe('mailsubmit-sendmail(8) and the option parser', () => {
  it('documents every option letter the parser knows under OPTIONS, and each in the SYNOPSIS', () => {
    const options = section('man8/mailsubmit-sendmail.8', 'OPTIONS');
    const synopsis = section('man8/mailsubmit-sendmail.8', 'SYNOPSIS');
    expect(SENDMAIL_OPTION_LETTERS.length).toBeGreaterThan(5);
    for (const letter of SENDMAIL_OPTION_LETTERS) {
      // -o exists only as -oi.
      const shown = letter === 'o' ? '-oi' : `-${letter}`;
      expect(options, shown).toMatch(new RegExp(`^ {7}(-\\w+, )*${shown}\\b`, 'm'));
      if (letter !== 'o') expect(synopsis, shown).toContain(`-${letter}`);
    }
  });

  it('gives the -F limit the parser applies', () => {
    expect(flat(section('man8/mailsubmit-sendmail.8', 'OPTIONS'))).toContain(`At most ${MAX_FULL_NAME_OCTETS} octets`);
  });

  it('has an entry for every exit code of the status table', () => {
    const table = section('man8/mailsubmit-sendmail.8', 'EXIT STATUS');
    for (const outcome of OUTCOMES) expect(table, outcome).toMatch(new RegExp(`^ {7}(\\d+, )*${statusOf(outcome).exitCode}(, \\d+)*(\\s|$)`, 'm'));
  });
});

describe('scripts/build-man.mjs', () => {
  let source: string;
  let target: string;

  beforeAll(() => {
    source = mkdtempSync(join(tmpdir(), 'man-source-'));
    target = mkdtempSync(join(tmpdir(), 'man-out-'));
  });
  afterAll(() => {
    rmSync(source, { recursive: true, force: true });
    rmSync(target, { recursive: true, force: true });
  });

  function build(markdown: string): SpawnSyncReturns<string> {
    writeFileSync(join(source, 'demo.7.md'), markdown);
    return run(process.execPath, [BUILD_MAN, '--source', source, '--out', target]);
  }

  it('turns each construct into its roff and escapes what roff would read as a command', () => {
    const result = build(
      [
        '# demo(7) -- a page with everything',
        '## USE',
        'Plain, **bold**, *italic* and `code-with-dashes`, a [link](https://example.org) and a\\',
        'hard break; snake_case stays.',
        '* a bullet',
        '* `-x`:',
        '  the definition',
        '',
        '  its second paragraph',
        '```',
        '.not a request \\ back',
        '```',
        '| a | b |',
        '|---|---|',
        '| 1 | two |',
      ].join('\n'),
    );
    expect(result.stderr).toBe('');
    const roff = readFileSync(join(target, 'man7', 'demo.7'), 'utf8');
    expect(roff.split('\n')[0]).toBe("'\\\" t");
    expect(roff).toContain('.TH "DEMO" "7" "2026-11-18"');
    expect(roff).toContain('demo \\- a page with everything');
    expect(roff).toContain('\\fBbold\\fR, \\fIitalic\\fR and \\fBcode\\-with\\-dashes\\fR, a link and a\n.br\nhard break; snake_case stays.');
    expect(roff).toContain('.IP \\(bu 2\na bullet\n.TP\n\\fB\\-x\\fR\nthe definition\n.IP ""\nits second paragraph');
    expect(roff).toContain('.nf\n\\&.not a request \\e back\n.fi');
    expect(roff).toMatch(/\.TS\n[^\n]*;\nlb lb\nl l\.\na\tb\n1\ttwo\n\.TE/);
    const groff = run('groff', ['-t', '-man', '-Tutf8', '-ww', '-z', join(target, 'man7', 'demo.7')]);
    expect(groff.stderr).toBe('');
  });

  it('refuses markup it does not know, naming the file and line', () => {
    const unclosed = build('# demo(7) -- x\n## A\ntext **never closed\n');
    expect(unclosed.status).toBe(1);
    expect(unclosed.stderr).toMatch(/demo\.7\.md:3: unclosed \*\*/);
    const wrongTitle = build('# other(7) -- x\n');
    expect(wrongTitle.status).toBe(1);
    expect(wrongTitle.stderr).toMatch(/demo\.7\.md:1: the title says other\(7\)/);
    const stray = build('# demo(7) -- x\n## A\n  indented\n');
    expect(stray.stderr).toMatch(/demo\.7\.md:3: indented text outside a list item/);
  });
});
