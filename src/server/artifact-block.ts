/**
 * What the server answers to a GET of an artifact (FORMATS.md: `/.u/c/<artifact id>`, Block2 at
 * any block number, ETag, Size2), as a value: node-coap's request path (coap-resources.ts) and
 * the DTLS fast path (artifact-fast-path.ts) both send exactly this.
 */
import { encodeBlock2, parseBlock2 } from './blockwise.js';
import type { UpdateModel } from './model.js';

/** Content-Format application/octet-stream. */
export const OCTET_STREAM_FORMAT = 42;

export type ArtifactAnswer =
  | {
      ok: true;
      etag: Buffer;
      /** Block2 option value, null for a whole artifact sent without one. */
      block2: Buffer | null;
      /** Size2 option value (whole artifact bytes), null when not sent. */
      size2: number | null;
      payload: Buffer;
    }
  | { ok: false; code: '4.02' | '4.04'; message: string };

/**
 * The answer to a GET of `path` with the request's raw Block2 value (null: none) and whether it
 * carried Size2. A block size above 1024 is answered at 1024 (RFC 7959 §2.4: the server may
 * choose a smaller block).
 */
export function artifactAnswer(model: UpdateModel, path: string, block2Raw: Buffer | null, askedSize2: boolean, defaultBlock_bytes: number): ArtifactAnswer {
  const found = model.artifactAt(path);
  if (!found) return { ok: false, code: '4.04', message: `no artifact at ${path}` };
  const { info, bytes } = found;
  const parsed = parseBlock2(block2Raw);
  if (!parsed.ok) return { ok: false, code: '4.02', message: parsed.error };
  const etag = Buffer.from(info.sha256.slice(0, 16), 'hex');
  const block = parsed.block;
  if (block === null && bytes.length <= defaultBlock_bytes) return { ok: true, etag, block2: null, size2: null, payload: bytes };
  const size_bytes = block ? Math.min(block.size_bytes, 1024) : defaultBlock_bytes;
  const szx = Math.log2(size_bytes) - 4;
  const num = block?.num ?? 0;
  const blocks = Math.ceil(bytes.length / size_bytes);
  if (num >= blocks) {
    return { ok: false, code: '4.02', message: `block ${num} of ${size_bytes} bytes is past the end of ${info.id} (${bytes.length} bytes, blocks 0..${blocks - 1})` };
  }
  const start = num * size_bytes;
  return {
    ok: true,
    etag,
    block2: encodeBlock2(num, num < blocks - 1, szx),
    size2: num === 0 || askedSize2 ? bytes.length : null,
    payload: bytes.subarray(start, start + size_bytes),
  };
}
