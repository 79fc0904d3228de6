/**
 * The message part of a submission: streaming checks and SMTP DATA encoding.
 */

export { MessageEncoder, type MessageEncoderOptions, type MessageStats } from './message-encoder.ts';
export { MessageEncoderTransform } from './message-encoder-transform.ts';
