/**
 * DTLS handshake message framing (RFC 6347 §4.2.2): the 12-byte header with message_seq and
 * fragment offset/length, splitting a record's fragment into handshake fragments, and cutting an
 * outgoing message into fragments that fit the path MTU.
 */
import { HANDSHAKE_HEADER_BYTES } from './constants.js';
import { DecodeError } from './errors.js';
import { Reader } from './reader.js';

export interface HandshakeFragment {
  msgType: number;
  /** Length of the whole message body. */
  length: number;
  messageSeq: number;
  fragmentOffset: number;
  /** This fragment's bytes (a view). */
  body: Buffer;
}

/** Largest handshake message body the server accepts (a ClientHello is a few hundred bytes). */
export const MAX_HANDSHAKE_MESSAGE_BYTES = 8192;

/** All handshake fragments in one (decrypted) handshake record. Throws DecodeError. */
export function parseHandshakeFragments(fragment: Buffer): HandshakeFragment[] {
  const out: HandshakeFragment[] = [];
  const r = new Reader(fragment);
  while (r.remaining > 0) {
    const msgType = r.u8('handshake type');
    const length = r.u24('handshake length');
    const messageSeq = r.u16('message_seq');
    const fragmentOffset = r.u24('fragment_offset');
    const fragmentLength = r.u24('fragment_length');
    if (length > MAX_HANDSHAKE_MESSAGE_BYTES) throw new DecodeError(`handshake message of ${length} bytes exceeds ${MAX_HANDSHAKE_MESSAGE_BYTES}`);
    if (fragmentOffset + fragmentLength > length) throw new DecodeError('handshake fragment runs past the message length');
    out.push({ msgType, length, messageSeq, fragmentOffset, body: r.bytes(fragmentLength, 'handshake fragment') });
  }
  return out;
}

function header(msgType: number, length: number, messageSeq: number, offset: number, fragmentLength: number): Buffer {
  const h = Buffer.allocUnsafe(HANDSHAKE_HEADER_BYTES);
  h.writeUInt8(msgType, 0);
  h.writeUIntBE(length, 1, 3);
  h.writeUInt16BE(messageSeq, 4);
  h.writeUIntBE(offset, 6, 3);
  h.writeUIntBE(fragmentLength, 9, 3);
  return h;
}

/**
 * The message as one unfragmented piece. This is also exactly what goes into the handshake hash:
 * DTLS hashes the 12-byte header with offset 0 and fragment_length = length (§4.2.6).
 */
export function encodeHandshake(msgType: number, messageSeq: number, body: Buffer): Buffer {
  return Buffer.concat([header(msgType, body.length, messageSeq, 0, body.length), body]);
}

/** Fragments of a message, each at most `maxFragment_bytes` including its 12-byte header. */
export function fragmentHandshake(msgType: number, messageSeq: number, body: Buffer, maxFragment_bytes: number): Buffer[] {
  const room = Math.max(1, maxFragment_bytes - HANDSHAKE_HEADER_BYTES);
  if (body.length <= room) return [encodeHandshake(msgType, messageSeq, body)];
  const out: Buffer[] = [];
  for (let off = 0; off < body.length; off += room) {
    const piece = body.subarray(off, Math.min(body.length, off + room));
    out.push(Buffer.concat([header(msgType, body.length, messageSeq, off, piece.length), piece]));
  }
  return out;
}
