/**
 * The sendmail-style command line (mailsubmit-sendmail(8)): options as
 * sendmail(1) callers write them, clustered or not (`-ti`, `-fuser@x`,
 * `-f user@x`, `-oi`), `--` ending them, then recipients.
 *
 * The reference is Postfix's sendmail(1), option by option (its getopt list
 * "A:B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:imno:p:r:q:tvx" and the checks after it):
 * an option it accepts and ignores (`-oem` and `-B8BITMIME` from cron, `-h`,
 * `-L`, `-O`, `-U`, -XV, ...) is accepted and ignored here too; an option it
 * refuses is refused here, for the same reason (`-n`, `-bu`, `-qx`, `-t`
 * outside delivery mode, `-bv` with `-t`, `-N` or `-v`, a recipient in a
 * mode that takes none). The mode (`-b`, `-I`, `-q`) is the last one given,
 * as in Postfix: delivery (`-bm`, the default), an SMTP dialogue on standard
 * input and output (`-bs`), or one of the MTA's own tools (`-bp`, `-q`,
 * `-bi`, `-bd`), which the daemon answers without reading any mail. As in
 * Postfix (getopt with "+"), options end at the first recipient; an
 * option-looking argument after a recipient is refused, instead of becoming
 * a recipient named "-x" that the MTA would bounce.
 *
 * Every value is checked here: -N and -R by parseNotify and
 * parseReturnOption, -V as Postfix checks it (at most 100 printable ASCII
 * characters, spaces included: it goes out xtext-encoded), each ignored when
 * it fails, as Postfix ignores them; -f and the recipients by parseAddress.
 */
import type { Address, NotifyKeyword, ReturnOption } from '../envelope/envelope.ts';
import { parseAddress } from '../envelope/address.ts';
import { parseNotify, parseReturnOption } from '../envelope/dsn-values.ts';
import { utf8Octets } from '../envelope/characters.ts';
import { isSubmissionError, SubmissionError } from '../errors.ts';
import { parseAddressList } from './address-list.ts';

/**
 * What the command asks for (Postfix's modes):
 * - deliver: a submission (-bm, the default; -bv too, see `verify`);
 * - smtp: -bs, an SMTP dialogue on standard input and output;
 * - list-queue: -bp, Postfix runs `postqueue -p`;
 * - flush-queue: -q, -qR site, -qI id, Postfix runs `postqueue -f/-s/-i`;
 * - aliases: -bi, -I, Postfix runs `postalias` (newaliases);
 * - daemon: -bd, -bl, Postfix runs `postfix start`;
 * - nothing: -bh, -bH, or -q with an interval outside -bd: Postfix exits 0 at once.
 */
export type SendmailMode = 'deliver' | 'smtp' | 'list-queue' | 'flush-queue' | 'aliases' | 'daemon' | 'nothing';

export interface SendmailCommand {
  readonly mode: SendmailMode;
  /** -bv: verify the recipients instead of delivering (Postfix mails a report); mode stays deliver. */
  readonly verify: boolean;
  /** -f; absent: the caller's login name is the sender. */
  readonly sender?: Address;
  /** -F: the full name for a From: header the daemon adds. */
  readonly fullName?: string;
  /** -i / -oi: a line of a single dot is data, not the end of the message. */
  readonly ignoreDots: boolean;
  /** -t: recipients are also read from the header section. */
  readonly extractRecipients: boolean;
  readonly notify?: readonly NotifyKeyword[];
  readonly returnOption?: ReturnOption;
  readonly envelopeId?: string;
  /** -v: print the MTA's queue id on success. */
  readonly verbose: boolean;
  /** The command-line recipients, validated, in order. */
  readonly recipients: readonly Address[];
}

/** Where each option takes its value from, if it takes one: Postfix's getopt list. */
const OPTIONS: Readonly<Record<string, 'flag' | 'value'>> = {
  f: 'value',
  r: 'value',
  F: 'value',
  i: 'flag',
  o: 'value',
  t: 'flag',
  N: 'value',
  R: 'value',
  V: 'value',
  B: 'value',
  b: 'value',
  G: 'flag',
  I: 'flag',
  q: 'value',
  X: 'value',
  v: 'flag',
  // Refused by Postfix's sendmail by name ("-n option not supported").
  n: 'flag',
  // Accepted and ignored, as Postfix's sendmail ignores them.
  A: 'value',
  C: 'value',
  L: 'value',
  O: 'value',
  U: 'flag',
  c: 'flag',
  e: 'value',
  h: 'value',
  m: 'flag',
  p: 'value',
  x: 'flag',
};

