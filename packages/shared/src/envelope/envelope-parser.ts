/**
 * The envelope block parser: attribute lines in, one validated, frozen
 * Envelope out.
 *
 * It is fed line by line (EnvelopeParser) because the daemon reads the
 * caller's stream and must refuse a bad line as soon as it arrives, before
 * anything goes downstream; the splitter in front of it owns line ends and
 * the line and block size limits. parseEnvelopeBlock does the splitting
 * itself, for tools, tests and the writer's round trip.
 *
 * Structure rules enforced here, beyond each line's own checks: single-valued
 * attributes once (an empty value is a copy too: two lines for one fact is a
 * caller bug whichever is empty), `dsn-notify-options` and `dsn-orig-rcpt` at
 * most once per recipient and only after one, `sender` once and at least one
 * `recipient` by the empty line, at most limits.maxRecipients recipients.
 */
import type {
  Address,
  ClientAttributes,
  Envelope,
  NotifyKeyword,
  OriginalRecipient,
  Recipient,
  ReturnOption,
  SaslAttributes,
  TlsAttributes,
} from './envelope.ts';
import { SubmissionError, type InputPosition } from '../errors.ts';
import { DEFAULT_LIMITS, type Limits } from '../limits.ts';
import type { AttributeName, PerRecipientName, SingleName } from './attribute-names.ts';
import { splitAttributeLine } from './attribute-line.ts';
import { parseAddress } from './address.ts';
import { parseClientAddress } from './client-address.ts';
import { parseEnvelopeId, parseNotify, parseOriginalRecipient, parseReturnOption } from './dsn-values.ts';
import {
  parseClientName,
  parseClientPort,
  parseEncryptionCipher,
  parseEncryptionProtocol,
  parseFingerprint,
  parseFreeText,
  parseHeloName,
  parseKeysize,
  parseProtocolName,
  parseSaslMethod,
  parseSize,
} from './value-grammars.ts';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

interface Position {
  readonly line: number;
  readonly attribute: AttributeName;
}

interface RecipientDraft {
  readonly address: Address;
  readonly line: number;
  notify?: readonly NotifyKeyword[];
  orcpt?: OriginalRecipient;
  readonly seen: Map<PerRecipientName, number>;
}

interface Draft {
  sender?: Address;
  envelopeId?: string;
  returnOption?: ReturnOption;
  size?: number;
  readonly client: Mutable<ClientAttributes>;
  readonly sasl: Mutable<SaslAttributes>;
  readonly tls: Mutable<TlsAttributes>;
}

type SingleHandler = (draft: Draft, value: string, at: Position, limits: Limits) => void;

/** What each single-valued attribute's (non-empty) value becomes. */
const SINGLE_HANDLERS: Readonly<Record<SingleName, SingleHandler>> = {
  sender: (d, v, at) => (d.sender = parseAddress(v, 'sender', at)),
  'dsn-envelope-id': (d, v, at) => (d.envelopeId = parseEnvelopeId(v, at)),
  'dsn-return-option': (d, v, at) => (d.returnOption = parseReturnOption(v, at)),
  size: (d, v, at, limits) => (d.size = parseSize(v, limits, at)),
  protocol_name: (d, v, at) => (d.client.protocolName = parseProtocolName(v, at)),
  helo_name: (d, v, at) => (d.client.heloName = parseHeloName(v, at)),
  client_name: (d, v, at) => (d.client.clientName = parseClientName(v, at)),
  client_address: (d, v, at) => (d.client.clientAddress = parseClientAddress(v, at)),
  client_port: (d, v, at) => (d.client.clientPort = parseClientPort(v, at)),
  sasl_method: (d, v, at) => (d.sasl.method = parseSaslMethod(v, at)),
  sasl_username: (d, v, at) => (d.sasl.username = parseFreeText(v, at)),
  sasl_sender: (d, v, at) => (d.sasl.sender = parseAddress(v, 'sasl_sender', at)),
  ccert_subject: (d, v, at) => (d.tls.ccertSubject = parseFreeText(v, at)),
  ccert_issuer: (d, v, at) => (d.tls.ccertIssuer = parseFreeText(v, at)),
  ccert_fingerprint: (d, v, at) => (d.tls.ccertFingerprint = parseFingerprint(v, at)),
  encryption_protocol: (d, v, at) => (d.tls.encryptionProtocol = parseEncryptionProtocol(v, at)),
  encryption_cipher: (d, v, at) => (d.tls.encryptionCipher = parseEncryptionCipher(v, at)),
  encryption_keysize: (d, v, at) => (d.tls.encryptionKeysize = parseKeysize(v, at)),
};

function structureError(detail: string, at: InputPosition): never {
  throw new SubmissionError('envelope-syntax', detail, at);
}

export class EnvelopeParser {
  readonly #limits: Limits;
  readonly #draft: Draft = { client: {}, sasl: {}, tls: {} };
  readonly #recipients: RecipientDraft[] = [];
  /** Line of the first copy of each single-valued attribute, empty or not. */
  readonly #seen = new Map<SingleName, number>();
  readonly #asserted = new Set<AttributeName>();
  #state: 'open' | 'finished' | 'failed' = 'open';

  constructor(limits: Limits = DEFAULT_LIMITS) {
    this.#limits = limits;
  }

