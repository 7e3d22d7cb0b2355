import { endianness } from 'node:os';

/**
 * SQLite's WAL checksum (also used for the wal-index header): a pair of u32
 * accumulators over 32-bit words, cumulative across frames. Results are
 * tuples so callers can store and compare them without BigInt.
 */
export type WalChecksum = readonly [number, number];

export const ZERO_CHECKSUM: WalChecksum = [0, 0];

/** Byte order of this host; the -shm file uses it. */
export const HOST_LITTLE_ENDIAN: boolean = endianness() === 'LE';

/**
 * Continues checksum `seed` over `data` (length a multiple of 8), reading
 * words big-endian if `bigEndian`, else little-endian.
 */
export function walChecksum(data: Uint8Array, bigEndian: boolean, seed: WalChecksum = ZERO_CHECKSUM): WalChecksum {
  if (data.length % 8 !== 0) throw new RangeError(`wal checksum input length ${data.length} is not a multiple of 8`);
  let s0 = seed[0];
  let s1 = seed[1];
  const n = data.length;
  // Fast path: frame data is 4-byte aligned in our read buffers, so on a
  // matching host we can read words directly instead of decoding bytes.
  if (bigEndian !== HOST_LITTLE_ENDIAN && (data.byteOffset & 3) === 0) {
    const words = new Uint32Array(data.buffer, data.byteOffset, n >>> 2);
    for (let i = 0; i < words.length; i += 2) {
      s0 = (s0 + words[i]! + s1) >>> 0;
      s1 = (s1 + words[i + 1]! + s0) >>> 0;
    }
    return [s0, s1];
  }
  const view = new DataView(data.buffer, data.byteOffset, n);
  const le = !bigEndian;
  for (let i = 0; i < n; i += 8) {
    s0 = (s0 + view.getUint32(i, le) + s1) >>> 0;
    s1 = (s1 + view.getUint32(i + 4, le) + s0) >>> 0;
  }
  return [s0, s1];
}

export function checksumsEqual(a: WalChecksum, b: WalChecksum): boolean {
  return a[0] === b[0] && a[1] === b[1];
}

/** Formats a checksum as "xxxxxxxx xxxxxxxx" for messages. */
export function formatWalChecksum(c: WalChecksum): string {
  return `${c[0].toString(16).padStart(8, '0')} ${c[1].toString(16).padStart(8, '0')}`;
}
