/**
 * The sendmail-style command line (mailsubmit-sendmail(8)): options as
 * sendmail(1) callers write them, clustered or not (`-ti`, `-fuser@x`,
 * `-f user@x`, `-oi`), `--` ending them, then recipients.
 *
 * The reference is Postfix's sendmail(1): an option it accepts and ignores
 * (`-oem` and `-B8BITMIME` from cron, `-oem` from mutt, `-h`, `-L`, `-O`,
 * `-U`, ...) is accepted and ignored here too, so that a program that sent
 * mail through it still does. An option Postfix acts on and this front door
 * does not do (`-bs`, `-bv`, `-bp`, `-q`, `-XV`, ...) is refused by name
 * (usage, exit 64): a caller that asks for it expects something else than a
 * submission, and silently doing something else is how mail gets lost. As
 * in Postfix (getopt with "+"),
 * options end at the first recipient; an option-looking argument after a
 * recipient is refused too, instead of becoming a recipient named "-x".
 *
 * Every value is checked here with the envelope's own validators, so a
 * command line can give the daemon nothing a native envelope block could
 * not: -N, -R and -V by parseNotify, parseReturnOption and
 * parseEnvelopeId (a value they refuse is dropped, as Postfix drops it);
 * -f and the recipients by parseAddress.
 */
import type { Address, NotifyKeyword, ReturnOption } from '../envelope/envelope.ts';
import { parseAddress } from '../envelope/address.ts';
import { parseEnvelopeId, parseNotify, parseReturnOption } from '../envelope/dsn-values.ts';
import { describeCharacter, findControl, utf8Octets } from '../envelope/characters.ts';
import { isSubmissionError, SubmissionError } from '../errors.ts';
import { parseAddressList } from './address-list.ts';

export interface SendmailCommand {
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

/** Where each option takes its value from, if it takes one: Postfix's getopt list, less -I, -n, -q and -X. */
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
  v: 'flag',
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

export const SENDMAIL_PAGE = 'mailsubmit-sendmail(8)';

const utf8 = new TextDecoder('utf-8', { fatal: true });

function usage(detail: string, attribute?: string): never {
  throw new SubmissionError('usage', detail, attribute !== undefined ? { attribute } : {});
}

/**
 * -N, -R and -V values the envelope's validators refuse are ignored, as
 * Postfix's sendmail ignores a bad -N or -V (with a warning) and every -R:
 * the message still goes, with the MTA's defaults for what was ignored.
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
  sender?: Address;
  fullName?: string;
  ignoreDots: boolean;
  extractRecipients: boolean;
  notify?: readonly NotifyKeyword[];
  returnOption?: ReturnOption;
  envelopeId?: string;
  verbose: boolean;
}

/**
 * Parses the arguments after argv[0]. Throws SubmissionError: usage for an
 * unknown option, a missing value or a bad option value; the address
 * outcomes (sender-syntax, recipient-syntax, address-too-long) for -f and
 * the recipients, as for a native envelope.
 */
export function parseSendmailCommand(args: readonly (string | Uint8Array)[]): SendmailCommand {
  const draft: Draft = { ignoreDots: false, extractRecipients: false, verbose: false };
  const written = args.map((arg, index) => decodeArgument(arg, index + 1));
  let index = 0;
  let dashes = false;
  for (; index < written.length; index++) {
    const arg = written[index] as string;
    if (arg === '--') {
      index++;
      dashes = true;
      break;
    }
    if (!arg.startsWith('-') || arg === '-') break;
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
  for (let at = index; at < written.length; at++) {
    const arg = written[at] as string;
    if (!dashes && at > index && arg.startsWith('-') && arg !== '-') {
      usage(`option ${printable(arg)} after the recipient ${printable(written[at - 1] as string)}: options go before the recipients (see ${SENDMAIL_PAGE})`);
    }
    for (const spec of parseAddressList(arg, { attribute: 'recipient' })) {
      recipients.push(parseAddress(spec, 'recipient', { attribute: 'recipient' }));
    }
  }
  return Object.freeze({ ...draft, recipients: Object.freeze(recipients) });
}

/** The refusal names the option as the caller wrote it: `-bs`, `-q1h`, `-x`. */
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
  else if (letter === 'v') draft.verbose = true;
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
      // -bm is the default mode, delivery; the other modes are not submissions.
      if (value[0] !== 'm') usage(`option -b${printable(value.slice(0, 1))} is not supported (see ${SENDMAIL_PAGE})`);
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
    case 'V': {
      const envelopeId = orIgnored(() => parseEnvelopeId(value, { attribute: 'dsn-envelope-id' }));
      if (envelopeId !== undefined) draft.envelopeId = envelopeId;
      return;
    }
    default:
      // IGNORED_OPTION_LETTERS: their values mean nothing to a submission.
      if (!IGNORED_OPTION_LETTERS.includes(letter)) usage(`option -${letter} is not supported (see ${SENDMAIL_PAGE})`);
  }
}

/** -F goes into a header line: no control character (a LF would start a header of its own), bounded. */
function checkFullName(value: string): string {
  const control = findControl(value);
  if (control !== undefined) usage(`option -F: the name has ${describeCharacter(control)}`);
  if (utf8Octets(value) > MAX_FULL_NAME_OCTETS) usage(`option -F: the name is longer than ${MAX_FULL_NAME_OCTETS} octets`);
  return value;
}
