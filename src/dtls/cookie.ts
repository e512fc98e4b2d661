/**
 * Stateless HelloVerifyRequest cookies (RFC 6347 §4.2.1): HMAC-SHA256 over the client's address,
 * port and the ClientHello fields it must repeat, keyed by a secret that rotates on the injected
 * clock. The previous secret is still accepted, so a rotation between HelloVerifyRequest and the
 * second ClientHello does not fail the handshake. Nothing is stored per client.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock, TimerHandle } from '../clock.js';

/** 16 bytes of HMAC are plenty against guessing and keep the ClientHello small for low MTUs. */
export const COOKIE_BYTES = 16;
const SECRET_BYTES = 32;

export class CookieJar {
  private current = randomBytes(SECRET_BYTES);
  private previous = randomBytes(SECRET_BYTES);
  private timer: TimerHandle | null = null;

  constructor(
    private readonly clock: Clock,
    private readonly rotation_ms: number,
  ) {
    this.schedule();
  }

  private schedule(): void {
    this.timer = this.clock.setTimeout(() => {
      this.rotate();
      this.schedule();
    }, this.rotation_ms);
  }

  rotate(): void {
    this.previous = this.current;
    this.current = randomBytes(SECRET_BYTES);
  }

  private mac(secret: Buffer, address: string, port: number, helloFields: Buffer): Buffer {
    return createHmac('sha256', secret).update(`${address}/${port}/`).update(helloFields).digest().subarray(0, COOKIE_BYTES);
  }

  make(address: string, port: number, helloFields: Buffer): Buffer {
    return this.mac(this.current, address, port, helloFields);
  }

  verify(address: string, port: number, helloFields: Buffer, cookie: Buffer): boolean {
    if (cookie.length !== COOKIE_BYTES) return false;
    return (
      timingSafeEqual(cookie, this.mac(this.current, address, port, helloFields)) ||
      timingSafeEqual(cookie, this.mac(this.previous, address, port, helloFields))
    );
  }

  close(): void {
    this.timer?.cancel();
    this.timer = null;
  }
}
