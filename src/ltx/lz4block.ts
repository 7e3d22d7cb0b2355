/**
 * A bounds-checked LZ4 *block* decoder.
 *
 * lz4js's decompressBlock trusts its input: a hostile length field makes it
 * write past the output (silently dropped by the typed array) or spin for a
 * billion iterations. Decoding untrusted LTX files needs a decoder whose work
 * is bounded by input + output size and that reports corruption, so this one
 * checks every length and offset. Compression still uses lz4js.
 */

/**
 * Decodes the block src[sPos, sEnd) into dst starting at dPos, never writing
 * at or past dEnd and never reading a match before dMin (the start of the
 * history window). Returns the new output position, or -1 if the block is
 * corrupt or would overflow dEnd.
 */
export function decodeBlock(
  src: Uint8Array,
  sPos: number,
  sEnd: number,
  dst: Uint8Array,
  dPos: number,
  dEnd: number,
  dMin: number,
): number {
  while (sPos < sEnd) {
    const token = src[sPos++];

    let lit = token >>> 4;
    if (lit === 15) {
      let b: number;
      do {
        if (sPos >= sEnd) return -1;
        b = src[sPos++];
        lit += b;
      } while (b === 255);
    }
    if (lit > sEnd - sPos || lit > dEnd - dPos) return -1;
    if (lit > 0) {
      dst.set(src.subarray(sPos, sPos + lit), dPos);
      sPos += lit;
      dPos += lit;
    }
    // The last sequence of a block carries literals only.
    if (sPos === sEnd) break;

    if (sEnd - sPos < 2) return -1;
    const offset = src[sPos] | (src[sPos + 1] << 8);
    sPos += 2;
    if (offset === 0 || offset > dPos - dMin) return -1;

    let len = token & 15;
    if (len === 15) {
      let b: number;
      do {
        if (sPos >= sEnd) return -1;
        b = src[sPos++];
        len += b;
      } while (b === 255);
    }
    len += 4;
    if (len > dEnd - dPos) return -1;

    let from = dPos - offset;
    if (offset >= len) {
      dst.copyWithin(dPos, from, from + len);
      dPos += len;
    } else {
      // Overlapping match: repeats the last `offset` bytes, byte by byte.
      const stop = dPos + len;
      while (dPos < stop) dst[dPos++] = dst[from++];
    }
  }
  return dPos;
}
