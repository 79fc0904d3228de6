/**
 * Who is queued: a submission the MTA cannot take now waits in the local
 * queue (and its caller hears 0) only when the front door queues for every
 * caller (queue.sendmail_door, queue.native_door, queue.qmail_queue_door)
 * or the caller's list entry has the `queue` capability. Only the MTA's
 * temporary failures are queued: a permanent refusal, a message that fails
 * validation, a caller that went away or the daemon's own shortage get
 * their exit code at once, as before.
 *
 * Defaults follow the callers: a sendmail(1) caller (cron, a PHP site, a
 * script) has nowhere to keep a message and Postfix's own sendmail never
 * fails while Postfix is down; a content filter on the native or
 * qmail-queue door keeps its own queue and wants the 75.
 */
import type { Grant, Outcome } from '@mailsubmit/shared';
import type { DaemonConfig } from '../../config/daemon-config.ts';

/** The MTA could not take the message now: the only outcomes that are queued. */
export const QUEUED_OUTCOMES: ReadonlySet<Outcome> = new Set<Outcome>(['mta-unreachable', 'mta-timeout', 'mta-protocol', 'mta-tempfail']);

/** Whether a submission at this front door, by this caller, waits in the queue when the MTA cannot take it. */
export function queueingAllowed(frontDoor: string, grant: Grant, config: DaemonConfig): boolean {
  if (grant.capabilities.has('queue')) return true;
  const { queue } = config;
  if (frontDoor === 'sendmail') return queue.sendmailDoor;
  if (frontDoor === 'native') return queue.nativeDoor;
  if (frontDoor === 'qmail-queue') return queue.qmailQueueDoor;
  return false;
}
