/** Parsers for command-line option values; a bad value is a usage error (64). */
import { InvalidArgumentError } from 'commander';

export function parseOctetCount(value: string): number {
  if (!/^[0-9]{1,15}$/.test(value) || Number(value) < 1) {
    throw new InvalidArgumentError('expected a whole number greater than 0');
  }
  return Number(value);
}
