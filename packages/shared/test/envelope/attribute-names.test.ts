/** Attribute names: spellings that match, names that do not, and what each attribute allows. */
import { describe, expect, it } from 'vitest';
import {
  ATTRIBUTE_NAMES,
  attributeSpec,
  isAttributeName,
  lookupAttribute,
  nameKey,
} from '../../src/envelope/attribute-names.ts';

describe('attribute names', () => {
  it('has the 21 names of the contract, spelled as its table spells them', () => {
    expect(ATTRIBUTE_NAMES).toHaveLength(21);
    expect(ATTRIBUTE_NAMES).toContain('dsn-orig-rcpt');
    expect(ATTRIBUTE_NAMES).toContain('client_address');
    expect(ATTRIBUTE_NAMES).toContain('encryption_keysize');
  });

  it.each([
    ['sender', 'sender'],
    ['SENDER', 'sender'],
    ['Recipient', 'recipient'],
    ['dsn_envelope_id', 'dsn-envelope-id'],
    ['DSN-Envelope_ID', 'dsn-envelope-id'],
    ['client-address', 'client_address'],
    ['Client_Address', 'client_address'],
    ['dsn_notify_options', 'dsn-notify-options'],
    ['CCERT-FINGERPRINT', 'ccert_fingerprint'],
  ])('%s means %s', (written, canonical) => {
    expect(lookupAttribute(written)?.name).toBe(canonical);
  });

  it.each(['', 'sender ', ' sender', 'send er', 'rcpt', 'from', 'senderx', 'sender:', 'séndér', 'dsn--envelope-id', 'size\u0000'])(
    'knows no attribute %j',
    (written) => {
      expect(lookupAttribute(written)).toBeUndefined();
    },
  );

  it('folds case and _ into one key', () => {
    expect(nameKey('Client_Port')).toBe('client-port');
  });

  it('places recipient, the DSN per-recipient attributes and the rest', () => {
    expect(attributeSpec('recipient').placement).toBe('repeating');
    expect(attributeSpec('dsn-notify-options').placement).toBe('per-recipient');
    expect(attributeSpec('dsn-orig-rcpt').placement).toBe('per-recipient');
    for (const name of ATTRIBUTE_NAMES) {
      if (!['recipient', 'dsn-notify-options', 'dsn-orig-rcpt'].includes(name)) {
        expect(attributeSpec(name).placement).toBe('single');
      }
    }
  });

  it('allows 8-bit text only in addresses and free text', () => {
    const eightBit = ATTRIBUTE_NAMES.filter((name) => attributeSpec(name).eightBit).sort();
    expect(eightBit).toEqual(
      ['ccert_issuer', 'ccert_subject', 'dsn-orig-rcpt', 'recipient', 'sasl_sender', 'sasl_username', 'sender'].sort(),
    );
  });

  it('gives value errors of sender and recipient their own outcomes', () => {
    expect(attributeSpec('sender').outcome).toBe('sender-syntax');
    expect(attributeSpec('recipient').outcome).toBe('recipient-syntax');
    expect(attributeSpec('sasl_sender').outcome).toBe('envelope-syntax');
    expect(attributeSpec('size').outcome).toBe('envelope-syntax');
  });

  it('recognizes canonical names only', () => {
    expect(isAttributeName('client_port')).toBe(true);
    expect(isAttributeName('client-port')).toBe(false);
  });
});
