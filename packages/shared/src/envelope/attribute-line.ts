/**
 * One line of the envelope block, from bytes to (attribute, value).
 *
 * The checks every attribute shares live here, in the order a person fixing
 * the line would want them: is it `name: value` at all, is the name known,
 * does the value hold a control character (TAB, a lone CR, NUL, DEL, ESC...),
 * does it end in spaces, is its 8-bit text valid UTF-8 and allowed for this
 * attribute. The grammars of the values come after, and can rely on all this.
 */
import { SubmissionError } from '../errors.ts';
import { lookupAttribute, WRITTEN_NAME, type AttributeSpec } from './attribute-names.ts';
import { describeCharacter, findControl } from './characters.ts';

export interface AttributeLine {
  readonly spec: AttributeSpec;
  /** The value with the spaces after the colon skipped; '' when none was given. */
  readonly value: string;
}

const COLON = 0x3a;
const SPACE = 0x20;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function splitAttributeLine(line: Buffer, lineNumber: number): AttributeLine {
  const colon = line.indexOf(COLON);
  const nameEnd = colon < 0 ? line.length : colon;
  const badByte = firstControlByte(line, 0, nameEnd);
  if (badByte !== undefined) {
    envelopeError(`${describeCharacter(badByte)} in the attribute name`, lineNumber);
  }
  if (colon < 0) envelopeError('not an attribute line: expected "name: value"', lineNumber);
  const written = line.toString('latin1', 0, colon);
  if (written === '') envelopeError('no attribute name before the colon', lineNumber);
  if (!WRITTEN_NAME.test(written)) {
    envelopeError(
      `"${sanitizedName(written)}" is not an attribute name (letters, digits, '-' and '_'; no space before the colon)`,
      lineNumber,
    );
  }
  const spec = lookupAttribute(written);
  if (spec === undefined) envelopeError(`unknown attribute "${sanitizedName(written)}"`, lineNumber);

  const at = { line: lineNumber, attribute: spec.name };
  const refuse = (detail: string): never => {
    throw new SubmissionError(spec.outcome, detail, at);
  };
  let start = colon + 1;
  while (start < line.length && line[start] === SPACE) start++;
  const control = firstControlByte(line, start, line.length);
  if (control !== undefined) refuse(`the value has ${describeCharacter(control)}`);
  if (start < line.length && line[line.length - 1] === SPACE) {
    refuse('trailing space after the value (remove it: it is invisible, and never meant)');
  }
  let value: string;
  if (isAscii(line, start)) {
    value = line.toString('latin1', start);
  } else {
    if (!spec.eightBit) refuse('non-ASCII characters are not allowed in this attribute');
    value = decodeUtf8(line.subarray(start), refuse);
    const c1 = findControl(value);
    if (c1 !== undefined) refuse(`the value has ${describeCharacter(c1)}`);
  }
  return { spec, value };
}

function envelopeError(detail: string, lineNumber: number): never {
  throw new SubmissionError('envelope-syntax', detail, { line: lineNumber });
}

function firstControlByte(line: Buffer, from: number, to: number): number | undefined {
  for (let i = from; i < to; i++) {
    const byte = line[i] as number;
    if (byte < 0x20 || byte === 0x7f) return byte;
  }
  return undefined;
}

function isAscii(line: Buffer, from: number): boolean {
  for (let i = from; i < line.length; i++) {
    if ((line[i] as number) > 0x7f) return false;
  }
  return true;
}

function decodeUtf8(bytes: Buffer, refuse: (detail: string) => never): string {
  try {
    return utf8.decode(bytes);
  } catch {
    return refuse('the value is not valid UTF-8');
  }
}

/** A refused name is echoed, but never with bytes that could upset a terminal or a log. */
function sanitizedName(written: string): string {
  const shown = written.length > 64 ? `${written.slice(0, 64)}...` : written;
  return shown.replace(/[^\x20-\x7e]/g, '?');
}
