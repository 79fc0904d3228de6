/** A bad command line found after parsing (a principal that is not one): exit 64. */
export class UsageError extends Error {
  readonly code = 'ERR_USAGE';
}
