/**
 * CRC-64/GO-ISO: Go's hash/crc64 with the crc64.ISO table (reflected
 * polynomial 0xD800000000000000, init and xorout all ones). Check value of
 * "123456789" is 0xb90956c775a41001.
 *
 * Page checksumming is on the hot path (a 1 GiB database must verify in about
 * two seconds), so the 64-bit register is kept as two u32 halves in plain
 * numbers and updated with slicing-by-8 tables: BigInt arithmetic in the inner
 * loop is two orders of magnitude slower.
 */

const POLY_HI = 0xd8000000;
const POLY_LO = 0x00000000;

/**
 * TABLES[k*512 + 2*i] / [k*512 + 2*i + 1] hold the high / low half of the
 * slice-k entry for byte i: the CRC contribution of byte i followed by k zero
 * bytes. Interleaving hi and lo keeps each lookup's two loads adjacent.
 */
const TABLES: Uint32Array = buildTables();

function buildTables(): Uint32Array {
  const t = new Uint32Array(8 * 256 * 2);
  for (let i = 0; i < 256; i++) {
    let hi = 0;
    let lo = i;
    for (let bit = 0; bit < 8; bit++) {
      const carry = lo & 1;
      lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
      hi = hi >>> 1;
      if (carry !== 0) {
        hi = (hi ^ POLY_HI) >>> 0;
        lo = (lo ^ POLY_LO) >>> 0;
      }
    }
    t[2 * i] = hi;
    t[2 * i + 1] = lo;
  }
  for (let k = 1; k < 8; k++) {
    for (let i = 0; i < 256; i++) {
      const prevHi = t[(k - 1) * 512 + 2 * i];
      const prevLo = t[(k - 1) * 512 + 2 * i + 1];
      const idx = prevLo & 0xff;
      t[k * 512 + 2 * i] = (t[2 * idx] ^ (prevHi >>> 8)) >>> 0;
      t[k * 512 + 2 * i + 1] = (t[2 * idx + 1] ^ ((prevLo >>> 8) | (prevHi << 24))) >>> 0;
    }
  }
  return t;
}

/**
 * Incremental CRC-64/GO-ISO. `hi`/`lo` expose the finished value's halves
 * after `finish()` so callers on the hot path never touch BigInt.
 */
export class Crc64 {
  /** Internal register (already complemented), high and low 32 bits. */
  private regHi = 0xffffffff;
  private regLo = 0xffffffff;

  reset(): this {
    this.regHi = 0xffffffff;
    this.regLo = 0xffffffff;
    return this;
  }

  /** Feeds `length` bytes of `data` starting at `offset`. */
  update(data: Uint8Array, offset = 0, length: number = data.length - offset): this {
    let hi = this.regHi;
    let lo = this.regLo;
    let pos = offset;
    const end = offset + length;
    const t = TABLES;

    // Single bytes until the position is 4-byte aligned in the underlying
    // buffer, so the bulk loop can read u32 words through a Uint32Array view.
    while (pos < end && ((data.byteOffset + pos) & 3) !== 0) {
      const idx = ((lo ^ data[pos]) & 0xff) << 1;
      lo = (t[idx + 1] ^ ((lo >>> 8) | (hi << 24))) >>> 0;
      hi = (t[idx] ^ (hi >>> 8)) >>> 0;
      pos++;
    }

    const words = (end - pos) >>> 3;
    if (words > 0 && LITTLE_ENDIAN) {
      const view = new Uint32Array(data.buffer, data.byteOffset + pos, words * 2);
      for (let w = 0; w < words * 2; w += 2) {
        const a = (lo ^ view[w]) >>> 0;
        const b = (hi ^ view[w + 1]) >>> 0;
        const i7 = 7 * 512 + ((a & 0xff) << 1);
        const i6 = 6 * 512 + (((a >>> 8) & 0xff) << 1);
        const i5 = 5 * 512 + (((a >>> 16) & 0xff) << 1);
        const i4 = 4 * 512 + ((a >>> 24) << 1);
        const i3 = 3 * 512 + ((b & 0xff) << 1);
        const i2 = 2 * 512 + (((b >>> 8) & 0xff) << 1);
        const i1 = 1 * 512 + (((b >>> 16) & 0xff) << 1);
        const i0 = (b >>> 24) << 1;
        hi = t[i7] ^ t[i6] ^ t[i5] ^ t[i4] ^ t[i3] ^ t[i2] ^ t[i1] ^ t[i0];
        lo = t[i7 + 1] ^ t[i6 + 1] ^ t[i5 + 1] ^ t[i4 + 1] ^ t[i3 + 1] ^ t[i2 + 1] ^ t[i1 + 1] ^ t[i0 + 1];
      }
      hi >>>= 0;
      lo >>>= 0;
      pos += words * 8;
    }

    while (pos < end) {
      const idx = ((lo ^ data[pos]) & 0xff) << 1;
      lo = (t[idx + 1] ^ ((lo >>> 8) | (hi << 24))) >>> 0;
      hi = (t[idx] ^ (hi >>> 8)) >>> 0;
      pos++;
    }

    this.regHi = hi;
    this.regLo = lo;
    return this;
  }

  /** Feeds a u32 in big-endian byte order (the LTX page-number prefix). */
  updateU32BE(value: number): this {
    let hi = this.regHi;
    let lo = this.regLo;
    const t = TABLES;
    for (let shift = 24; shift >= 0; shift -= 8) {
      const idx = ((lo ^ (value >>> shift)) & 0xff) << 1;
      lo = (t[idx + 1] ^ ((lo >>> 8) | (hi << 24))) >>> 0;
      hi = (t[idx] ^ (hi >>> 8)) >>> 0;
    }
    this.regHi = hi;
    this.regLo = lo;
    return this;
  }

  /** High 32 bits of the CRC of everything fed so far. */
  get hi(): number {
    return ~this.regHi >>> 0;
  }

  /** Low 32 bits of the CRC of everything fed so far. */
  get lo(): number {
    return ~this.regLo >>> 0;
  }

  /** The CRC of everything fed so far (the state is left unchanged). */
  digest(): bigint {
    return (BigInt(this.hi) << 32n) | BigInt(this.lo);
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** One-shot CRC-64/GO-ISO of `data`. */
export function crc64(data: Uint8Array): bigint {
  return new Crc64().update(data).digest();
}
