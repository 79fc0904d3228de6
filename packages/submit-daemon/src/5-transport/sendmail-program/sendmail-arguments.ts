/**
 * The command lines for handing one validated envelope to Postfix's
 * sendmail(1):
 *
 *     sendmail [-C DIR] -G -i [-B 8BITMIME] -f <SENDER> [-N NOTIFY] [-R RET] [-iV ENVID] -- RCPT...
 *
 * One command line per group of recipients with the same NOTIFY, because -N
 * applies to every recipient of a run. Pure: no I/O.
 *
 * What the command line cannot carry (returned in `dropped`, for the log):
 * - ORCPT: there is no option for it; Postfix records each command-line
 *   recipient as its own original recipient instead.
 * - The client attributes that SMTP sends with XFORWARD: Postfix records
 *   the submission as local mail from the daemon's uid.
 * - An ENVID that starts with `-` (see below).
 *
 * SECURITY. sendmail(1) does not police its arguments (its man page,
 * SECURITY): a value read as an option could change what it does. So every
 * element comes from the validated envelope or from this file, recipients
 * come after `--`, and no value before `--` may start with `-`:
 * - the sender goes inside angle brackets (`-f <a@b>`, `-f <>` for the null
 *   sender, which Postfix parses like a header address); one whose address
 *   starts with `-` is refused anyway, as a second line of defence;
 * - an ENVID starting with `-` is dropped rather than passed;
 * - NOTIFY and RET come from fixed vocabularies.
 * Postfix itself bounces addresses that start with `-` unless
 * allow_min_user = yes, for the same reason; a recipient like that is still
 * passed (after `--` it is safe), and Postfix's policy decides.
 *
 * Why `-iV ENVID` and not `-V ENVID`: Postfix's sendmail still honours the
 * pre-2.3 meaning of -V (VERP) when `-V` is followed by an argument of two
 * characters, or written `-Vxy`. A two-character ENVID would then turn on
 * VERP, and everything after it, `--` included, would become recipients
 * (seen on Postfix 3.7). In a cluster (`-iV`) that rewrite does not look at
 * the option, and getopt still takes the next element as -V's value. The
 * repeated -i is harmless.
 *
 * This is Postfix's dialect. Other MTAs' sendmail programs read these
 * options differently (Exim's -N means "do not deliver"); the sendmail
 * transport must be pointed at Postfix's sendmail.
 */
import { SubmissionError, type Envelope, type NotifyKeyword, type Recipient, type ReturnOption } from '@mailsubmit/shared';

export interface SendmailArgumentOptions {
  /** Adds `-C DIR`: the Postfix instance whose main.cf to use (absolute path). */
  readonly configDirectory?: string;
  /**
   * Adds `-B 8BITMIME`: the message has (or may have) 8-bit octets. Without
   * it Postfix records the body type as undeclared and relays the message
   * without BODY=8BITMIME (seen on 3.7), where the SMTP transport declares it.
   */
  readonly eightBit?: boolean;
}

/** One sendmail run: its arguments (without the program name) and the recipients it carries. */
export interface SendmailRun {
  readonly args: readonly string[];
  readonly recipients: readonly Recipient[];
}

export interface SendmailPlan {
  /** In the order of the first recipient of each group; one run when all share NOTIFY. */
  readonly runs: readonly SendmailRun[];
  /** What the command line cannot carry, for the daemon's log (e.g. `ORCPT for 2 recipients`). */
  readonly dropped: readonly string[];
}

/** One option before `--`: a flag of our own, with its value as a separate element. */
interface Option {
  readonly flag: '-C' | '-G' | '-i' | '-B' | '-f' | '-N' | '-R' | '-iV' | '-bv';
  readonly value?: string;
}

// C0 controls (NUL included) and DEL: the validator lets none through, and
// spawn() would refuse a NUL, so one here is our bug.
const CONTROL = /[\u0000-\u001f\u007f]/;

const RETURN_VALUES: Readonly<Record<ReturnOption, string>> = { FULL: 'full', HDRS: 'hdrs' };

const CLIENT_ATTRIBUTE_NAMES: readonly (readonly [keyof Envelope['client'], string])[] = [
  ['protocolName', 'protocol_name'],
  ['heloName', 'helo_name'],
  ['clientName', 'client_name'],
  ['clientAddress', 'client_address'],
  ['clientPort', 'client_port'],
];

/**
 * Address verification (mailsubmit-sendmail -bv through the sendmail
 * transport): Postfix's own `sendmail -bv`, which reads no message, queues
 * a probe that delivers nothing and mails its report to the sender:
 *
 *     sendmail [-C DIR] -bv -f <SENDER> -- RCPT...
 */
export function sendmailVerifyArguments(envelope: Envelope, options: Pick<SendmailArgumentOptions, 'configDirectory'> = {}): string[] {
  checkPassable(envelope);
  const list: Option[] = [...configOption(options), { flag: '-bv' }, { flag: '-f', value: `<${envelope.sender.text}>` }];
  return commandLine(list, envelope.recipients.map((r) => r.address.text));
}

