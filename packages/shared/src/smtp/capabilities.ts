/**
 * What the downstream server said it can do, from its EHLO (or LHLO) reply.
 *
 * Every optional parameter this client sends depends on one of these flags:
 * a parameter for an extension the server did not announce is a 555/501 at
 * best and a misread envelope at worst. Keywords are case-insensitive
 * (RFC 5321 section 4.1.1.1); unknown keywords are ignored.
 */

export interface ServerCapabilities {
  /** RFC 2920: commands may be sent without waiting for each reply. */
  readonly pipelining: boolean;
  /** RFC 1870: the announced limit in octets; 0 = announced without a limit; null = not announced. */
  readonly size: number | null;
  /** RFC 6152: BODY=8BITMIME. */
  readonly eightBitMime: boolean;
  /** RFC 6531: SMTPUTF8. */
  readonly smtpUtf8: boolean;
  /** RFC 3461: NOTIFY, ORCPT, RET, ENVID. */
  readonly dsn: boolean;
  /** RFC 2034: replies carry x.y.z codes. */
  readonly enhancedStatusCodes: boolean;
  /** RFC 3030: BDAT (recorded, not used: DATA streams just as well). */
  readonly chunking: boolean;
  /** Postfix XFORWARD: the attribute names announced after the keyword, upper case. */
  readonly xforward: ReadonlySet<string>;
  /** RFC 4954: the SASL mechanisms announced after AUTH (or the pre-standard AUTH=), upper case. */
  readonly auth: ReadonlySet<string>;
}

/** A server that answered HELO, or announced nothing. */
export const NO_CAPABILITIES: ServerCapabilities = Object.freeze({
  pipelining: false,
  size: null,
  eightBitMime: false,
  smtpUtf8: false,
  dsn: false,
  enhancedStatusCodes: false,
  chunking: false,
  xforward: new Set<string>(),
  auth: new Set<string>(),
});

// The reply code and separator, when a caller hands over raw reply lines.
const CODE_PREFIX = /^\d{3}[ -]?/;
const DIGITS = /^\d+$/;

/**
 * Reads the capabilities from the lines of a positive EHLO/LHLO reply. The
 * first line is the server's name and greeting, never a keyword. Lines may
 * be given with or without their `250-` prefix.
 */
export function parseEhloReply(lines: readonly string[]): ServerCapabilities {
  let pipelining = false;
  let size: number | null = null;
  let eightBitMime = false;
  let smtpUtf8 = false;
  let dsn = false;
  let enhancedStatusCodes = false;
  let chunking = false;
  let xforward: Set<string> | null = null;
  const auth = new Set<string>();

  for (const raw of lines.slice(1)) {
    // "AUTH=LOGIN PLAIN" is what servers print for clients older than RFC 2554's final form.
    const words = raw.replace(CODE_PREFIX, '').trim().replace(/^AUTH=/i, 'AUTH ').split(/[ \t]+/);
    const keyword = (words[0] ?? '').toUpperCase();
    const params = words.slice(1);
    switch (keyword) {
      case 'PIPELINING':
        pipelining = true;
        break;
      case 'SIZE': {
        // "SIZE" alone, or a limit that is not a number, announces no fixed limit.
        const limit = params[0];
        size = limit !== undefined && DIGITS.test(limit) && Number.isSafeInteger(Number(limit)) ? Number(limit) : 0;
        break;
      }
      case '8BITMIME':
        eightBitMime = true;
        break;
      case 'SMTPUTF8':
        smtpUtf8 = true;
        break;
      case 'DSN':
        dsn = true;
        break;
      case 'ENHANCEDSTATUSCODES':
        enhancedStatusCodes = true;
        break;
      case 'CHUNKING':
        chunking = true;
        break;
      case 'XFORWARD':
        xforward ??= new Set<string>();
        for (const name of params) if (name !== '') xforward.add(name.toUpperCase());
        break;
      case 'AUTH':
        for (const name of params) if (name !== '') auth.add(name.toUpperCase());
        break;
      default:
        break;
    }
  }

  return Object.freeze({
    pipelining,
    size,
    eightBitMime,
    smtpUtf8,
    dsn,
    enhancedStatusCodes,
    chunking,
    xforward: xforward ?? new Set<string>(),
    auth,
  });
}
