/**
 * Buffers that live long get memory of their own. Node carves small Buffers (under 4 KiB) out of
 * shared 8 KiB pool slabs, and one small Buffer kept alive keeps its whole slab alive: a fleet's
 * session keys, identities and cached replies pinned ~180 KiB of slabs per device. Copy what is
 * kept (keys, identities, cached datagrams) with `ownedCopy`; short-lived Buffers can stay pooled.
 */

/** A copy of `bytes` in an ArrayBuffer of its own (never from the pool). */
export function ownedCopy(bytes: Uint8Array): Buffer {
  const out = Buffer.allocUnsafeSlow(bytes.length);
  out.set(bytes);
  return out;
}