/** The sender and recipients can go on a command line: none is read as an option, none is empty. */
function checkPassable(envelope: Envelope): void {
  if (envelope.recipients.length === 0) {
    throw new SubmissionError('envelope-syntax', 'no recipient', { attribute: 'recipient' });
  }
  if (envelope.sender.text.startsWith('-')) {
    throw new SubmissionError('sender-syntax', 'a sender address starting with "-" cannot be passed to sendmail', {
      attribute: 'sender',
    });
  }
  for (const recipient of envelope.recipients) {
    if (recipient.address.text === '') {
      throw new SubmissionError('recipient-syntax', 'the null address <> cannot be a recipient', {
        line: recipient.line,
        attribute: 'recipient',
      });
    }
  }
}

/** `-C DIR`, when the instance is not the default one. */
function configOption(options: Pick<SendmailArgumentOptions, 'configDirectory'>): Option[] {
  if (options.configDirectory === undefined) return [];
  if (!options.configDirectory.startsWith('/')) {
    throw new SubmissionError('config', `the sendmail configuration directory must be an absolute path: ${options.configDirectory}`);
  }
  return [{ flag: '-C', value: options.configDirectory }];
}

/** The runs for `envelope`; a SubmissionError for a sender or recipient that cannot be passed safely. */
export function sendmailPlan(envelope: Envelope, options: SendmailArgumentOptions = {}): SendmailPlan {
  checkPassable(envelope);
  const dropped: string[] = [];
  const before: Option[] = [...configOption(options)];
  const sender = envelope.sender.text;
  before.push({ flag: '-G' }, { flag: '-i' });
  if (options.eightBit === true) before.push({ flag: '-B', value: '8BITMIME' });
  before.push({ flag: '-f', value: `<${sender}>` });
  const after: Option[] = [];
  if (envelope.returnOption !== undefined) after.push({ flag: '-R', value: RETURN_VALUES[envelope.returnOption] });
  if (envelope.envelopeId !== undefined) {
    if (envelope.envelopeId.startsWith('-')) dropped.push('ENVID (starts with "-", which sendmail could read as an option)');
    else after.push({ flag: '-iV', value: envelope.envelopeId });
  }

  const withOrcpt = envelope.recipients.filter((r) => r.orcpt !== undefined).length;
  if (withOrcpt > 0) dropped.push(`ORCPT for ${withOrcpt} recipient${withOrcpt === 1 ? '' : 's'}`);
  const client = CLIENT_ATTRIBUTE_NAMES.filter(([key]) => envelope.client[key] !== undefined).map(([, name]) => name);
  if (client.length > 0) dropped.push(`client attributes for XFORWARD (${client.join(', ')})`);

  const runs = groupByNotify(envelope.recipients).map(({ notify, recipients }) => {
    const list: Option[] = notify === undefined ? [...before, ...after] : [...before, { flag: '-N', value: notify }, ...after];
    const addresses = recipients.map((r) => r.address.text);
    return { args: commandLine(list, addresses), recipients };
  });
  return { runs, dropped };
}

/** The -N value for a recipient's NOTIFY, or undefined for none (Postfix's default). */
export function notifyArgument(notify: readonly NotifyKeyword[] | undefined): string | undefined {
  if (notify === undefined || notify.length === 0) return undefined;
  return notify.map((keyword) => keyword.toLowerCase()).join(',');
}

function groupByNotify(recipients: readonly Recipient[]): { notify: string | undefined; recipients: Recipient[] }[] {
  const groups = new Map<string, { notify: string | undefined; recipients: Recipient[] }>();
  for (const recipient of recipients) {
    // The validator sorts the keywords, so equal sets give equal strings.
    const notify = notifyArgument(recipient.notify);
    const key = notify ?? '';
    let group = groups.get(key);
    if (group === undefined) {
      group = { notify, recipients: [] };
      groups.set(key, group);
    }
    group.recipients.push(recipient);
  }
  return [...groups.values()];
}

/**
 * Flattens the options and appends `--` and the recipients, checking on the
 * way that no value before `--` starts with `-` and that no element holds a
 * control character. The checks above make a failure impossible; if one
 * happens anyway the run is refused rather than started.
 */
function commandLine(options: readonly Option[], recipients: readonly string[]): string[] {
  const args: string[] = [];
  for (const { flag, value } of options) {
    args.push(flag);
    if (value === undefined) continue;
    if (value.startsWith('-')) throw unsafe(`the value of ${flag} would be read as an option`);
    args.push(value);
  }
  args.push('--', ...recipients);
  const bad = args.findIndex((arg) => CONTROL.test(arg));
  if (bad !== -1) throw unsafe(`argument ${bad + 1} holds a control character`);
  return args;
}

function unsafe(reason: string): SubmissionError {
  return new SubmissionError('internal', `refusing to run sendmail with an unsafe command line: ${reason}`);
}