  /**
   * One line of the block: its bytes without LF, and without the CR of a
   * CRLF. Throws SubmissionError at the first fault; the parser is unusable
   * after that.
   */
  addLine(line: Buffer, lineNumber: number): void {
    this.#expectOpen('addLine');
    try {
      const { spec, value } = splitAttributeLine(line, lineNumber);
      const at: Position = { line: lineNumber, attribute: spec.name };
      if (spec.placement === 'repeating') this.#addRecipient(value, at);
      else if (spec.placement === 'per-recipient') this.#addPerRecipient(spec.name as PerRecipientName, value, at);
      else this.#addSingle(spec.name as SingleName, value, at);
    } catch (error) {
      this.#state = 'failed';
      throw error;
    }
  }

  /** The empty line that ends the block: checks what is required and returns the envelope. */
  finish(emptyLineNumber: number): Envelope {
    this.#expectOpen('finish');
    this.#state = 'failed';
    const { sender, envelopeId, returnOption, size, client, sasl, tls } = this.#draft;
    if (sender === undefined) {
      structureError('missing: every submission needs one sender line (the null sender is written <>)', {
        line: emptyLineNumber,
        attribute: 'sender',
      });
    }
    if (this.#recipients.length === 0) {
      structureError('missing: every submission needs at least one recipient line', {
        line: emptyLineNumber,
        attribute: 'recipient',
      });
    }
    const envelope: Mutable<Envelope> = {
      sender,
      recipients: Object.freeze(this.#recipients.map(freezeRecipient)),
      client: Object.freeze({ ...client }),
      sasl: Object.freeze({ ...sasl }),
      tls: Object.freeze({ ...tls }),
      asserted: Object.freeze([...this.#asserted]),
    };
    if (envelopeId !== undefined) envelope.envelopeId = envelopeId;
    if (returnOption !== undefined) envelope.returnOption = returnOption;
    if (size !== undefined) envelope.size = size;
    this.#state = 'finished';
    return Object.freeze(envelope);
  }

  #expectOpen(method: string): void {
    if (this.#state !== 'open') {
      // A programming error in the caller, never the submitter's: a temporary failure.
      throw new SubmissionError('internal', `EnvelopeParser.${method} called after the parser ${this.#state}`);
    }
  }

  #addSingle(name: SingleName, value: string, at: Position): void {
    const first = this.#seen.get(name);
    if (first !== undefined) structureError(`given twice (first on line ${first}); it may appear once`, at);
    this.#seen.set(name, at.line);
    // The handler refuses an empty sender; every other empty value means "not given".
    if (value === '' && name !== 'sender') return;
    SINGLE_HANDLERS[name](this.#draft, value, at, this.#limits);
    this.#asserted.add(name);
  }

  #addRecipient(value: string, at: Position): void {
    if (this.#recipients.length >= this.#limits.maxRecipients) {
      throw new SubmissionError('over-limit', `more than ${this.#limits.maxRecipients} recipients (limits.max_recipients in mailsubmit.conf)`, at);
    }
    const address = parseAddress(value, 'recipient', at);
    this.#recipients.push({ address, line: at.line, seen: new Map() });
    this.#asserted.add('recipient');
  }

  #addPerRecipient(name: PerRecipientName, value: string, at: Position): void {
    const recipient = this.#recipients.at(-1);
    if (recipient === undefined) {
      structureError('belongs to the recipient line above it, and there is none yet', at);
    }
    const first = recipient.seen.get(name);
    if (first !== undefined) {
      structureError(`given twice for the recipient on line ${recipient.line} (first on line ${first})`, at);
    }
    recipient.seen.set(name, at.line);
    if (value === '') return;
    if (name === 'dsn-notify-options') recipient.notify = parseNotify(value, at);
    else recipient.orcpt = parseOriginalRecipient(value, at);
    this.#asserted.add(name);
  }
}

function freezeRecipient(draft: RecipientDraft): Recipient {
  const recipient: Mutable<Recipient> = { address: draft.address, line: draft.line };
  if (draft.notify !== undefined) recipient.notify = draft.notify;
  if (draft.orcpt !== undefined) recipient.orcpt = draft.orcpt;
  return Object.freeze(recipient);
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * Parse a whole envelope block: lines end in LF or CRLF, the first empty line
 * ends the block, and whatever follows it (the message) is not looked at.
 * Applies the line and block limits the stream splitter applies in the daemon.
 */
export function parseEnvelopeBlock(block: string | Buffer, limits: Limits = DEFAULT_LIMITS): Envelope {
  const bytes = typeof block === 'string' ? Buffer.from(block, 'utf8') : block;
  const parser = new EnvelopeParser(limits);
  let start = 0;
  let lineNumber = 1;
  for (;;) {
    const lf = bytes.indexOf(LF, start);
    if (lf < 0) {
      structureError('the envelope block does not end with an empty line', { line: lineNumber });
    }
    if (lf + 1 > limits.maxEnvelopeOctets) {
      throw new SubmissionError('over-limit', `the envelope block is longer than ${limits.maxEnvelopeOctets} octets`, {
        line: lineNumber,
      });
    }
    const end = lf > start && bytes[lf - 1] === CR ? lf - 1 : lf;
    if (end - start > limits.maxEnvelopeLineOctets) {
      throw new SubmissionError('over-limit', `the line is longer than ${limits.maxEnvelopeLineOctets} octets`, {
        line: lineNumber,
      });
    }
    if (end === start) return parser.finish(lineNumber);
    parser.addLine(bytes.subarray(start, end), lineNumber);
    start = lf + 1;
    lineNumber++;
  }
}