/** Option letters Postfix's sendmail ignores; mailsubmit-sendmail(8) names them under COMPATIBILITY. */
export const IGNORED_OPTION_LETTERS: readonly string[] = Object.freeze(['A', 'C', 'L', 'O', 'U', 'c', 'e', 'h', 'm', 'p', 'x']);

/** Every option letter this front door acts on; mailsubmit-sendmail(8) documents each (test/docs checks). */
export const SENDMAIL_OPTION_LETTERS: readonly string[] = Object.freeze(Object.keys(OPTIONS).filter((letter) => !IGNORED_OPTION_LETTERS.includes(letter)));

/** -F is a header value; anything longer than this is not a name. */
export const MAX_FULL_NAME_OCTETS = 200;

/** Postfix's limit on -V: a longer value is ignored. */
export const MAX_SENDMAIL_ENVID_CHARS = 100;

/** Postfix's verp_filter default: the characters -XV may name as delimiters. */
const VERP_FILTER = '-=+';

export const SENDMAIL_PAGE = 'mailsubmit-sendmail(8)';

const utf8 = new TextDecoder('utf-8', { fatal: true });

function usage(detail: string, attribute?: string): never {
  throw new SubmissionError('usage', detail, attribute !== undefined ? { attribute } : {});
}

/**
 * -N and -R values the envelope's validators refuse are ignored, as
 * Postfix's sendmail ignores a bad -N (with a warning) and every -R: the
 * message still goes, with the MTA's defaults for what was ignored.
 */
function orIgnored<T>(check: () => T): T | undefined {
  try {
    return check();
  } catch (error) {
    if (isSubmissionError(error) && error.outcome === 'envelope-syntax') return undefined;
    throw error;
  }
}

function decodeArgument(arg: string | Uint8Array, index: number): string {
  if (typeof arg === 'string') return arg;
  try {
    return utf8.decode(arg);
  } catch {
    return usage(`argument ${index} is not valid UTF-8`);
  }
}

interface Draft {
  mode: SendmailMode;
  verify: boolean;
  /** -q with an interval: Postfix exits 0 at once unless in daemon mode. */
  queueInterval: boolean;
  /** -qR site or -qI id: only in delivery mode. */
  flushWhat?: 'qR' | 'qI';
  sender?: Address;
  fullName?: string;
  ignoreDots: boolean;
  extractRecipients: boolean;
  notify?: readonly NotifyKeyword[];
  returnOption?: ReturnOption;
  envelopeId?: string;
  /** How often -v was given: once asks for the queue id, more is Postfix's verbose logging. */
  verbose: number;
}

/** What Postfix names each mode in "... mode requires no recipient". */
const MODE_NAMES: Readonly<Record<SendmailMode, string>> = {
  deliver: 'delivery',
  smtp: 'stand-alone',
  'list-queue': 'display queue',
  'flush-queue': 'flush queue',
  aliases: 'alias initialization',
  daemon: 'daemon',
  nothing: 'this',
};

/**
 * Parses the arguments after argv[0]. Throws SubmissionError: usage for an
 * unknown option, a missing value, a bad option value or options that
 * conflict; the address outcomes (sender-syntax, recipient-syntax,
 * address-too-long) for -f and the recipients, as for a native envelope.
 */
