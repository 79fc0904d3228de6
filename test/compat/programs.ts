/**
 * The programs the compatibility suite runs side by side through Postfix's
 * sendmail and mailsubmit-sendmail (real-programs.test.ts), and the table of
 * them in docs/compatibility.md (compatibility-doc.test.ts).
 *
 * Every program sends the same message, as far as it can: the subject, the
 * UTF-8 text (with one line longer than SMTP's 998 octets) and, where the
 * program makes MIME, the CSV attachment below. Each is started the way it
 * is used, so that it calls /usr/sbin/sendmail with its own default
 * arguments; `argv` is what it passes (checked against a recording wrapper),
 * `{host}` standing for this machine's name.
 *
 * `masks` name what each run of the program generates itself (a MIME
 * boundary, a Content-ID, a timestamp in the text): only that is masked, in
 * the message of each run separately, on top of comparable() (Received, and
 * the values of Date and Message-ID, which most of these programs write
 * themselves, and which Postfix adds where they do not).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const SUBJECT = 'Quarterly report: Grüße aus Köln';
/** One line of 1,400 octets: longer than SMTP's 998, shorter than Postfix's line_length_limit (2048). */
export const LONG_LINE = `Measurements: ${Array.from({ length: 200 }, (_, i) => `m${String(i).padStart(3, '0')}=${i % 10}`).join(',')}`.slice(0, 1400);
export const TEXT = [
  'Hello Bob,',
  '',
  'the figures for the third quarter are attached. Übersicht: 12 % more than',
  'in the second quarter — ça va, and the café in Zürich is still open.',
  '',
  LONG_LINE,
  '',
  'Regards,',
  'Ann',
  '',
].join('\n');
export const ATTACHMENT = 'region,revenue\nNord,1200\nSüd,980\nWest,1130\n';
export const RECIPIENT = 'bob@example.org';

export const PROGRAM_DIR = new URL('./programs/', import.meta.url).pathname;

/** What each run generates itself, masked in that run's message only. */
export type Mask = 'boundary' | 'content-id' | 'logwatch-start';

export interface Prepared {
  readonly command: readonly string[];
  readonly input?: string;
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
}

export interface ProgramCase {
  /** The program column of the table. */
  readonly name: string;
  /** The Debian package whose version the table gives, or `npm:<name>`. */
  readonly package: string;
  /** The sendmail arguments the program passes, as recorded; `{host}` is this machine's name. */
  readonly argv: readonly string[];
  readonly masks: readonly Mask[];
  /**
   * A difference from Postfix's sendmail still open: the table says it, and
   * the agreement test is expected to fail (vitest `it.fails`) until it is gone.
   */
  readonly knownDifference?: string;
  /** Writes what the run needs into `dir` (fresh for each run) and says how to start the program. */
  prepare(dir: string): Prepared;
}

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The message pieces every program reads, and a home of its own, in `dir`. */
export function writeMessageFiles(dir: string): void {
  mkdirSync(join(dir, 'home'), { recursive: true });
  writeFileSync(join(dir, 'subject.txt'), `${SUBJECT}\n`);
  writeFileSync(join(dir, 'body.txt'), TEXT);
  writeFileSync(join(dir, 'report.csv'), ATTACHMENT);
}

function environment(dir: string, extra: Record<string, string> = {}): Record<string, string> {
  return { PATH, HOME: join(dir, 'home'), LANG: 'C.UTF-8', LOGNAME: 'root', USER: 'root', ...extra };
}

/**
 * Perl's hash order changes from run to run, and Mail::Mailer writes the
 * header fields it is given in a hash in that order: a fixed seed makes both
 * runs write the same order.
 */
function perlEnvironment(dir: string): Record<string, string> {
  return environment(dir, { PERL_HASH_SEED: '0', PERL_PERTURB_KEYS: '0' });
}

function script(name: string): string {
  return join(PROGRAM_DIR, name);
}

/** nmh: a profile, a draft with an Attach: header (send runs mhbuild), and mts.conf choosing how post reaches sendmail. */
function nmh(dir: string, mts: 'sendmail/pipe' | 'sendmail/smtp'): Prepared {
  const home = join(dir, 'home');
  mkdirSync(join(home, 'Mail'), { recursive: true });
  writeFileSync(join(home, '.mh_profile'), 'Path: Mail\n');
  writeFileSync(join(dir, 'mts.conf'), `mts: ${mts}\nsendmail: /usr/sbin/sendmail\n`);
  writeFileSync(
    join(dir, 'draft'),
    `From: Ann Example <ann@example.org>\nTo: ${RECIPIENT}\nSubject: ${SUBJECT}\nAttach: ${join(dir, 'report.csv')}\n--------\n${TEXT}`,
  );
  return {
    command: ['/usr/bin/mh/send', '-nopush', join(dir, 'draft')],
    env: environment(dir, { MH: join(home, '.mh_profile'), MHMTSCONF: join(dir, 'mts.conf') }),
  };
}

