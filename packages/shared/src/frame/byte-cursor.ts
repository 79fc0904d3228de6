/**
 * A bounds-checked reader over one received frame. Every read that would run
 * past the end throws ERR_FRAME_TRUNCATED, so decoders never index outside
 * the buffer and never see `undefined` from an out-of-range read.
 */
import { FrameError } from './frame-error.ts';

export class ByteCursor {
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  private position = 0;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get offset(): number {
    return this.position;
  }

  get remaining(): number {
    return this.bytes.byteLength - this.position;
  }

  u8(field: string): number {
    this.need(1, field);
    const value = this.view.getUint8(this.position);
    this.position += 1;
    return value;
  }

  u16(field: string): number {
    this.need(2, field);
    const value = this.view.getUint16(this.position, true);
    this.position += 2;
    return value;
  }

  u32(field: string): number {
    this.need(4, field);
    const value = this.view.getUint32(this.position, true);
    this.position += 4;
    return value;
  }

  /**
   * A copy in a plain Uint8Array, so a decoded frame never aliases or pins the
   * receive buffer. (Buffer#slice would return a view, hence the constructor.)
   */
  take(length: number, field: string): Uint8Array {
    this.need(length, field);
    const slice = new Uint8Array(this.bytes.subarray(this.position, this.position + length));
    this.position += length;
    return slice;
  }

  /** Called after the last field: anything left over is an error, not ignored. */
  end(): void {
    if (this.remaining !== 0) {
      throw new FrameError('ERR_FRAME_TRAILING', `${this.remaining} octets after the last field`, this.position);
    }
  }

  private need(length: number, field: string): void {
    if (this.remaining < length) {
      throw new FrameError('ERR_FRAME_TRUNCATED', `frame ends inside ${field}`, this.position);
    }
  }
}
