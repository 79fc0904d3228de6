/**
 * The front doors this daemon serves, by the mode byte the helper writes
 * into the request frame: the one place where the helper's choice of door
 * is turned into a door.
 */
import type { RequestMode } from '@mailsubmit/shared';
import type { FrontDoor } from './front-door.ts';
import { nativeDoor } from './native/native-door.ts';
import { qmailQueueDoor } from './qmail-queue/qmail-queue-door.ts';
import { sendmailDoor } from './sendmail/sendmail-door.ts';

const DOORS: readonly FrontDoor[] = [nativeDoor, sendmailDoor, qmailQueueDoor];

/** The door for `mode`, or undefined for a mode this daemon does not serve. */
export function frontDoorFor(mode: RequestMode | number | null): FrontDoor | undefined {
  return DOORS.find((door) => door.mode === mode);
}
