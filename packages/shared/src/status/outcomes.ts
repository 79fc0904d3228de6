/**
 * The status table: every outcome of a submission, and what it means to each
 * kind of caller. The daemon decides an outcome; the helper only prints the
 * text and exits with the code. Anything not in this table is `internal`,
 * which is a temporary failure: unknown never means success.
 *
 * Exit codes are sysexits(3). qmail-queue codes follow qmail-queue(8):
 * 11-40 permanent, everything else temporary.
 */

export const EX_OK = 0;
export const EX_USAGE = 64;
export const EX_DATAERR = 65;
export const EX_NOINPUT = 66;
export const EX_NOUSER = 67;
export const EX_UNAVAILABLE = 69;
export const EX_TEMPFAIL = 75;
export const EX_NOPERM = 77;
export const EX_CONFIG = 78;

export type SmtpClass = 2 | 4 | 5;

export interface StatusEntry {
  /** Stable outcome key, also logged as `status`. */
  readonly outcome: Outcome;
  readonly exitCode: number;
  /** The sysexits name, for logs and docs. */
  readonly exitName: string;
  /** How an SMTP front end (qpsmtpd) should answer its own client. */
  readonly smtpClass: SmtpClass;
  readonly smtpCode: number;
  /** RFC 3463 enhanced status code. */
  readonly enhanced: string;
  /** What a qmail-queue caller gets. */
  readonly qmailCode: number;
  /** Short text; the detail of the case follows it after a colon. */
  readonly text: string;
}

type Row = Omit<StatusEntry, 'outcome' | 'exitName'>;

const EXIT_NAMES: Readonly<Record<number, string>> = {
  [EX_OK]: 'EX_OK',
  [EX_USAGE]: 'EX_USAGE',
  [EX_DATAERR]: 'EX_DATAERR',
  [EX_NOINPUT]: 'EX_NOINPUT',
  [EX_NOUSER]: 'EX_NOUSER',
  [EX_UNAVAILABLE]: 'EX_UNAVAILABLE',
  [EX_TEMPFAIL]: 'EX_TEMPFAIL',
  [EX_NOPERM]: 'EX_NOPERM',
  [EX_CONFIG]: 'EX_CONFIG',
};