/** Mutt and NeoMutt in batch mode, the text on standard input. */
function mutt(name: string, debianPackage: string, binary: string): ProgramCase {
  return {
    name,
    package: debianPackage,
    argv: ['-oem', '-oi', '--', RECIPIENT],
    masks: ['boundary'],
    prepare: (dir) => ({ command: [binary, '-s', SUBJECT, '-a', join(dir, 'report.csv'), '--', RECIPIENT], input: TEXT, env: environment(dir) }),
  };
}

export const PROGRAM_CASES: readonly ProgramCase[] = [
  {
    name: 'cron (a job that prints output)',
    package: 'cron',
    argv: ['-FCronDaemon', '-i', '-B8BITMIME', '-oem', RECIPIENT],
    masks: [],
    prepare(dir) {
      const job = join(dir, 'job.sh');
      writeFileSync(job, `#!/bin/sh\ncat '${join(dir, 'body.txt')}'\ntouch '${join(dir, 'job-done')}'\n`);
      chmodSync(job, 0o755);
      const crontab = join(dir, 'crontab');
      writeFileSync(crontab, `SHELL=/bin/sh\nMAILTO=${RECIPIENT}\n@reboot root ${job}\n`);
      chmodSync(crontab, 0o644);
      return { command: ['/bin/sh', script('cron-reboot-job.sh'), crontab, join(dir, 'job-done')], env: environment(dir) };
    },
  },
  {
    name: 'bsd-mailx `mail -s`',
    package: 'bsd-mailx',
    argv: ['-i', '-t'],
    masks: [],
    prepare: (dir) => ({ command: ['/usr/bin/bsd-mailx', '-s', SUBJECT, RECIPIENT], input: TEXT, env: environment(dir) }),
  },
  {
    name: 's-nail `-s -a`',
    package: 's-nail',
    argv: ['-i', '--', RECIPIENT],
    masks: ['boundary'],
    prepare: (dir) => ({ command: ['/usr/bin/s-nail', '-s', SUBJECT, '-a', join(dir, 'report.csv'), RECIPIENT], input: TEXT, env: environment(dir) }),
  },
  {
    name: 'GNU Mailutils `mail -s -A`',
    package: 'mailutils',
    argv: ['-oi', '-f', 'root@{host}', '-t'],
    masks: ['boundary', 'content-id'],
    prepare: (dir) => ({ command: ['/usr/bin/mail.mailutils', '-s', SUBJECT, '-A', join(dir, 'report.csv'), RECIPIENT], input: TEXT, env: environment(dir) }),
  },
  mutt('Mutt batch mode `-s -a`', 'mutt', '/usr/bin/mutt'),
  mutt('NeoMutt batch mode `-s -a`', 'neomutt', '/usr/bin/neomutt'),
  {
    name: 'nmh `send` (post, mts sendmail/pipe)',
    package: 'nmh',
    argv: ['-t', '-i'],
    masks: ['content-id'],
    prepare: (dir) => nmh(dir, 'sendmail/pipe'),
  },
  {
    name: 'nmh `send` (post, mts sendmail/smtp)',
    package: 'nmh',
    argv: ['-bs', '-odb', '-oem', '-om'],
    masks: ['content-id'],
    prepare: (dir) => nmh(dir, 'sendmail/smtp'),
  },
  {
    name: 'Perl MIME::Lite `send`',
    package: 'libmime-lite-perl',
    argv: ['-t', '-oi', '-oem', '-fann@example.org'],
    masks: ['boundary'],
    prepare: (dir) => ({ command: ['/usr/bin/perl', script('perl-mime-lite.pl'), dir], env: perlEnvironment(dir) }),
  },
  {
    name: "Perl Mail::Mailer 'sendmail'",
    package: 'libmailtools-perl',
    argv: ['-t'],
    masks: [],
    prepare: (dir) => ({ command: ['/usr/bin/perl', script('perl-mail-mailer.pl'), dir], env: perlEnvironment(dir) }),
  },
  {
    name: 'Perl Email::Sender::Simple',
    package: 'libemail-sender-perl',
    argv: ['-i', '-f', 'ann@example.org', '--', RECIPIENT],
    masks: [],
    prepare: (dir) => ({ command: ['/usr/bin/perl', script('perl-email-sender.pl'), dir], env: perlEnvironment(dir) }),
  },
  {
    name: 'PHP `mail()`, default sendmail_path',
    package: 'php8.2-cli',
    argv: ['-t', '-i'],
    masks: [],
    prepare: (dir) => ({ command: ['/usr/bin/php', script('php-mail.php'), dir], env: environment(dir) }),
  },
  {
    name: 'git send-email `--smtp-server=/usr/sbin/sendmail`',
    package: 'git-email',
    argv: ['-i', RECIPIENT, 'ann@example.org'],
    masks: [],
    prepare(dir) {
      const repo = join(dir, 'repo');
      const env = environment(dir, {
        GIT_AUTHOR_NAME: 'Ann Example',
        GIT_AUTHOR_EMAIL: 'ann@example.org',
        GIT_COMMITTER_NAME: 'Ann Example',
        GIT_COMMITTER_EMAIL: 'ann@example.org',
        GIT_AUTHOR_DATE: '2026-10-01T09:00:00+02:00',
        GIT_COMMITTER_DATE: '2026-10-01T09:00:00+02:00',
      });
      const git = (...args: string[]) => execGit(repo, env, args);
      mkdirSync(repo);
      git('init', '-q');
      copyFileSync(join(dir, 'report.csv'), join(repo, 'report.csv'));
      writeFileSync(join(repo, 'NOTES'), `${LONG_LINE}\n`);
      git('add', 'report.csv', 'NOTES');
      git('commit', '-q', '-m', `${SUBJECT}\n\n${TEXT}`);
      git('format-patch', '-q', '-1', '-o', join(dir, 'patches'));
      return {
        command: ['/usr/bin/git', 'send-email', '--smtp-server=/usr/sbin/sendmail', `--to=${RECIPIENT}`, '--confirm=never', '--quiet', join(dir, 'patches')],
        env,
        cwd: repo,
      };
    },
  },
  {
    name: 'Python `email` + subprocess `sendmail -t -i` (as Django sendmail backends)',
    package: 'python3',
    argv: ['-t', '-i'],
    masks: ['boundary'],
    prepare: (dir) => ({ command: ['/usr/bin/python3', script('python-email.py'), dir], env: environment(dir) }),
  },
  {
    name: 'Ruby mail gem, `delivery_method :sendmail`',
    package: 'ruby-mail',
    argv: ['-i', '-f', 'ann@example.org', '--', RECIPIENT],
    masks: ['boundary', 'content-id'],
    prepare: (dir) => ({ command: ['/usr/bin/ruby', script('ruby-mail.rb'), dir], env: environment(dir) }),
  },
  {
    name: 'logwatch `--mailto`',
    package: 'logwatch',
    argv: ['-t'],
    masks: ['logwatch-start'],
    prepare(dir) {
      const logs = join(dir, 'logs');
      mkdirSync(logs);
      writeFileSync(
        join(logs, 'auth.log'),
        'Oct  1 09:00:01 vm sshd[100]: Accepted publickey for ann from 192.0.2.7 port 50000 ssh2: ED25519 SHA256:abc\n' +
          'Oct  1 09:02:01 vm sshd[101]: Failed password for invalid user guest from 198.51.100.9 port 40000 ssh2\n',
      );
      return {
        command: ['/usr/sbin/logwatch', '--mailto', RECIPIENT, '--logdir', logs, '--range', 'all', '--detail', 'high', '--service', 'sshd'],
        env: environment(dir),
      };
    },
  },
  {
    name: 'nodemailer sendmail transport',
    package: 'npm:nodemailer',
    argv: ['-i', '-f', 'ann@example.org', RECIPIENT],
    masks: ['boundary'],
    prepare: (dir) => ({
      command: [process.execPath, script('nodemailer-send.cjs'), dir],
      env: environment(dir),
    }),
  },
];