export function parseSendmailCommand(args: readonly (string | Uint8Array)[]): SendmailCommand {
  const draft: Draft = { mode: 'deliver', verify: false, queueInterval: false, ignoreDots: false, extractRecipients: false, verbose: 0 };
  const written = args.map((arg, index) => decodeArgument(arg, index + 1));
  let index = 0;
  for (; index < written.length; index++) {
    let arg = written[index] as string;
    if (arg === '--') {
      index++;
      break;
    }
    if (!arg.startsWith('-') || arg === '-') break;
    // Postfix looks at these whole arguments before getopt does.
    if (arg === '-q') {
      if (draft.mode !== 'daemon') draft.mode = 'flush-queue';
      continue;
    }
    if (arg === '-V' && index + 1 < written.length && (written[index + 1] as string).length === 2) {
      // Postfix's old -V xy (VERP) becomes -XV, and xy is left to be read next: as a recipient.
      continue;
    }
    if (arg.startsWith('-V') && arg.length === 4) arg = `-X${arg.slice(1)}`;
    if (arg === '-XV') continue;
    for (let at = 1; at < arg.length; at++) {
      const letter = arg[at] as string;
      const kind = Object.hasOwn(OPTIONS, letter) ? OPTIONS[letter] : undefined;
      if (kind === undefined) refuseOption(arg, at);
      if (kind === 'flag') {
        applyFlag(draft, letter);
        continue;
      }
      let value: string;
      if (at + 1 < arg.length) {
        value = arg.slice(at + 1);
      } else {
        if (index + 1 >= written.length) usage(`option -${letter} needs a value (see ${SENDMAIL_PAGE})`);
        value = written[++index] as string;
      }
      applyValue(draft, letter, value);
      break;
    }
  }
  const recipients: Address[] = [];
  // Everything from the first recipient on is a recipient, an argument that looks like an
  // option included: Postfix's sendmail stops reading options there too (`a@b -x` sends to
  // `-x`, which the MTA then bounces).
  for (let at = index; at < written.length; at++) {
    const arg = written[at] as string;
    for (const spec of parseAddressList(arg, { attribute: 'recipient' })) {
      recipients.push(parseAddress(spec, 'recipient', { attribute: 'recipient' }));
    }
  }
  checkConflicts(draft, written.length > index);
  // -bv stays in delivery mode, so Postfix wants recipients for it as for a message.
  if (draft.verify && draft.mode === 'deliver' && recipients.length === 0 && !draft.queueInterval) {
    usage('recipient addresses must be specified on the command line or via the -t option');
  }
  const { queueInterval, flushWhat, verbose, ...command } = draft;
  // -q with an interval outside daemon mode: Postfix's sendmail exits 0 before anything else;
  // -qR and -qI in delivery mode flush (postqueue -s, postqueue -i).
  const mode: SendmailMode = queueInterval && draft.mode !== 'daemon' ? 'nothing' : flushWhat !== undefined ? 'flush-queue' : draft.mode;
  return Object.freeze({ ...command, mode, verbose: verbose > 0, recipients: Object.freeze(recipients) });
}

/** Postfix's checks after its getopt loop, in its order. */
function checkConflicts(draft: Draft, hasRecipients: boolean): void {
  if (draft.extractRecipients && draft.mode !== 'deliver') usage('-t can be used only in delivery mode');
  if (draft.flushWhat !== undefined && draft.mode !== 'deliver') usage(`-${draft.flushWhat} can be used only in delivery mode`);
  if (draft.verify) {
    if (draft.extractRecipients) usage('-t option cannot be used with -bv');
    if (draft.notify !== undefined) usage('-N option cannot be used with -bv');
    if (draft.verbose === 1) usage('-v option cannot be used with -bv');
  }
  if (draft.queueInterval && draft.mode !== 'daemon') return;
  if (draft.flushWhat !== undefined && hasRecipients) usage(`flush ${draft.flushWhat === 'qR' ? 'site' : 'queue_id'} requires no recipient`);
  if (draft.mode !== 'deliver' && draft.mode !== 'nothing' && hasRecipients) usage(`${MODE_NAMES[draft.mode]} mode requires no recipient`);
}

/** The refusal names the option as the caller wrote it: `-z`, or the letter of a cluster. */
function refuseOption(arg: string, at: number): never {
  const option = at === 1 ? arg : `-${arg[at] as string}`;
  const shown = option.length > 40 ? `${option.slice(0, 40)}...` : option;
  return usage(`option ${printable(shown)} is not supported (see ${SENDMAIL_PAGE})`);
}

function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

function applyFlag(draft: Draft, letter: string): void {
  if (letter === 'i') draft.ignoreDots = true;
  else if (letter === 't') draft.extractRecipients = true;
  else if (letter === 'v') draft.verbose++;
  else if (letter === 'I') draft.mode = 'aliases';
  else if (letter === 'n') usage(`option -n is not supported (see ${SENDMAIL_PAGE})`);
  // -G (a gateway submission, sendmail may then fix less): nothing here fixes
  // up a message either way, so there is nothing for it to change. The
  // IGNORED_OPTION_LETTERS flags (-U, -c, -m, -x): Postfix ignores them too.
}

