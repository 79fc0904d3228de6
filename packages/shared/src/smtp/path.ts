/**
 * `<path>` for MAIL FROM and RCPT TO, with a structural check.
 *
 * The envelope validator has already checked each address against the
 * RFC 5321 grammar. This check is narrower and independent of it: it only
 * makes sure that the text, put between angle brackets, ends exactly at the
 * closing bracket. A '>' or space outside a quoted string, or an unbalanced
 * quote, would let the rest of the address be read as ESMTP parameters
 * (`a@b> NOTIFY=NEVER`), so such a text is refused instead of sent.
 */
import { SubmissionError, type InputPosition } from '../errors.ts';
import type { Outcome } from '../status/outcomes.ts';

/** Why `text` cannot stand between angle brackets, or null when it can. */
export function pathProblem(text: string): string | null {
  let quoted = false;
  let escaped = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i] as string;
    if (escaped) {
      escaped = false;
    } else if (quoted) {
      if (char === '\\') escaped = true;
      else if (char === '"') quoted = false;
    } else if (char === '"') {
      quoted = true;
    } else if (char === '<' || char === '>' || char === ' ' || char === '\t' || char === '\\') {
      return `'${char === '\t' ? '\\t' : char}' outside a quoted string at offset ${i}`;
    }
  }
  if (quoted || escaped) return 'unbalanced quote';
  return null;
}

/** `<text>`, or a SubmissionError with `outcome` when the text would not stay inside. */
export function formatPath(text: string, outcome: Outcome, position: InputPosition): string {
  if (typeof text !== 'string') throw new SubmissionError(outcome, 'address is not a string', position);
  const problem = pathProblem(text);
  if (problem !== null) throw new SubmissionError(outcome, `address cannot be sent in SMTP: ${problem}`, position);
  return `<${text}>`;
}
