// Turns the man pages in docs/man/*.md into roff: build/man/manN/NAME.N.
//
//   node scripts/build-man.mjs [--out DIR] [--source DIR]
//
// --out defaults to build/man; --source, another directory of NAME.N.md
// files than docs/man, is for the tests.
//
// The pages are written once, in Markdown that reads well on the web too, and
// this converter covers exactly what they use, so that no dependency sits in
// the build for it:
//
//   # name(N) -- summary          the title line, first in the file: .TH and NAME
//   ## HEADING / ### Heading      .SH / .SS
//   paragraphs                    .PP; a line ending in a backslash breaks (.br)
//   **bold**, *italic*, `code`    \fB, \fI, and bold for literal text (man(7))
//   [text](url)                   the text alone
//   * item / 1. item              .IP with a bullet or the number
//   * term:                       a line ending in ':' whose item continues on
//     definition                  indented lines is a definition (.TP); a blank
//                                 line then an indented line is its next paragraph
//   ``` fenced code ```           .nf/.fi, indented
//   | a | b | tables              tbl(1), so the page starts with '\" t
//   <!-- comment -->              dropped
//
// Anything else is an error naming the file and line, so a construct the
// converter does not know never turns silently into garbage on a terminal.
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE_DIR = join(root, 'docs/man');
const SECTION_NAMES = { 1: 'User Commands', 5: 'File Formats', 7: 'Miscellaneous', 8: 'System Administration' };

class PageError extends Error {}

// ---- inline text ----------------------------------------------------------

/** Escapes plain text for roff: backslashes, minus signs (so options copy as ASCII), non-ASCII. */
function escapeText(text) {
  let out = '';
  for (const char of text) {
    const code = char.codePointAt(0);
    if (char === '\n') out += char;
    else if (char === '\\') out += '\\e';
    else if (char === '-') out += '\\-';
    else if (code > 0x7e || code < 0x20) out += `\\[u${code.toString(16).toUpperCase().padStart(4, '0')}]`;
    else out += char;
  }
  return out;
}

const FONT_OF = { '': 'R', b: 'B', i: 'I', bi: 'BI' };

/**
 * Markdown inline markup to roff font changes. Fonts nest through a stack and
 * every change names the font to return to, since \fP remembers only one.
 */
