/**
 * Who may take how much of the spool directory. A qmail-queue message is
 * held there while its envelope is read (3-intake/held-message.ts), so the
 * space is the daemon's, spent on a caller's behalf before that caller's
 * envelope is known: it is bounded per uid, in total, and by a free-space
 * reserve on the file system (statfs), each a configuration key. Every
 * refusal is `spool-full` (75; qmail-queue 53, "write error or disk full")
 * and names the key that refused it, so the administrator knows what to
 * raise and the caller knows to try again later.
 *
 * Octets are claimed before they are written and given back when the held
 * file is closed (util/space-ledger.ts).
 */
import { SpaceLedger, statfsFreeSpace, type FreeSpace, type SpaceClaim, type SpaceLimits } from '../util/space-ledger.ts';

export { statfsFreeSpace, type FreeSpace } from '../util/space-ledger.ts';

/** limits.spool_quota_per_uid, limits.spool_quota_total, limits.spool_min_free. */
export type SpoolLimits = SpaceLimits;
export type SpoolClaim = SpaceClaim;

/** Growth between two statfs checks: the check asks for this much room above the reserve. */
export const FREE_SPACE_STEP = 1024 * 1024;

/** The spool's ledger of held octets, per uid and in total; refusals name the key to raise. */
export class SpoolSpace extends SpaceLedger {
  constructor(freeSpace: FreeSpace = statfsFreeSpace) {
    super(
      {
        perUid: (uid, held, quota) => `uid ${uid} already has ${held} octets held in the spool and limits.spool_quota_per_uid is ${quota}: try again later`,
        total: (held, quota) => `the spool holds ${held} octets and limits.spool_quota_total is ${quota}: try again later`,
        reserve: (directory, free, reserve) => `the file system of ${directory} has ${free} octets free and limits.spool_min_free keeps ${reserve} of them: try again later`,
      },
      FREE_SPACE_STEP,
      freeSpace,
    );
  }
}

/** The daemon's one ledger: one process, one spool directory. */
export const daemonSpoolSpace = new SpoolSpace();
