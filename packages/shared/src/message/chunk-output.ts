/**
 * Where the encoder's output octets go, one input chunk at a time.
 *
 * While a chunk needs no change (CRLF line ends, no leading dot), nothing is
 * copied: finish() hands back a subarray of the input itself. Measured on
 * Node 20.20: copying a 64 KiB chunk into fresh slab memory took 4-17 us
 * (memcpy plus the page faults of new memory), a subarray 0.05 us, against
 * ~45 us to scan a CRLF chunk; the copy would add a tenth to a third.
 * At the first change (a CR to insert before an LF, a dot to double) the
 * output moves into a region of a shared slab, and the input is copied
 * segment by segment between the inserted octets.
 *
 * The slab: one large Buffer carved into consecutive regions that are handed
 * out once and never written again (the way Node's own Buffer pool works, but
 * with regions of up to a whole chunk), so a consumer may keep a region as
 * long as it likes; it pins at most one slab. Why: with LF input every chunk
 * needs new output memory, and a Buffer.allocUnsafe of ~66 KiB per 64 KiB
 * chunk cost about as much as the whole line scan. On Node 20.20, LF text in
 * 64 KiB chunks: per-chunk allocation ~900 MB/s, a shared 256 KiB slab
 * ~1,600 MB/s, 1 MiB ~1,650 MB/s (not worth four times the memory a stalled
 * reader can pin). The encoder is synchronous, so nothing else can take from
 * the slab between begin() and finish().
 */

const SLAB_OCTETS = 256 * 1024;

const EMPTY: Buffer = Buffer.alloc(0);

let slab: Buffer = EMPTY;
let slabUsed = 0;

export class ChunkOutput {
  /** Output so far is buffer[base, o); undefined while the chunk passes unchanged. */
  buffer: Buffer | undefined;
  base = 0;
  o = 0;
  /** End of the room reserved in buffer. */
  cap = 0;
  /** Input from here on is not yet copied. */
  copyFrom = 0;
  #input: Buffer = EMPTY;
  #to = 0;

  /** Starts on input[0, to). */
  begin(input: Buffer, to: number): void {
    this.buffer = undefined;
    this.copyFrom = 0;
    this.#input = input;
    this.#to = to;
  }

  /** Emits the input up to x, then `octet`; the input from x on is still to copy. */
  insert(x: number, octet: number): void {
    const n = x - this.copyFrom;
    const out = this.buffer === undefined || this.o + n + 1 > this.cap ? this.makeRoom(n + 1) : this.buffer;
    if (n > 0) out.set(this.#view(this.copyFrom, n), this.o);
    this.o += n;
    out[this.o++] = octet;
    this.copyFrom = x;
  }

  /** The output for input[0, end); what is between end and `to` is held back by the caller. */
  finish(end: number): Buffer {
    const input = this.#input;
    this.#input = EMPTY;
    if (this.buffer === undefined) return input.subarray(0, end);
    const n = end - this.copyFrom;
    const out = this.o + n > this.cap ? this.makeRoom(n) : this.buffer;
    if (n > 0) out.set(new Uint8Array(input.buffer, input.byteOffset + this.copyFrom, n), this.o);
    this.o += n;
    const result = out.subarray(this.base, this.o);
    if (out === slab) slabUsed = this.o;
    this.buffer = undefined;
    return result;
  }

  /** Drops the references to input and output after a failed chunk. */
  release(): void {
    this.buffer = undefined;
    this.#input = EMPTY;
  }

  /** Room for `now` more octets; on the first change, room for the rest of the chunk too. */
  makeRoom(now: number): Buffer {
    if (this.buffer === undefined) {
      // Realistic text needs the chunk plus 1/70 (a CR a line); 1/16 spare
      // covers lines down to 16 octets before the rare regrow below.
      const n = this.#to;
      const want = Math.max(n + (n >>> 4) + 16, now);
      if (slab.length - slabUsed < want) {
        slab = Buffer.allocUnsafe(Math.max(SLAB_OCTETS, want));
        slabUsed = 0;
      }
      this.buffer = slab;
      this.base = slabUsed;
      this.o = slabUsed;
      this.cap = slabUsed + want;
      return slab;
    }
    // Worst case for the rest: every octet doubles (LF to CRLF, `.` to `..`).
    const written = this.o - this.base;
    const want = written + now + 2 * (this.#to - this.copyFrom) + 2;
    const next = Buffer.allocUnsafe(want);
    next.set(this.buffer.subarray(this.base, this.o), 0);
    this.buffer = next;
    this.base = 0;
    this.o = written;
    this.cap = want;
    return next;
  }

  #view(from: number, n: number): Uint8Array {
    const input = this.#input;
    return new Uint8Array(input.buffer, input.byteOffset + from, n);
  }
}
