/**
 * Realistic message text for the validate benchmarks: a header section of 15
 * fields of the usual lengths, then a body of 72-76 octet lines of words,
 * plain US-ASCII. Body line 13 and every 5000th after it start with a dot:
 * the 4 KB message has one (so its CRLF variant is copied, not passed
 * through), the 10 MB message one every ~6 chunks (big messages are mostly
 * base64, which never starts a line with a dot). Seeded, so every process
 * builds the same octets.
 */

const WORDS = (
  'the of and to in is was that for on with as by at from this are be which or have an not were ' +
  'message delivery queue server recipient sender address header body transport mailbox relay ' +
  'configuration daemon submission envelope postfix helper socket limit octets line'
).split(' ');

const FIELDS = [
  'Return-Path: <bounce-1234@lists.example.org>',
  'Received: from mx1.example.net (mx1.example.net [192.0.2.25])\n\tby mail.example.org (Postfix) with ESMTPS id 4F2A1C0012\n\tfor <alice@example.org>; Tue, 12 Mar 2024 10:15:02 +0100 (CET)',
  'Received: from [198.51.100.7] (unknown [198.51.100.7])\n\tby mx1.example.net (Postfix) with ESMTPSA id 9B3E2A0001;\n\tTue, 12 Mar 2024 10:15:01 +0100 (CET)',
  'DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.net; s=mail;\n\tt=1710234901; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\n\th=From:To:Subject:Date:Message-ID;\n\tb=Qk9HVVMgU0lHTkFUVVJFIEZPUiBCRU5DSE1BUktJTkcgT05MWQ==',
  'Message-ID: <20240312091501.12345.67890@mx1.example.net>',
  'Date: Tue, 12 Mar 2024 10:15:01 +0100',
  'From: Bob Example <bob@example.net>',
  'To: Alice Example <alice@example.org>',
  'Cc: list@lists.example.org',
  'Subject: Re: quarterly report on delivery queue latency',
  'In-Reply-To: <20240311170203.5555.1111@mail.example.org>',
  'References: <20240311170203.5555.1111@mail.example.org>',
  'MIME-Version: 1.0',
  'Content-Type: text/plain; charset=us-ascii; format=flowed',
  'Content-Transfer-Encoding: 7bit',
];

const DOT_EVERY = 5000;

function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** About `octets` octets of message (never less), with `eol` line ends. */
export function sampleMessage(octets: number, eol: '\n' | '\r\n'): Buffer {
  const next = random(42);
  const parts: string[] = [];
  let size = 0;
  const push = (line: string): void => {
    parts.push(line + eol);
    size += line.length + eol.length;
  };
  for (const field of FIELDS) for (const line of field.split('\n')) push(line);
  push('');
  let lineNo = 0;
  while (size < octets) {
    const width = 72 + Math.floor(next() * 5);
    let line = lineNo++ % DOT_EVERY === 13 ? '.' : '';
    while (line.length < width) line += (line.length > 1 ? ' ' : '') + WORDS[Math.floor(next() * WORDS.length)];
    push(line.slice(0, width));
  }
  return Buffer.from(parts.join(''), 'latin1');
}

/** The message as a pipe delivers it: reads of at most 64 KiB. */
export function pipeChunks(message: Buffer, chunkOctets = 64 * 1024): Buffer[] {
  const chunks: Buffer[] = [];
  for (let i = 0; i < message.length; i += chunkOctets) chunks.push(message.subarray(i, i + chunkOctets));
  return chunks;
}
