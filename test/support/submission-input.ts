/**
 * What a caller pipes into mailsubmit (docs/submission-interface.md): the
 * envelope's attribute lines, in UTF-8, an empty line, then the message's
 * octets exactly as they are.
 *
 *   submissionInput(['sender: <alice@example.net>', 'recipient: <bob@example.org>'], message)
 */
export function submissionInput(envelope: readonly string[], message: Buffer | string): Buffer {
  return Buffer.concat([Buffer.from(`${envelope.join('\n')}\n\n`, 'utf8'), typeof message === 'string' ? Buffer.from(message, 'utf8') : message]);
}
