/**
 * Queue ids, tied to the inode (rule 5 of the queue-file rules), as
 * Postfix's long queue ids are: the time the file was created, to the
 * microsecond, then the file's inode number. Two live files on one file
 * system never share an inode, so no rename into ready/ can replace another
 * message; the time keeps an id from naming again, in the log, an earlier
 * message whose inode the file system has since reused.
 *
 *   0TPLIWVCL8B-1A1BI    seconds (7) and microseconds (4) in base 36, "-", inode in base 36
 *
 * Upper case and digits only: safe as a file name and in a log line; ids
 * of one queue sort by creation time.
 */
const QUEUE_ID = /^[0-9A-Z]{11}-[0-9A-Z]{1,14}$/;

/** Microseconds since the epoch, finer than Date.now(). */
function microsecondsNow(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000));
}

export function makeQueueId(inode: bigint, microseconds: bigint = microsecondsNow()): string {
  const seconds = (microseconds / 1_000_000n).toString(36).padStart(7, '0');
  const fraction = (microseconds % 1_000_000n).toString(36).padStart(4, '0');
  return `${seconds}${fraction}-${inode.toString(36)}`.toUpperCase();
}

export function isQueueId(name: string): boolean {
  return QUEUE_ID.test(name);
}
