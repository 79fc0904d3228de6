/**
 * The submission id (`sid`) that ties a connection's log lines together:
 * 12 hex digits from the system's CSPRNG, as randomBytes(6) gave them.
 *
 * The random bytes are drawn 6 KiB at a time and handed out 6 at a time:
 * one randomBytes call per submission was 1.1-1.4 % of the daemon's time
 * per submission in its CPU profile (each call a round into OpenSSL).
 */
import { randomBytes } from 'node:crypto';

const ID_OCTETS = 6;
const IDS_PER_DRAW = 1024;

let pool = Buffer.alloc(0);
let next = 0;

export function newSubmissionId(): string {
  if (next + ID_OCTETS > pool.length) {
    pool = randomBytes(ID_OCTETS * IDS_PER_DRAW);
    next = 0;
  }
  const id = pool.toString('hex', next, next + ID_OCTETS);
  next += ID_OCTETS;
  return id;
}
