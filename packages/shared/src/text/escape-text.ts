/**
 * Text from a caller, made safe to show: in a log line, in `mailsubmitctl
 * status`, in the reply a caller's terminal prints. A log line must read as
 * what it says, so nothing in it may steer the reader's terminal or the
 * direction of the text:
 *
 *   - C0 controls and DEL (ESC starts terminal sequences)  -> \x1b
 *   - C1 controls (U+009B is a CSI on some terminals)       -> \u009b
 *   - format characters, Unicode Cf: bidi overrides and isolates
 *     (U+202A-202E, U+2066-2069), zero-width characters (U+200B-200F),
 *     U+FEFF, tag characters (U+E0001...)                   -> \u202e, \u{e0001}
 *   - line and paragraph separators (U+2028, U+2029)        -> \u2028
 *   - lone surrogates (a string not made from valid UTF-8)  -> \ud800
 *   - octets that are not UTF-8 (escapeBytes only)          -> \xff
 *   - the backslash itself                                  -> \\
 *
 * Everything else, including non-ASCII letters, is kept. The backslash is
 * escaped too, so the escaped form is unambiguous: unescapeText undoes
 * escapeText, and unescapeBytes undoes escapeBytes. An invalid octet is
 * always 0x80 or above and a C0 control below, so `\xHH` means one or the
 * other, never both.
 *
 * No side effects: pure functions, safe to import anywhere.
 */

// Cc (C0, DEL, C1), Cf, Zl, Zp, Cs (in u-mode only lone surrogates), and the backslash.
const NEEDS_ESCAPE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\\]/u;
const TO_ESCAPE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\\]/gu;

function hex(value: number, width: number): string {
  return value.toString(16).padStart(width, '0');
}

function escapeCharacter(ch: string): string {
  if (ch === '\\') return '\\\\';
  const cp = ch.codePointAt(0) as number;
  if (cp < 0x80) return `\\x${hex(cp, 2)}`;
  if (cp <= 0xffff) return `\\u${hex(cp, 4)}`;
  return `\\u{${hex(cp, 5)}}`;
}

/** The string with every character listed above escaped; unchanged (the same string) when none is there. */
export function escapeText(text: string): string {
  // Nearly every string logged needs nothing: one test, no copy.
  if (!NEEDS_ESCAPE.test(text)) return text;
  return text.replace(TO_ESCAPE, escapeCharacter);
}

const FORMAT = /[\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;
const HAS_FORMAT = /[\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;

/**
 * Only the invisible characters that reorder or split a line (format
 * characters, line and paragraph separators, lone surrogates), escaped as
 * escapeText escapes them; controls and backslashes are left to the caller.
 * For text that has its own rule for controls (the reply line, where they
 * become spaces) but must not carry a bidi override to a terminal either.
 */
export function escapeFormatCharacters(text: string): string {
  return HAS_FORMAT.test(text) ? text.replace(FORMAT, escapeCharacter) : text;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Octets as text: valid UTF-8 as escapeText shows it, every octet that is
 * not part of a well-formed UTF-8 sequence as `\xHH`.
 */
export function escapeBytes(bytes: Uint8Array): string {
  try {
    return escapeText(utf8.decode(bytes));
  } catch {
    // Not all of it is UTF-8: take it sequence by sequence.
  }
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const length = sequenceLength(bytes, i);
    if (length === 0) {
      out += `\\x${hex(bytes[i] as number, 2)}`;
      i++;
      continue;
    }
    out += escapeText(utf8.decode(bytes.subarray(i, i + length)));
    i += length;
  }
  return out;
}

/** Length of the well-formed UTF-8 sequence at `i` (RFC 3629 table), or 0. */
function sequenceLength(bytes: Uint8Array, i: number): number {
  const b0 = bytes[i] as number;
  if (b0 < 0x80) return 1;
  const at = (k: number): number => (i + k < bytes.length ? (bytes[i + k] as number) : -1);
  const cont = (k: number, lo = 0x80, hi = 0xbf): boolean => at(k) >= lo && at(k) <= hi;
  if (b0 >= 0xc2 && b0 <= 0xdf) return cont(1) ? 2 : 0;
  if (b0 === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if ((b0 >= 0xe1 && b0 <= 0xec) || b0 === 0xee || b0 === 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (b0 === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (b0 === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (b0 >= 0xf1 && b0 <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (b0 === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

const ESCAPE = /\\(?:\\|x([0-9a-f]{2})|u\{([0-9a-f]{5,6})\}|u([0-9a-f]{4}))/g;

/** Undoes escapeText (for tests and for tools that read the log). */
export function unescapeText(text: string): string {
  return text.replace(ESCAPE, (whole, x?: string, braced?: string, u?: string) => {
    if (x !== undefined) return String.fromCharCode(parseInt(x, 16));
    if (braced !== undefined) return String.fromCodePoint(parseInt(braced, 16));
    if (u !== undefined) return String.fromCharCode(parseInt(u, 16));
    return whole === '\\\\' ? '\\' : whole;
  });
}

/** Undoes escapeBytes: `\xHH` of 0x80 and above is the octet itself. */
export function unescapeBytes(text: string): Uint8Array {
  const parts: Buffer[] = [];
  let last = 0;
  for (const match of text.matchAll(/\\x([89a-f][0-9a-f])/g)) {
    // Only an escape that starts a sequence counts, not `\\x80` (an escaped backslash, then "x80").
    if (precededByOddBackslashes(text, match.index)) continue;
    parts.push(Buffer.from(unescapeText(text.slice(last, match.index)), 'utf8'), Buffer.from([parseInt(match[1] as string, 16)]));
    last = match.index + match[0].length;
  }
  parts.push(Buffer.from(unescapeText(text.slice(last)), 'utf8'));
  return new Uint8Array(Buffer.concat(parts));
}

function precededByOddBackslashes(text: string, index: number): boolean {
  let n = 0;
  for (let i = index - 1; i >= 0 && text[i] === '\\'; i--) n++;
  return n % 2 === 1;
}
