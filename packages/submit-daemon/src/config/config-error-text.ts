/**
 * What an administrator needs from a configuration error: the line of the
 * file it is on (`FILE:LINE:`, as compilers and postfix-style tools say it,
 * so an editor can jump there) and what to do about it. The TOML parser
 * gives a line for a syntax error only; the line of a key is found here by
 * reading the text the way TOML lays it out: `[table]` headers, then
 * `key = value` lines (bare, quoted or dotted keys).
 */

/** The 1-based line on which `table.key` (or, with key null, `[table]`) is set, or null. */
export function lineOfKey(text: string, table: string, key: string | null, occurrence = 0): number | null {
  let current: string | null = null;
  let seen = -1;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    // [table] once, or [[table]] once per element: `occurrence` picks the element.
    const header = /^\[\[?\s*([^\]]+?)\s*\]/.exec(line);
    if (header !== null) {
      current = unquote(header[1] as string);
      if (current === table) seen += 1;
      if (key === null && current === table && seen === occurrence) return i + 1;
      continue;
    }
    const assigned = /^((?:"[^"]*"|'[^']*'|[A-Za-z0-9_.\s-])+?)\s*=/.exec(line)?.[1];
    if (assigned === undefined) continue;
    const path = [...(current === null ? [] : [current]), ...unquote(assigned).split(/\s*\.\s*/)];
    if (path[0] === table && (key === null || path[1] === key) && Math.max(seen, 0) === occurrence) return i + 1;
  }
  return null;
}

function unquote(name: string): string {
  return name.replace(/"([^"]*)"|'([^']*)'/g, (_m, a: string | undefined, b: string | undefined) => a ?? b ?? '');
}

/** The name among `known` that `wrong` is most likely a typo of (at most a third of it changed), or null. */
export function nearestName(wrong: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = Math.max(1, Math.floor(wrong.length / 3)) + 1;
  for (const name of known) {
    const distance = editDistance(wrong, name);
    if (distance < bestDistance) {
      best = name;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_v, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const swapped = i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1];
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min((previous[j] as number) + 1, (row[j - 1] as number) + 1, (previous[j - 1] as number) + cost, swapped ? (previous[j - 2] as number) : Infinity);
    }
    previous = row;
  }
  return previous[b.length] as number;
}

/**
 * A TOML syntax error as one line: what the parser found, the line as
 * written, and the usual cause. `message` is the parser's first line,
 * without its "Invalid TOML document: " prefix.
 */
export function describeSyntaxError(message: string, text: string, line: number, column: number): string {
  const written = (text.split('\n')[line - 1] ?? '').trim();
  const quoted = written === '' ? '' : ` in ${JSON.stringify(written)}`;
  return `not valid TOML: ${message} (column ${column})${quoted}; ${syntaxFix(message, written)}`;
}

function syntaxFix(message: string, written: string): string {
  if (/^\[(?!.*\])/.test(written)) return 'a table header is a name in brackets on a line of its own ([daemon]), a setting is key = value';
  if (/invalid value/.test(message)) return 'text values need double quotes (socket = "/run/mailsubmit/mailsubmit.sock"), numbers none (max_recipients = 1000)';
  if (/unfinished string|newline/.test(message)) return 'close the string on the same line with the quote it opened with';
  if (/redefine|already defined/.test(message)) return 'each table and key may appear once: remove or merge the repeated one';
  if (/end of key|illegal character in key/.test(message)) return 'a setting is key = value, with a key of letters, digits, _ and -';
  return 'each line is a [table] header, key = value, a comment (#) or empty; see mailsubmit.conf(5)';
}
