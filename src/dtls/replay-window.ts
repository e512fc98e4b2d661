/**
 * Anti-replay sliding window for one epoch (RFC 6347 §4.1.2.6, RFC 4303 §3.4.3): 64 sequence
 * numbers behind the highest one seen. `check` before decrypting (cheap reject), `accept` only
 * after the record authenticated, so forged records cannot move the window.
 */

export const REPLAY_WINDOW_SIZE = 64;

export class ReplayWindow {
  /** Highest accepted sequence number, -1 before the first. */
  private top = -1;
  /** Bit i set: top - i was accepted. BigInt keeps 64 bits exact without juggling two halves. */
  private bits = 0n;

  /** False if `seq` was already accepted or is too old to tell. */
  check(seq: number): boolean {
    if (seq > this.top) return true;
    const behind = this.top - seq;
    if (behind >= REPLAY_WINDOW_SIZE) return false;
    return ((this.bits >> BigInt(behind)) & 1n) === 0n;
  }

  accept(seq: number): void {
    if (seq > this.top) {
      const shift = seq - this.top;
      this.bits = shift >= REPLAY_WINDOW_SIZE ? 1n : ((this.bits << BigInt(shift)) | 1n) & 0xffff_ffff_ffff_ffffn;
      this.top = seq;
    } else {
      this.bits |= 1n << BigInt(this.top - seq);
    }
  }
}
