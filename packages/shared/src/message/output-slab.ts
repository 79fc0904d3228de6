/**
 * Output memory for the message encoder: one large Buffer carved into
 * consecutive, never-reused regions, the way Node's own Buffer pool works
 * (but with regions of up to a whole chunk).
 *
 * Why: every chunk with LF line ends needs a new output buffer (a CR goes in
 * before each LF). Allocating one Buffer of ~66 KiB per 64 KiB chunk cost
 * about as much as the whole line scan: on Node 20.20, LF text in 64 KiB
 * chunks, a per-chunk Buffer.allocUnsafe ran at ~900 MB/s against ~1,600 MB/s
 * when the same copies went into a shared 256 KiB slab (1 MiB: ~1,650 MB/s,
 * not worth four times the memory a stalled reader can pin).
 *
 * Safety: a region is handed out once and never written again, so a consumer
 * may keep it as long as it likes; it pins at most one slab. The encoder is
 * synchronous, so nothing can reserve between its reserve and its commit.
 */

const SLAB_OCTETS = 256 * 1024;

let slab: Buffer = Buffer.alloc(0);
let used = 0;

/** A Buffer with at least `octets` free from outputOffset() on. */
export function reserveOutput(octets: number): Buffer {
  if (slab.length - used < octets) {
    slab = Buffer.allocUnsafe(Math.max(SLAB_OCTETS, octets));
    used = 0;
  }
  return slab;
}

/** Where the free part of the last reserved Buffer starts. */
export function outputOffset(): number {
  return used;
}

/**
 * Marks the slab up to `end` as handed out. Called only with the buffer that
 * reserveOutput returned; a buffer that was replaced (grown) meanwhile is not
 * the slab and is ignored.
 */
export function commitOutput(buffer: Buffer, end: number): void {
  if (buffer === slab) used = end;
}
