/**
 * Appends little-endian fields into one buffer of the final size. Encoders
 * measure first and check MAX_FRAME_OCTETS before building, so this never
 * grows or reallocates.
 */
export class ByteBuilder {
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  private position = 0;

  constructor(length: number) {
    this.bytes = new Uint8Array(length);
    this.view = new DataView(this.bytes.buffer);
  }

  u8(value: number): this {
    this.view.setUint8(this.position, value);
    this.position += 1;
    return this;
  }

  u16(value: number): this {
    this.view.setUint16(this.position, value, true);
    this.position += 2;
    return this;
  }

  u32(value: number): this {
    this.view.setUint32(this.position, value, true);
    this.position += 4;
    return this;
  }

  put(data: Uint8Array): this {
    this.bytes.set(data, this.position);
    this.position += data.byteLength;
    return this;
  }

  /** The finished frame; a size mismatch is a bug in the encoder's measuring. */
  finish(): Uint8Array {
    if (this.position !== this.bytes.byteLength) {
      throw new RangeError(`frame builder filled ${this.position} of ${this.bytes.byteLength} octets`);
    }
    return this.bytes;
  }
}
