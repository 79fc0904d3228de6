/**
 * @mailsubmit/shared: the submission contract in code. No side effects: every
 * module here only defines things, so the helper-facing daemon and the admin
 * CLI can both import it freely.
 */
export * from './errors.ts';
export * from './limits.ts';
export * from './status/outcomes.ts';
export * from './envelope/index.ts';
export * from './message/index.ts';
export * from './smtp/index.ts';
export * from './submission/index.ts';
export * from './sendmail/index.ts';
export * from './authorization/index.ts';
export * from './frame/index.ts';
export * from './text/escape-text.ts';