const ROWS = {
  ok: { exitCode: EX_OK, smtpClass: 2, smtpCode: 250, enhanced: '2.0.0', qmailCode: 0, text: 'queued' },
  // The other commitment of exit 0: on stable storage in mailsubmit's own queue, delivered to the MTA later.
  'queued-locally': { exitCode: EX_OK, smtpClass: 2, smtpCode: 250, enhanced: '2.0.0', qmailCode: 0, text: 'held in the local queue until the MTA can take it' },

  usage: { exitCode: EX_USAGE, smtpClass: 5, smtpCode: 501, enhanced: '5.5.4', qmailCode: 81, text: 'bad command line' },

  'envelope-syntax': { exitCode: EX_DATAERR, smtpClass: 5, smtpCode: 501, enhanced: '5.5.4', qmailCode: 91, text: 'malformed envelope' },
  'sender-syntax': { exitCode: EX_DATAERR, smtpClass: 5, smtpCode: 553, enhanced: '5.1.7', qmailCode: 31, text: 'malformed sender address' },
  'recipient-syntax': { exitCode: EX_DATAERR, smtpClass: 5, smtpCode: 553, enhanced: '5.1.3', qmailCode: 31, text: 'malformed recipient address' },
  'address-too-long': { exitCode: EX_DATAERR, smtpClass: 5, smtpCode: 553, enhanced: '5.1.3', qmailCode: 11, text: 'address too long' },
  'message-syntax': { exitCode: EX_DATAERR, smtpClass: 5, smtpCode: 554, enhanced: '5.6.0', qmailCode: 31, text: 'malformed message' },
  'size-mismatch': { exitCode: EX_DATAERR, smtpClass: 5, smtpCode: 554, enhanced: '5.6.0', qmailCode: 31, text: 'message size does not match the size attribute' },
  'over-limit': { exitCode: EX_DATAERR, smtpClass: 5, smtpCode: 552, enhanced: '5.3.4', qmailCode: 31, text: 'over a configured limit' },

  'no-input': { exitCode: EX_NOINPUT, smtpClass: 4, smtpCode: 451, enhanced: '4.3.0', qmailCode: 54, text: 'standard input is missing or not readable' },

  'recipient-refused': { exitCode: EX_NOUSER, smtpClass: 5, smtpCode: 550, enhanced: '5.1.1', qmailCode: 31, text: 'the MTA refused a recipient permanently' },
  'message-refused': { exitCode: EX_UNAVAILABLE, smtpClass: 5, smtpCode: 554, enhanced: '5.0.0', qmailCode: 31, text: 'the MTA refused the message permanently' },
  'smtputf8-unsupported': { exitCode: EX_UNAVAILABLE, smtpClass: 5, smtpCode: 553, enhanced: '5.6.7', qmailCode: 31, text: 'the MTA cannot take internationalized (SMTPUTF8) mail' },

  'mta-tempfail': { exitCode: EX_TEMPFAIL, smtpClass: 4, smtpCode: 451, enhanced: '4.0.0', qmailCode: 71, text: 'the MTA refused the message for now' },
  'mta-unreachable': { exitCode: EX_TEMPFAIL, smtpClass: 4, smtpCode: 451, enhanced: '4.4.1', qmailCode: 73, text: 'cannot connect to the MTA' },
  'mta-timeout': { exitCode: EX_TEMPFAIL, smtpClass: 4, smtpCode: 451, enhanced: '4.4.2', qmailCode: 72, text: 'the MTA did not answer in time' },
  'mta-protocol': { exitCode: EX_TEMPFAIL, smtpClass: 4, smtpCode: 451, enhanced: '4.5.0', qmailCode: 74, text: 'the conversation with the MTA failed' },
  'input-timeout': { exitCode: EX_TEMPFAIL, smtpClass: 4, smtpCode: 451, enhanced: '4.4.2', qmailCode: 52, text: 'the caller did not finish writing in time' },
  'input-error': { exitCode: EX_TEMPFAIL, smtpClass: 4, smtpCode: 451, enhanced: '4.3.0', qmailCode: 54, text: 'reading the message failed' },
  'caller-gone': { exitCode: EX_TEMPFAIL, smtpClass: 4, smtpCode: 451, enhanced: '4.3.0', qmailCode: 54, text: 'the caller went away' },
  overload: { exitCode: EX_TEMPFAIL, smtpClass: 4, smtpCode: 451, enhanced: '4.3.2', qmailCode: 71, text: 'too many submissions at once' },
  'spool-full': { exitCode: EX_TEMPFAIL, smtpClass: 4, smtpCode: 452, enhanced: '4.3.1', qmailCode: 53, text: 'no room to hold the message for now' },
  'daemon-unavailable': { exitCode: EX_TEMPFAIL, smtpClass: 4, smtpCode: 451, enhanced: '4.3.0', qmailCode: 73, text: 'the mailsubmit daemon is not running' },
  'shutting-down': { exitCode: EX_TEMPFAIL, smtpClass: 4, smtpCode: 421, enhanced: '4.3.2', qmailCode: 71, text: 'the mailsubmit daemon is shutting down' },
  internal: { exitCode: EX_TEMPFAIL, smtpClass: 4, smtpCode: 451, enhanced: '4.3.0', qmailCode: 81, text: 'internal error' },
  // A hand edit the daemon cannot parse: the list that was in force before may be wider than what the admin meant now.
  'authorization-list-invalid': { exitCode: EX_TEMPFAIL, smtpClass: 4, smtpCode: 451, enhanced: '4.3.5', qmailCode: 55, text: 'the authorization list cannot be used until it is fixed' },

  'not-authorized': { exitCode: EX_NOPERM, smtpClass: 4, smtpCode: 451, enhanced: '4.7.0', qmailCode: 81, text: 'not authorized to submit mail' },
  'attribute-not-permitted': { exitCode: EX_NOPERM, smtpClass: 4, smtpCode: 451, enhanced: '4.7.0', qmailCode: 81, text: 'not permitted to assert this attribute' },

  config: { exitCode: EX_CONFIG, smtpClass: 4, smtpCode: 451, enhanced: '4.3.5', qmailCode: 55, text: 'mailsubmit is installed or configured wrongly' },
} as const satisfies Record<string, Row>;

export type Outcome = keyof typeof ROWS;

export const OUTCOMES: readonly Outcome[] = Object.freeze(Object.keys(ROWS) as Outcome[]);

const TABLE: ReadonlyMap<string, StatusEntry> = new Map(
  OUTCOMES.map((outcome) => {
    const row: Row = ROWS[outcome];
    const entry: StatusEntry = Object.freeze({ outcome, exitName: EXIT_NAMES[row.exitCode] ?? 'EX_TEMPFAIL', ...row });
    return [outcome, entry];
  }),
);

export function isOutcome(value: unknown): value is Outcome {
  return typeof value === 'string' && TABLE.has(value);
}

/** The table row for an outcome; anything unknown is `internal` (temporary). */
export function statusOf(outcome: string): StatusEntry {
  return TABLE.get(outcome) ?? (TABLE.get('internal') as StatusEntry);
}

/** The one line a caller reads: the row's text, then the case's detail. */
export function describeStatus(outcome: string, detail?: string): string {
  const { text } = statusOf(outcome);
  return detail ? `${text}: ${detail}` : text;
}
