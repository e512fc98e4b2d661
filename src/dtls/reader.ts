/**
 * Bounds-checked big-endian reader over network bytes. Every read checks the remaining length and
 * throws `DecodeError`, so parsers never index past the end or return half-read structures.
 */
import { DecodeError } from './errors.js';

export class Reader {
  private pos: number;
  constructor(
    private readonly buf: Buffer,
    start = 0,
    private readonly end = buf.length,
  ) {
    this.pos = start;
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n_bytes: number, what: string): void {
    if (this.end - this.pos < n_bytes) throw new DecodeError(`${what}: need ${n_bytes} bytes, have ${this.end - this.pos}`);
  }

  u8(what = 'u8'): number {
    this.need(1, what);
    return this.buf.readUInt8(this.pos++);
  }

  u16(what = 'u16'): number {
    this.need(2, what);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  u24(what = 'u24'): number {
    this.need(3, what);
    const v = this.buf.readUIntBE(this.pos, 3);
    this.pos += 3;
    return v;
  }

  u48(what = 'u48'): number {
    this.need(6, what);
    const v = this.buf.readUIntBE(this.pos, 6);
    this.pos += 6;
    return v;
  }

  /** A view (no copy) of the next n bytes. */
  bytes(n_bytes: number, what = 'bytes'): Buffer {
    this.need(n_bytes, what);
    const v = this.buf.subarray(this.pos, this.pos + n_bytes);
    this.pos += n_bytes;
    return v;
  }

  vec8(what = 'vector<2^8>'): Buffer {
    return this.bytes(this.u8(what), what);
  }

  vec16(what = 'vector<2^16>'): Buffer {
    return this.bytes(this.u16(what), what);
  }

  rest(): Buffer {
    return this.bytes(this.remaining);
  }

  expectEnd(what: string): void {
    if (this.pos !== this.end) throw new DecodeError(`${what}: ${this.end - this.pos} trailing bytes`);
  }
}