function inline(text, where) {
  const stack = [''];
  const font = () => FONT_OF[stack[stack.length - 1]];
  const enter = (style) => {
    const current = stack[stack.length - 1];
    const next = [...new Set((current + style).split(''))].sort().join('');
    stack.push(next);
    return `\\f${font().length > 1 ? `(${font()}` : font()}`;
  };
  const leave = () => {
    stack.pop();
    return `\\f${font().length > 1 ? `(${font()}` : font()}`;
  };
  const open = [];
  let out = '';
  let i = 0;
  while (i < text.length) {
    const rest = text.slice(i);
    let match;
    if ((match = /^\\([\\`*_|[\]<>#-])/.exec(rest))) {
      out += escapeText(match[1]);
      i += 2;
    } else if ((match = /^(`+)([^]*?[^`])\1(?!`)/.exec(rest)) || (match = /^(`+)([^`])\1(?!`)/.exec(rest))) {
      out += enter('b') + escapeText(match[2].replace(/\n/g, ' ').replace(/^ (.*) $/, '$1')) + leave();
      i += match[0].length;
    } else if ((match = /^\[([^\]]+)\]\(([^)\s]+)\)/.exec(rest))) {
      out += inline(match[1], where);
      i += match[0].length;
    } else if (rest.startsWith('**')) {
      if (open[open.length - 1] === '**') {
        open.pop();
        out += leave();
      } else {
        open.push('**');
        out += enter('b');
      }
      i += 2;
    } else if (rest[0] === '*' || (rest[0] === '_' && isWordEdge(text, i))) {
      const mark = rest[0];
      if (open[open.length - 1] === mark) {
        open.pop();
        out += leave();
      } else if (/^[*_]\S/.test(rest)) {
        open.push(mark);
        out += enter('i');
      } else {
        out += escapeText(mark);
      }
      i += 1;
    } else {
      out += escapeText(rest[0]);
      i += 1;
    }
  }
  if (open.length > 0) throw new PageError(`${where}: unclosed ${open.join(' ')}`);
  return out;
}

/** `_` is emphasis only at the edge of a word: snake_case names stay as they are. */
function isWordEdge(text, i) {
  const before = text[i - 1] ?? ' ';
  const after = text[i + 1] ?? ' ';
  return !/[A-Za-z0-9]/.test(before) || !/[A-Za-z0-9]/.test(after);
}

/** Roff text lines: no leading space (it would break the line), no leading control character. */
function roffLines(text) {
  return text.split('\n').map((line) => {
    const trimmed = line.trim();
    return /^[.']/.test(trimmed) ? `\\&${trimmed}` : trimmed;
  });
}

function textLines(lines, where) {
  return roffLines(inline(lines.map((line) => line.trim()).join('\n'), where));
}

/**
 * A paragraph's source lines, converted together so that markup may span
 * lines; a trailing backslash or two spaces break the line (.br).
 */
function paragraph(lines, where) {
  const out = [];
  let segment = [];
  for (const line of lines) {
    const hard = /(\\|\s{2,})$/.test(line) && !/\\\\$/.test(line);
    segment.push(hard ? line.replace(/(\\|\s+)$/, '') : line);
    if (hard) {
      out.push(...textLines(segment, where), '.br');
      segment = [];
    }
  }
  if (segment.length > 0) out.push(...textLines(segment, where));
  return out;
}

function quoted(text) {
  return `"${text.replaceAll('"', '\\(dq')}"`;
}

// ---- blocks ---------------------------------------------------------------

function codeBlock(lines) {
  const body = lines.map((line) => {
    const text = escapeText(line);
    return /^[.']/.test(text) || text === '' ? `\\&${text}` : text;
  });
  return ['.PP', '.RS 4', '.nf', ...body, '.fi', '.RE'];
}

function splitRow(line) {
  const cells = [];
  let cell = '';
  const inner = line.trim().replace(/^\|/, '').replace(/\|$/, '');
  for (let i = 0; i < inner.length; i++) {
    if (inner[i] === '\\' && inner[i + 1] === '|') {
      cell += '\\|';
      i++;
    } else if (inner[i] === '|') {
      cells.push(cell.trim());
      cell = '';
    } else {
      cell += inner[i];
    }
  }
  cells.push(cell.trim());
  return cells;
}

/** A Markdown table as tbl(1) input; wide columns become text blocks that wrap. */
function table(lines, where) {
  const [head, rule, ...body] = lines.map(splitRow);
  if (!rule || !rule.every((cell) => /^:?-+:?$/.test(cell))) throw new PageError(`${where}: a table needs a |---| line under its header`);
  const rows = [head, ...body];
  for (const [n, row] of rows.entries()) {
    if (row.length !== head.length) throw new PageError(`${where}: table row ${n + 1} has ${row.length} cells, the header ${head.length}`);
  }
  // Columns with long cells wrap: the one with the most text takes the rest of
  // the line (x), the others as much as their longest cell needs, up to 20 ens.
  const longest = head.map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  const total = head.map((_, c) => rows.reduce((sum, row) => sum + row[c].length, 0));
  const wide = longest.map((length) => length > 24);
  const widest = total.indexOf(Math.max(...total.filter((_, c) => wide[c])));
  const format = (c) => (!wide[c] ? 'l' : c === widest ? 'lx' : `lw(${Math.min(longest[c], 20)}n)`);
  const cell = (text, c) => {
    const roff = text === '' ? '\\&' : inline(text, where);
    return wide[c] ? `T{\n${/^[.']/.test(roff) ? '\\&' : ''}${roff}\nT}` : roff.replace(/^([.'])/, '\\&$1');
  };
  return [
    '.PP',
    '.TS',
    // nokeep: with keeps, groff 1.22 puts a blank line into a table that crosses line 132.
    'tab(\t) nokeep;',
    head.map(() => 'lb').join(' '),
    `${head.map((_, c) => format(c)).join(' ')}.`,
    ...rows.map((row) => row.map(cell).join('\t')),
    '.TE',
  ];
}

const ITEM = /^(\s*)(?:([*-])|([0-9]+)\.)\s+(.*)$/;

/** Groups a list: each item is its first line plus the indented lines that follow. */
function readList(lines, start) {
  const items = [];
  let i = start;
  while (i < lines.length) {
    const match = ITEM.exec(lines[i].text);
    if (match === null || match[1] !== '') break;
    const item = { number: match[3] ?? null, first: match[4], line: lines[i].number, rest: [] };
    i++;
    while (i < lines.length) {
      const { text } = lines[i];
      if (/^\s{2,}\S/.test(text)) item.rest.push(text.trim());
      else if (text.trim() === '' && i + 1 < lines.length && /^\s{2,}\S/.test(lines[i + 1].text)) item.rest.push('');
      else break;
      i++;
    }
    items.push(item);
    while (i < lines.length && lines[i].text.trim() === '' && i + 1 < lines.length && ITEM.test(lines[i + 1].text) && !/^\s/.test(lines[i + 1].text)) i++;
  }
  return { items, next: i };
}

function listItem(item, file) {
  const where = `${file}:${item.line}`;
  const paragraphs = [[]];
  for (const line of item.rest) {
    if (line === '') paragraphs.push([]);
    else paragraphs[paragraphs.length - 1].push(line);
  }
  const definition = /:$/.test(item.first) && item.rest.length > 0;
  const out = [];
  if (definition) {
    out.push('.TP', ...textLines([item.first.replace(/:$/, '')], where));
  } else {
    out.push(item.number === null ? '.IP \\(bu 2' : `.IP ${item.number}. 4`);
    paragraphs[0].unshift(item.first);
  }
  paragraphs.forEach((lines, n) => {
    if (n > 0) out.push('.IP "" ' + (definition ? '' : item.number === null ? '2' : '4'));
    out.push(...paragraph(lines, where));
  });
  return out.map((line) => line.replace(/ $/, ''));
}

/** Converts one page. `name` and `section` come from the file name and must match the title. */
export function toRoff(markdown, { file, name, section, date }) {
  const lines = markdown
    .replace(/<!--[^]*?-->/g, (comment) => comment.replace(/[^\n]/g, ''))
    .split('\n')
    .map((text, n) => ({ text: text.replace(/\s+$/, (space) => (space.length >= 2 ? '  ' : '')), number: n + 1 }));
  let i = 0;
  while (i < lines.length && lines[i].text.trim() === '') i++;
  const title = /^# ([a-z0-9.-]+)\(([1-8])\) -- (.+)$/.exec(lines[i]?.text ?? '');
  if (title === null) throw new PageError(`${file}:${i + 1}: the first line must be "# name(N) -- summary"`);
  if (title[1] !== name || title[2] !== section) throw new PageError(`${file}:${i + 1}: the title says ${title[1]}(${title[2]}), the file name ${name}(${section})`);
  const out = [
    "'\\\" t",
    `.\\" ${name}(${section}): built from ${file} by scripts/build-man.mjs; edit that file.`,
    `.TH ${quoted(name.toUpperCase())} ${quoted(section)} ${quoted(date)} "mailsubmit" ${quoted(SECTION_NAMES[section] ?? '')}`,
    // Ragged right and no hyphenation: options and addresses must stay whole to be copied.
    '.ad l',
    '.nh',
    '.SH "NAME"',
    `${escapeText(name)} \\- ${inline(title[3], `${file}:${i + 1}`)}`,
  ];
  i++;
  while (i < lines.length) {
    const { text, number } = lines[i];
    const where = `${file}:${number}`;
    let match;
    if (text.trim() === '') {
      i++;
    } else if ((match = /^(##|###) (.+)$/.exec(text))) {
      out.push(`${match[1] === '##' ? '.SH' : '.SS'} ${quoted(inline(match[2], where))}`);
      i++;
    } else if (/^#/.test(text)) {
      throw new PageError(`${where}: only one "#" title, then "##" and "###" headings`);
    } else if (/^```/.test(text)) {
      const end = lines.findIndex((line, n) => n > i && /^```\s*$/.test(line.text));
      if (end < 0) throw new PageError(`${where}: code block without its closing fence`);
      out.push(...codeBlock(lines.slice(i + 1, end).map((line) => line.text)));
      i = end + 1;
    } else if (/^\|/.test(text)) {
      const start = i;
      while (i < lines.length && /^\|/.test(lines[i].text)) i++;
      out.push(...table(lines.slice(start, i).map((line) => line.text), where));
    } else if (ITEM.test(text) && !/^\s/.test(text)) {
      const { items, next } = readList(lines, i);
      for (const item of items) out.push(...listItem(item, file));
      i = next;
    } else if (/^\s/.test(text)) {
      throw new PageError(`${where}: indented text outside a list item`);
    } else {
      const start = i;
      // As in CommonMark, only a bullet or "1." interrupts a paragraph: "64. Nothing" may wrap onto a line start.
      while (i < lines.length && lines[i].text.trim() !== '' && !/^(#|```|\||\s|[*-]\s|1\.\s)/.test(lines[i].text)) i++;
      out.push('.PP', ...paragraph(lines.slice(start, i).map((line) => line.text), where));
    }
  }
  // A paragraph starts itself after a heading; the .PP there would only be noise.
  const tidy = out.filter((line, n) => !(line === '.PP' && /^\.S[HS] /.test(out[n - 1] ?? '')));
  return `${tidy.join('\n')}\n`;
}

/** The page's date: SOURCE_DATE_EPOCH for reproducible builds, else the source's last change. */
function pageDate(path) {
  const epoch = process.env.SOURCE_DATE_EPOCH;
  const ms = epoch && /^[0-9]+$/.test(epoch) ? Number(epoch) * 1000 : statSync(path).mtimeMs;
  return new Date(ms).toISOString().slice(0, 10);
}

function main(argv) {
  let out = join(root, 'build/man');
  let sources = SOURCE_DIR;
  for (let a = 0; a < argv.length; a++) {
    if (argv[a] === '--out' && argv[a + 1]) out = resolve(argv[++a]);
    else if (argv[a] === '--source' && argv[a + 1]) sources = resolve(argv[++a]);
    else throw new PageError(`unknown argument ${JSON.stringify(argv[a])} (usage: build-man.mjs [--out DIR] [--source DIR])`);
  }
  const pages = readdirSync(sources).filter((f) => /^[a-z0-9.-]+\.[1-8]\.md$/.test(f)).sort();
  if (pages.length === 0) throw new PageError(`no pages in ${relative(root, sources)}`);
  for (const page of pages) {
    const [, name, section] = /^(.+)\.([1-8])\.md$/.exec(page);
    const source = join(sources, page);
    const roff = toRoff(readFileSync(source, 'utf8'), { file: relative(root, source), name, section, date: pageDate(source) });
    mkdirSync(join(out, `man${section}`), { recursive: true });
    writeFileSync(join(out, `man${section}`, `${name}.${section}`), roff, { mode: 0o644 });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    main(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof PageError)) throw err;
    process.stderr.write(`build-man: ${err.message}\n`);
    process.exit(1);
  }
}
