/**
 * The reply's one line of text. The helper prints it on the caller's stderr,
 * where it lands in logs, bounces and terminals, so it may hold no line break
 * and no control character at all, and is capped at MAX_REPLY_TEXT_OCTETS.
 * The daemon's text often quotes an MTA, so it is sanitized, never refused.
 */
import { escapeFormatCharacters } from '../text/escape-text.ts';
import { MAX_REPLY_TEXT_OCTETS } from './constants.ts';

// C0 controls (CR, LF, TAB, ESC ...), DEL and the C1 block: C1 codes act as
// controls on some terminals (U+009B is a CSI).
const CONTROLS = /[\u0000-\u001f\u007f-\u009f]/gu;
const HAS_CONTROL = /[\u0000-\u001f\u007f-\u009f]/u;
const encoder = new TextEncoder();

/**
 * What a decoder accepts: no control character (the C helper checks the same
 * octets: C0, DEL, and C1 as 0xC2 0x80..0x9F) and within the cap.
 */
export function isPrintableReplyText(text: string): boolean {
  return !HAS_CONTROL.test(text) && encoder.encode(text).byteLength <= MAX_REPLY_TEXT_OCTETS;
}

/**
 * Controls become a space, the ends are trimmed (a trailing CRLF would
 * otherwise leave blanks), and the result is cut to the octet cap at a
 * character boundary, with an ellipsis marking the cut.
 */
export function sanitizeReplyText(text: string): string {
  // Format characters (a bidi override in a quoted sender) are shown as \u202e, never passed to a terminal.
  const flat = escapeFormatCharacters(text).replace(CONTROLS, ' ').trim();
  if (encoder.encode(flat).byteLength <= MAX_REPLY_TEXT_OCTETS) return flat;
  const ellipsis = '...';
  let octets = 0;
  let cut = '';
  for (const char of flat) {
    const size = encoder.encode(char).byteLength;
    if (octets + size > MAX_REPLY_TEXT_OCTETS - ellipsis.length) break;
    octets += size;
    cut += char;
  }
  return cut.trimEnd() + ellipsis;
}
