/** A bad command line found after parsing (a principal that is not one): exit 64. */
export class UsageError extends Error {
  readonly code = 'ERR_USAGE';
}

/** A failure with its own sysexits status (the daemon is not running: 75; not root: 77). */
export class ExitError extends Error {
  readonly code = 'ERR_EXIT';
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}
