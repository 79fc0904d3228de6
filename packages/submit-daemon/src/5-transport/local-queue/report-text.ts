/**
 * Text from elsewhere (an MTA's reply, a host name) made fit for a line of
 * a delivery status notice: no control characters, and folded so that no
 * line comes near the 998-octet limit.
 */

/**
 * Control characters become `?`, as Postfix masks what it puts in a
 * bounce; non-ASCII too unless the notice is a UTF-8 one (RFC 6533). A
 * multi-line MTA reply arrives with its lines joined by a space.
 */
export function printable(text: string, utf8: boolean): string {
  const joined = text.replace(/\r?\n/g, ' ');
  return utf8 ? joined.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?') : joined.replace(/[^\u0020-\u007e]/gu, '?');
}

/** Postfix wraps its bounce lines at this width (bounce_notify_util.c). */
const WIDTH = 79;
/** Code points of the longest word kept whole: at most 900 octets in UTF-8. */
const LONGEST_WORD = 225;

/**
 * `text` in lines of at most WIDTH characters where it has spaces to break
 * at, the lines after the first starting with `indent`: a header field's
 * folding when `indent` is white space. A word longer than LONGEST_WORD is
 * cut, so that no line can pass 998 octets even in UTF-8.
 */
export function wrap(text: string, indent: string): string[] {
  const words = text.split(' ').flatMap((word) => cut(word));
  const lines: string[] = [];
  let line = '';
  for (const word of words) {
    if (line !== '' && line.length + 1 + word.length > WIDTH) {
      lines.push(line);
      line = indent + word;
    } else {
      line = line === '' && lines.length === 0 ? word : line === '' ? indent + word : `${line} ${word}`;
    }
  }
  lines.push(line);
  return lines;
}

function cut(word: string): string[] {
  const pieces: string[] = [];
  // By code point, so that a cut never splits a surrogate pair.
  const points = [...word];
  for (let i = 0; i < points.length; i += LONGEST_WORD) pieces.push(points.slice(i, i + LONGEST_WORD).join(''));
  return pieces.length === 0 ? [''] : pieces;
}
