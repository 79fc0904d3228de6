/**
 * The wire frame between the set-gid helper and the daemon: one request frame
 * (with fd 0, and fd 1 for qmail-queue, beside it as SCM_RIGHTS) and one reply
 * frame per connection on a SOCK_SEQPACKET socket.
 */
export * from './constants.ts';
export * from './frame-error.ts';
export * from './request.ts';
export * from './reply.ts';
export * from './reply-text.ts';
