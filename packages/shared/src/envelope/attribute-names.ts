/**
 * The attribute names of the envelope block and how a written name finds one.
 *
 * The contract matches names case-insensitively and takes `-` and `_` as the
 * same character, because the 2006 sketch mixed both (`dsn-envelope-id` next
 * to `client_address`) and callers copy whichever spelling they saw. The
 * canonical name, used in messages, logs and the authorization list, is the
 * one the contract's table writes.
 */
import type { Outcome } from '../status/outcomes.ts';

export const ATTRIBUTE_NAMES = [
  'sender',
  'recipient',
  'dsn-notify-options',
  'dsn-orig-rcpt',
  'dsn-envelope-id',
  'dsn-return-option',
  'size',
  'protocol_name',
  'helo_name',
  'client_name',
  'client_address',
  'client_port',
  'sasl_method',
  'sasl_username',
  'sasl_sender',
  'ccert_subject',
  'ccert_issuer',
  'ccert_fingerprint',
  'encryption_protocol',
  'encryption_cipher',
  'encryption_keysize',
] as const;

export type AttributeName = (typeof ATTRIBUTE_NAMES)[number];

/** Attributes that belong to the nearest `recipient` line above them. */
export type PerRecipientName = 'dsn-notify-options' | 'dsn-orig-rcpt';

/** Attributes that may appear at most once in the block. */
export type SingleName = Exclude<AttributeName, 'recipient' | PerRecipientName>;

/**
 * - single: at most once in the block;
 * - repeating: any number of times (only `recipient`);
 * - per-recipient: at most once after each `recipient` line.
 */
export type Placement = 'single' | 'repeating' | 'per-recipient';

export interface AttributeSpec {
  readonly name: AttributeName;
  readonly placement: Placement;
  /** May the value hold UTF-8 beyond US-ASCII (addresses and free text only). */
  readonly eightBit: boolean;
  /** Outcome of an error in the value; structural errors are always envelope-syntax. */
  readonly outcome: Outcome;
}

const EIGHT_BIT: ReadonlySet<AttributeName> = new Set<AttributeName>([
  'sender',
  'recipient',
  'sasl_sender',
  'dsn-orig-rcpt',
  'sasl_username',
  'ccert_subject',
  'ccert_issuer',
]);

function placementOf(name: AttributeName): Placement {
  if (name === 'recipient') return 'repeating';
  if (name === 'dsn-notify-options' || name === 'dsn-orig-rcpt') return 'per-recipient';
  return 'single';
}

function outcomeOf(name: AttributeName): Outcome {
  if (name === 'sender') return 'sender-syntax';
  if (name === 'recipient') return 'recipient-syntax';
  return 'envelope-syntax';
}

export const ATTRIBUTES: ReadonlyMap<AttributeName, AttributeSpec> = new Map(
  ATTRIBUTE_NAMES.map((name) => [
    name,
    Object.freeze({ name, placement: placementOf(name), eightBit: EIGHT_BIT.has(name), outcome: outcomeOf(name) }),
  ]),
);

/** The form two spellings of one name share: lower case, `_` written as `-`. */
export function nameKey(written: string): string {
  return written.toLowerCase().replaceAll('_', '-');
}

const BY_KEY: ReadonlyMap<string, AttributeSpec> = new Map(
  [...ATTRIBUTES.values()].map((spec) => [nameKey(spec.name), spec]),
);

/** What a name in an attribute line may be made of, before it is looked up. */
export const WRITTEN_NAME = /^[A-Za-z0-9_-]+$/;

/** The attribute a written name means, or undefined when there is none. */
export function lookupAttribute(written: string): AttributeSpec | undefined {
  if (!WRITTEN_NAME.test(written)) return undefined;
  return BY_KEY.get(nameKey(written));
}

/** The spec of a canonical name; the table has every name, so this never fails. */
export function attributeSpec(name: AttributeName): AttributeSpec {
  return ATTRIBUTES.get(name) as AttributeSpec;
}

export function isAttributeName(value: string): value is AttributeName {
  return ATTRIBUTES.has(value as AttributeName);
}
