/**
 * Limits on what a caller may hand in. Every read of caller input is bounded
 * by one of these; the defaults are what `mailsubmit.conf` uses when a key is
 * absent. All sizes are octets.
 */
export interface Limits {
  /** Longest envelope attribute line, without its line end. */
  readonly maxEnvelopeLineOctets: number;
  /**
   * Whole envelope block, including line ends and the empty line (the
   * native door), and the qmail-queue envelope.
   */
  readonly maxEnvelopeOctets: number;
  /**
   * Recipients in one submission, whatever the door. Postfix's sendmail has
   * no such limit; the default is above what a command line of ARG_MAX
   * (2 MiB) holds with addresses of ordinary length. The re-injection
   * listener's smtpd_recipient_limit (install/files/postfix-master.cf) is
   * above every value this may take.
   */
  readonly maxRecipients: number;
  /** The message as written by the caller (after the envelope's empty line). */
  readonly maxMessageOctets: number;
  /**
   * Longest message line, without its line end, under strictMessageSyntax
   * only. RFC 5322 section 2.1.1 and RFC 5321 section 4.5.3.1.6: 998. By
   * default a line of any length passes, as Postfix's sendmail and smtpd
   * take it (they store it in pieces and join them again).
   */
  readonly maxLineOctets: number;
  /**
   * RFC 5322 enforced on the message (mailsubmit.conf `strict_message_syntax`):
   * NUL, a CR not followed by LF, a line over maxLineOctets, a header line that
   * is neither a field nor a continuation, and an empty message are refused.
   * Off (the default): the message is taken as Postfix takes it; a stray CR
   * leaves as a space, several CRs before an LF as one line end, a line that
   * is not a header line ends the header section.
   */
  readonly strictMessageSyntax: boolean;
  /** Header section, up to the first empty line (Postfix's header_size_limit). */
  readonly maxHeaderOctets: number;
}

export const DEFAULT_LIMITS: Limits = Object.freeze({
  maxEnvelopeLineOctets: 4096,
  maxEnvelopeOctets: 8 * 1024 * 1024,
  maxRecipients: 100_000,
  maxMessageOctets: 50 * 1024 * 1024,
  maxLineOctets: 998,
  maxHeaderOctets: 102_400,
  strictMessageSyntax: false,
});

/** Limits with some keys replaced; unknown keys are a programming error. */
export function withLimits(overrides: Partial<Limits>): Limits {
  return Object.freeze({ ...DEFAULT_LIMITS, ...overrides });
}