function applyValue(draft: Draft, letter: string, value: string): void {
  switch (letter) {
    case 'f':
    case 'r':
      // -r is sendmail's older -f. Postfix takes an empty -f, like <>, as the null sender.
      draft.sender = parseAddress(value === '' ? '<>' : value, 'sender', { attribute: 'sender' });
      return;
    case 'F':
      draft.fullName = checkFullName(value);
      return;
    case 'o':
      // As Postfix: -oi is -i, -oA needs a path (and names an alias database, which only
      // alias initialization reads), and every other -o (-oem, -om, -o7, -o8, ...) is ignored.
      if (value.startsWith('i')) draft.ignoreDots = true;
      else if (value === 'A') usage(`option -oA needs a path name (see ${SENDMAIL_PAGE})`);
      return;
    case 'B':
      // The body type Postfix's sendmail declares; the daemon declares BODY=8BITMIME from
      // what the message holds, so the value is checked, as Postfix checks it, and nothing more.
      if (value !== '8BITMIME' && value !== '7BIT') usage(`option -B needs 8BITMIME or 7BIT (see ${SENDMAIL_PAGE})`);
      return;
    case 'b':
      applyMode(draft, value);
      return;
    case 'q':
      applyQueue(draft, value);
      return;
    case 'X':
      // -XV (VERP): checked as Postfix checks it, then ignored (mailsubmit-sendmail(8), COMPATIBILITY).
      if (!value.startsWith('V')) usage(`option -X${printable(value.slice(0, 1))} is not supported (see ${SENDMAIL_PAGE})`);
      if (!isVerpDelimiters(value.slice(1))) usage(`option -XV needs two characters from ${VERP_FILTER} (see ${SENDMAIL_PAGE})`);
      return;
    case 'N': {
      const notify = orIgnored(() => parseNotify(value, { attribute: 'dsn-notify-options' }));
      if (notify !== undefined) draft.notify = notify;
      return;
    }
    case 'R': {
      // Postfix ignores -R (sendmail's bounce size limit); here full or hdrs also asks for RET.
      const returnOption = orIgnored(() => parseReturnOption(value, { attribute: 'dsn-return-option' }));
      if (returnOption !== undefined) draft.returnOption = returnOption;
      return;
    }
    case 'V':
      // As Postfix: at most 100 printable ASCII characters (a space is one), or ignored.
      if (value !== '' && value.length <= MAX_SENDMAIL_ENVID_CHARS && /^[\x20-\x7e]+$/.test(value)) draft.envelopeId = value;
      return;
    default:
      // IGNORED_OPTION_LETTERS: their values mean nothing to a submission.
      if (!IGNORED_OPTION_LETTERS.includes(letter)) usage(`option -${letter} is not supported (see ${SENDMAIL_PAGE})`);
  }
}

/** -b: Postfix reads the first character only (-bmx is -bm). */
function applyMode(draft: Draft, value: string): void {
  switch (value[0]) {
    case 'm':
      draft.mode = 'deliver';
      return;
    case 's':
      draft.mode = 'smtp';
      return;
    case 'p':
      draft.mode = 'list-queue';
      return;
    case 'i':
      draft.mode = 'aliases';
      return;
    case 'd':
    case 'l':
      draft.mode = 'daemon';
      return;
    case 'h':
    case 'H':
      draft.mode = 'nothing';
      return;
    case 'v':
      draft.verify = true;
      return;
    default:
      usage(`option -b${printable(value.slice(0, 1))} is not supported (see ${SENDMAIL_PAGE})`);
  }
}

/** -q with a value: an interval (-q1h), -qR site, -qI queue id. A bare -q is read before getopt. */
function applyQueue(draft: Draft, value: string): void {
  const first = value[0] ?? '';
  if (first >= '0' && first <= '9') draft.queueInterval = true;
  else if (first === 'R' || first === 'I') {
    if (value.length === 1) usage(`option -q${first} needs a ${first === 'R' ? 'site name' : 'queue id'} (see ${SENDMAIL_PAGE})`);
    draft.flushWhat = first === 'R' ? 'qR' : 'qI';
  } else usage(`option -q${printable(first)} is not supported (see ${SENDMAIL_PAGE})`);
}

function isVerpDelimiters(value: string): boolean {
  return value.length === 2 && [...value].every((char) => VERP_FILTER.includes(char));
}

/** -F goes into a header line: no control character (a LF would start a header of its own), bounded. */
function checkFullName(value: string): string {
  // Any text, as Postfix's sendmail takes it: the From field writer turns CR and LF into
  // spaces and drops other control characters (sendmail-message.ts displayName).
  if (utf8Octets(value) > MAX_FULL_NAME_OCTETS) usage(`option -F: the name is longer than ${MAX_FULL_NAME_OCTETS} octets`);
  return value;
}
