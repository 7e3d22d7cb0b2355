/**
 * The chunked byte stream that carries an LTX file inside a stream frame
 * (LiteFS internal/chunk, ref §9.4): repeated `u16 length` (big-endian,
 * 1..65535) + that many bytes, ended by `u16 0`. Writers never emit an empty
 * chunk, because a zero length is the terminator.
 */
import { ChunkStreamError } from './errors.js';

export const MAX_CHUNK_SIZE = 0xffff;

/** The `u16 0` that ends a chunked stream. */
export const CHUNK_TERMINATOR: Buffer = Buffer.from([0, 0]);

/**
 * Frames one write as chunks: one chunk per 65535 bytes, so a write of n
 * bytes gives ceil(n / 65535) chunks, the way the Go writer splits a write.
 * An empty write gives nothing.
 */
export function encodeChunks(data: Uint8Array): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < data.length; off += MAX_CHUNK_SIZE) {
    const piece = data.subarray(off, Math.min(off + MAX_CHUNK_SIZE, data.length));
    const chunk = Buffer.allocUnsafe(2 + piece.length);
    chunk.writeUInt16BE(piece.length, 0);
    chunk.set(piece, 2);
    out.push(chunk);
  }
  return out;
}

/** A whole chunked stream: every write framed by `encodeChunks`, then the terminator. */
export function encodeChunkedStream(writes: Iterable<Uint8Array>): Buffer {
  const parts: Buffer[] = [];
  for (const w of writes) parts.push(...encodeChunks(w));
  parts.push(CHUNK_TERMINATOR);
  return Buffer.concat(parts);
}

/**
 * Incremental decoder for one chunked stream. Bytes are pushed in as they
 * arrive; payload is handed out as sub-arrays of the pushed buffers (no copy,
 * nothing buffered beyond one byte of a split length field), and the decoder
 * stops consuming right after the terminator so the caller can go on with
 * whatever follows it.
 */
export class ChunkDecoder {
  /** Payload bytes still to come in the current chunk. */
  private remaining = 0;
  /** First byte of a length field whose second byte has not arrived yet. */
  private lengthHigh = -1;
  private finished = false;

  /** True once the terminator has been consumed. */
  get done(): boolean {
    return this.finished;
  }

  /**
   * Consumes bytes of `data`, passes payload to `onPayload` (and each chunk's
   * length, as it is read, to `onChunk`), and returns how many bytes were
   * consumed: all of them, or fewer if the terminator came before the end.
   */
  push(data: Buffer, onPayload: (payload: Buffer) => void, onChunk?: (length: number) => void): number {
    if (this.finished) throw new ChunkStreamError('chunk stream already ended');
    let off = 0;
    while (off < data.length && !this.finished) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, data.length - off);
        onPayload(data.subarray(off, off + n));
        this.remaining -= n;
        off += n;
        continue;
      }
      // Reading a length field, possibly split across two pushes.
      if (this.lengthHigh < 0) {
        this.lengthHigh = data[off++]!;
        continue;
      }
      const length = (this.lengthHigh << 8) | data[off++]!;
      this.lengthHigh = -1;
      if (length === 0) {
        this.finished = true;
      } else {
        this.remaining = length;
        onChunk?.(length);
      }
    }
    return off;
  }
}
