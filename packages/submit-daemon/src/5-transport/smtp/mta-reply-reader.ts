/**
 * Assembles SMTP replies from the bytes a server sends: lines end in CRLF
 * (a bare LF is tolerated), continuation lines (`250-`) must keep the code,
 * and both one line and one reply are capped so a broken or hostile server
 * cannot make the daemon buffer without bound.
 */
import { makeReply, parseReplyLine, type SmtpReply } from '@mailsubmit/shared';
import { SmtpError } from './smtp-error.ts';

export interface MtaReplyLimits {
  /** Longest reply line without its line end (RFC 5321 says 512 with it; servers go beyond). */
  readonly maxLineOctets: number;
  /** Most lines in one reply (an EHLO reply has about a dozen). */
  readonly maxLines: number;
}

export const DEFAULT_MTA_REPLY_LIMITS: MtaReplyLimits = Object.freeze({ maxLineOctets: 2048, maxLines: 100 });

const LF = 0x0a;
const CR = 0x0d;

export class MtaReplyReader {
  private readonly limits: MtaReplyLimits;
  private partial: Buffer | null = null;
  private code = 0;
  private lines: string[] = [];

  constructor(limits: MtaReplyLimits = DEFAULT_MTA_REPLY_LIMITS) {
    this.limits = limits;
  }

  /** Whether bytes are held that complete no reply yet (part of a line, or lines of a multi-line reply). */
  get holdsBytes(): boolean {
    return this.partial !== null || this.lines.length > 0;
  }

  /** Feeds bytes; returns the replies they complete. Throws SmtpError on a protocol violation. */
  push(chunk: Buffer): SmtpReply[] {
    const data = this.partial === null ? chunk : Buffer.concat([this.partial, chunk]);
    this.partial = null;
    const replies: SmtpReply[] = [];
    let start = 0;
    for (let lf = data.indexOf(LF, start); lf >= 0; lf = data.indexOf(LF, start)) {
      const end = lf > start && data[lf - 1] === CR ? lf - 1 : lf;
      const reply = this.line(data.subarray(start, end));
      if (reply !== null) replies.push(reply);
      start = lf + 1;
    }
    if (start < data.length) {
      if (data.length - start > this.limits.maxLineOctets) throw this.tooLong();
      this.partial = Buffer.from(data.subarray(start));
    }
    return replies;
  }

  private line(bytes: Buffer): SmtpReply | null {
    if (bytes.length > this.limits.maxLineOctets) throw this.tooLong();
    const text = bytes.toString('utf8');
    const parsed = parseReplyLine(text);
    if (parsed === null) {
      throw new SmtpError('ERR_SMTP_BAD_REPLY', 'mta-protocol', `not an SMTP reply line: ${JSON.stringify(text.slice(0, 80))}`);
    }
    if (this.lines.length > 0 && parsed.code !== this.code) {
      throw new SmtpError(
        'ERR_SMTP_BAD_REPLY',
        'mta-protocol',
        `a multi-line reply changed its code from ${this.code} to ${parsed.code}`,
      );
    }
    this.code = parsed.code;
    this.lines.push(parsed.text);
    if (this.lines.length > this.limits.maxLines) {
      throw new SmtpError('ERR_SMTP_REPLY_TOO_LONG', 'mta-protocol', `a reply of more than ${this.limits.maxLines} lines`);
    }
    if (!parsed.last) return null;
    const reply = makeReply(this.code, this.lines);
    this.lines = [];
    return reply;
  }

  private tooLong(): SmtpError {
    return new SmtpError(
      'ERR_SMTP_REPLY_TOO_LONG',
      'mta-protocol',
      `a reply line of more than ${this.limits.maxLineOctets} octets`,
    );
  }
}
