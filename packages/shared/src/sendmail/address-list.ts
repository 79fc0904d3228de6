/**
 * RFC 5322 address lists, as sendmail callers write them: on the command
 * line (`"Bob <bob@x>, carol@y"`) and in To/Cc/Bcc for -t. Display names,
 * comments, quoted strings, angle brackets and groups are understood; what
 * comes out is only the addr-spec of each mailbox, which then goes through
 * parseAddress, the one address validator, so a header value can never put
 * on the SMTP wire anything a native `recipient:` line could not.
 *
 * Groups (`undisclosed-recipients:;`, `team: a@x, b@y;`) give their members,
 * and an empty group none. Empty list items (`a@x,,b@y`) are skipped, as
 * RFC 5322 obs-addr-list allows. Comments are dropped wherever they are.
 */
import { SubmissionError, type InputPosition } from '../errors.ts';
import { describeCharacter } from '../envelope/characters.ts';

type Token =
  | { readonly kind: 'word'; readonly text: string }
  | { readonly kind: 'special'; readonly text: '<' | '>' | '@' | ',' | ':' | ';' | '.' };

const SPECIALS = new Set(['<', '>', '@', ',', ':', ';', '.']);

function refuse(detail: string, at: InputPosition): never {
  throw new SubmissionError('recipient-syntax', detail, at);
}

/** Splits a list into words (atoms, quoted strings, domain literals) and specials; drops white space and comments. */
function tokenize(text: string, at: InputPosition): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i] as string;
    const cp = ch.codePointAt(0) as number;
    if (ch === ' ' || ch === '\t') {
      i++;
    } else if (ch === '(') {
      i = skipComment(text, i, at);
    } else if (ch === '"') {
      const end = closing(text, i, '"', 'a quoted string has no closing quote', at);
      tokens.push({ kind: 'word', text: text.slice(i, end) });
      i = end;
    } else if (ch === '[') {
      const end = closing(text, i, ']', 'a domain literal has no closing bracket', at);
      tokens.push({ kind: 'word', text: text.slice(i, end) });
      i = end;
    } else if (SPECIALS.has(ch)) {
      tokens.push({ kind: 'special', text: ch as '<' });
      i++;
    } else if (ch === ')' || ch === ']' || ch === '\\' || cp < 0x20 || cp === 0x7f) {
      refuse(`${describeCharacter(cp)} outside quotes in the address list`, at);
    } else {
      let end = i;
      while (end < text.length && isAtomChar(text[end] as string)) end++;
      tokens.push({ kind: 'word', text: text.slice(i, end) });
      i = end;
    }
  }
  return tokens;
}

function isAtomChar(ch: string): boolean {
  const cp = ch.codePointAt(0) as number;
  return cp > 0x20 && cp !== 0x7f && !SPECIALS.has(ch) && !'()"[]\\'.includes(ch);
}

/** Index after the character that closes the construct opened at `start`, honouring backslash pairs. */
function closing(text: string, start: number, close: string, unclosed: string, at: InputPosition): number {
  for (let i = start + 1; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\\') i++;
    else if (ch === close) return i + 1;
  }
  return refuse(unclosed, at);
}

/** Comments nest (RFC 5322 3.2.2). */
function skipComment(text: string, start: number, at: InputPosition): number {
  let depth = 0;
  for (let i = start; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\\') i++;
    else if (ch === '(') depth++;
    else if (ch === ')' && --depth === 0) return i + 1;
  }
  return refuse('a comment has no closing parenthesis', at);
}

/**
 * The addr-spec of every mailbox in the list, in order, as text for
 * parseAddress (`local@domain`, quoted local parts kept quoted). Throws
 * SubmissionError (recipient-syntax) at `at` for a list it cannot read.
 */
export function parseAddressList(text: string, at: InputPosition = {}): string[] {
  const specs: string[] = [];
  let current: Token[] = [];
  let inGroup = false;
  let inAngle = false;
  const finish = () => {
    const spec = mailboxSpec(current, at);
    if (spec !== null) specs.push(spec);
    current = [];
  };
  for (const token of tokenize(text, at)) {
    if (token.kind === 'special' && !inAngle) {
      if (token.text === ',') {
        finish();
        continue;
      }
      if (token.text === ':') {
        // The words so far were the group's name; its members follow.
        if (inGroup) refuse('a group inside a group', at);
        if (current.length === 0) refuse('a group without a name before ":"', at);
        current = [];
        inGroup = true;
        continue;
      }
      if (token.text === ';') {
        if (!inGroup) refuse('";" without a group ("name: ...;")', at);
        finish();
        inGroup = false;
        continue;
      }
    }
    if (token.kind === 'special' && token.text === '<') {
      if (inAngle) refuse('"<" inside an angle address', at);
      inAngle = true;
    } else if (token.kind === 'special' && token.text === '>') {
      if (!inAngle) refuse('">" without "<"', at);
      inAngle = false;
    }
    current.push(token);
  }
  if (inAngle) refuse('"<" without ">"', at);
  if (inGroup) refuse('a group without its closing ";"', at);
  finish();
  return specs;
}

/** One list item: `addr-spec` or `[display-name] <addr-spec>`; null for an empty item. */
function mailboxSpec(tokens: readonly Token[], at: InputPosition): string | null {
  if (tokens.length === 0) return null;
  const open = tokens.findIndex((t) => t.kind === 'special' && t.text === '<');
  if (open === -1) return joinSpec(tokens, at);
  const close = tokens.findIndex((t) => t.kind === 'special' && t.text === '>');
  if (close !== tokens.length - 1) refuse('text after the ">" of an angle address', at);
  for (const token of tokens.slice(0, open)) {
    if (token.kind === 'special' && token.text !== '.') refuse(`"${token.text}" in a display name (quote the name)`, at);
  }
  const inner = tokens.slice(open + 1, close);
  // `<>` is passed on as such, so that parseAddress refuses it with its own words.
  return inner.length === 0 ? '<>' : joinSpec(inner, at);
}

/** An addr-spec's tokens, white space and comments already gone: words must be joined by "." or "@". */
function joinSpec(tokens: readonly Token[], at: InputPosition): string {
  let text = '';
  let previousWord = false;
  for (const token of tokens) {
    const word = token.kind === 'word';
    if (word && previousWord) {
      refuse('words separated by spaces: a display name needs the address in angle brackets ("Name <address>")', at);
    }
    if (!word && token.text !== '.' && token.text !== '@' && token.text !== ':') {
      refuse(`"${token.text}" in an address`, at);
    }
    text += token.text;
    previousWord = word;
  }
  return text;
}
