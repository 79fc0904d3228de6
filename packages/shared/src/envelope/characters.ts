/**
 * Character classes shared by the envelope grammars.
 *
 * Every grammar in this directory works on code points of an already decoded
 * string, so that an address like `jösé@bücher.example` is judged character by
 * character rather than byte by byte. The classes here are the ones several
 * grammars need: the control characters no value may hold, the non-ASCII
 * characters RFC 6531 admits, and how to name a refused character in a message
 * a person can act on.
 */

/** C0 controls (TAB, CR, LF and NUL among them) and DEL. */
export function isAsciiControl(cp: number): boolean {
  return cp < 0x20 || cp === 0x7f;
}

/**
 * C1 controls (U+0080..U+009F). They are valid UTF-8, but terminals and log
 * readers act on some of them (U+009B is a CSI), so no value may carry them.
 */
export function isC1Control(cp: number): boolean {
  return cp >= 0x80 && cp <= 0x9f;
}

/**
 * RFC 6531 UTF8-non-ascii, less the C1 controls and lone surrogates. A string
 * decoded from valid UTF-8 has no lone surrogates; the check is for callers
 * that build a string some other way.
 */
export function isUtf8NonAscii(cp: number): boolean {
  return cp >= 0xa0 && !(cp >= 0xd800 && cp <= 0xdfff);
}

/** First code point in `text` that is a control of either kind, or undefined. */
export function findControl(text: string): number | undefined {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (isAsciiControl(unit) || isC1Control(unit)) return unit;
  }
  return undefined;
}

/** True when `text` has a character outside US-ASCII. */
export function hasNonAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0x7f) return true;
  }
  return false;
}

/** Octets `text` takes in UTF-8: every limit in the contract counts octets. */
export function utf8Octets(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

const CONTROL_NAMES: Readonly<Record<number, string>> = {
  0x00: 'a NUL byte',
  0x09: 'a tab character',
  0x0a: 'a line feed',
  0x0d: 'a lone carriage return (CR not followed by LF)',
  0x1b: 'an escape character (0x1B)',
  0x7f: 'a DEL character (0x7F)',
};

/**
 * How a refused character reads in a message. Controls are named, never
 * echoed: printing them would reach the caller's terminal or log.
 */
export function describeCharacter(cp: number): string {
  const named = CONTROL_NAMES[cp];
  if (named !== undefined) return named;
  if (cp < 0x20) return `a control character (0x${hex(cp, 2)})`;
  if (isC1Control(cp)) return `a control character (U+${hex(cp, 4)})`;
  if (cp === 0x20) return 'a space';
  if (cp === 0x22) return 'a double quote';
  if (cp >= 0xd800 && cp <= 0xdfff) return `an unpaired surrogate (U+${hex(cp, 4)})`;
  return `the character "${String.fromCodePoint(cp)}"`;
}

function hex(value: number, width: number): string {
  return value.toString(16).toUpperCase().padStart(width, '0');
}
