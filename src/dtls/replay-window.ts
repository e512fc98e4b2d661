/**
 * Anti-replay sliding window for one epoch (RFC 6347 §4.1.2.6, RFC 4303 §3.4.3): 64 sequence
 * numbers behind the highest one seen. `check` before decrypting (cheap reject), `accept` only
 * after the record authenticated, so forged records cannot move the window.
 */

export const REPLAY_WINDOW_SIZE = 64;

export class ReplayWindow {
  /** Highest accepted sequence number, -1 before the first. */
  private top = -1;
  /**
   * Bit i set: top - i was accepted; bits 0..31 in `lo`, 32..63 in `hi`. Two uint32 rather than a
   * BigInt: this runs for every record, and BigInt shifts allocate.
   */
  private lo = 0;
  private hi = 0;

  /** False if `seq` was already accepted or is too old to tell. */
  check(seq: number): boolean {
    if (seq > this.top) return true;
    const behind = this.top - seq;
    if (behind >= REPLAY_WINDOW_SIZE) return false;
    const bit = behind < 32 ? (this.lo >>> behind) & 1 : (this.hi >>> (behind - 32)) & 1;
    return bit === 0;
  }

  accept(seq: number): void {
    if (seq > this.top) {
      const shift = seq - this.top;
      if (shift >= REPLAY_WINDOW_SIZE) {
        this.hi = 0;
        this.lo = 0;
      } else if (shift >= 32) {
        this.hi = shift === 32 ? this.lo : (this.lo << (shift - 32)) >>> 0;
        this.lo = 0;
      } else {
        this.hi = ((this.hi << shift) | (this.lo >>> (32 - shift))) >>> 0;
        this.lo = (this.lo << shift) >>> 0;
      }
      this.lo = (this.lo | 1) >>> 0;
      this.top = seq;
      return;
    }
    const behind = this.top - seq;
    if (behind >= REPLAY_WINDOW_SIZE) return;
    if (behind < 32) this.lo = (this.lo | (1 << behind)) >>> 0;
    else this.hi = (this.hi | (1 << (behind - 32))) >>> 0;
  }
}