function execGit(repo: string, env: Record<string, string>, args: readonly string[]): void {
  execFileSync('git', ['-C', repo, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * Masks what `masks` say this run generated itself: MIME boundaries (every
 * occurrence of each boundary= value the message declares), Content-ID
 * values, logwatch's "Processing Initiated" time.
 */
export function maskGenerated(content: string, masks: readonly Mask[]): string {
  let out = content;
  if (masks.includes('boundary')) {
    const boundaries = [...out.matchAll(/boundary="?([^";\n]+)"?/gi)].map((m) => m[1] as string);
    boundaries.forEach((boundary, index) => {
      out = out.split(boundary).join(`(boundary ${index + 1})`);
    });
  }
  if (masks.includes('content-id')) out = out.replace(/^(Content-ID:\s*)<[^>\n]*>/gim, '$1(generated)');
  if (masks.includes('logwatch-start')) out = out.replace(/^(\s*Processing Initiated: ).*$/m, '$1(generated)');
  return out;
}

const ROOT = join(import.meta.dirname, '..', '..');

function installedVersion(program: ProgramCase): string {
  if (program.package.startsWith('npm:')) {
    const name = program.package.slice('npm:'.length);
    const manifest = JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string };
    return `${name} ${manifest.version} (npm)`;
  }
  return `${program.package} ${execFileSync('dpkg-query', ['-W', '-f=${Version}', program.package], { encoding: 'utf8' })}`;
}

/** The table of docs/compatibility.md's "Programs" section, as the suite describes it. */
export function programsTable(): string {
  const rows = PROGRAM_CASES.map((program) => {
    const call = ['sendmail', ...program.argv].join(' ').replace('{host}', '<host>');
    const result = program.knownDifference === undefined ? 'same as Postfix' : `differs: ${program.knownDifference}`;
    return `| ${program.name.replace(/\|/g, '\\|')} | ${installedVersion(program)} | \`${call}\` | ${result} |`;
  });
  return ['| program | version | how it calls sendmail | result |', '|---|---|---|---|', ...rows].join('\n');
}
