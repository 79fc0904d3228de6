/** Option parsing shared by the commands; a bad value is a usage error (64). */
import { InvalidArgumentError } from 'commander';

export const DEFAULT_AUTHORIZATION_LIST = '/etc/mailsubmit/authorized';

export interface GlobalOptions {
  authorizationList?: string;
}

export function parseOctetCount(value: string): number {
  if (!/^[0-9]{1,15}$/.test(value) || Number(value) < 1) {
    throw new InvalidArgumentError('expected a whole number greater than 0');
  }
  return Number(value);
}

export function authorizationListPath(options: GlobalOptions): string {
  return options.authorizationList ?? DEFAULT_AUTHORIZATION_LIST;
}
