/**
 * LTX page and database checksums (formats.md A.6).
 *
 * A page checksum is F | CRC64(u32be(pgno) ‖ data) with F = bit 63. A
 * database checksum is F | XOR of the page checksums of pages 1..Commit, the
 * lock page excluded; an empty database's is exactly F. XOR makes it
 * order-independent and incrementally updatable.
 *
 * Hot-path variants return the checksum as two u32 halves so a per-page cache
 * can live in a Uint32Array instead of an array of BigInts.
 */
import { Crc64 } from './crc64.js';

/** Bit 63, OR-ed into every stored checksum so a valid one is never 0. */
export const ChecksumFlag = 1n << 63n;

/** High half of ChecksumFlag. */
export const CHECKSUM_FLAG_HI = 0x80000000;

/** Byte offset of SQLite's PENDING_BYTE: the page holding it is never used. */
const PENDING_BYTE = 0x40000000;

/** The page SQLite never writes (it holds the lock bytes): floor(1 GiB / P) + 1. */
export function lockPgno(pageSize: number): number {
  return Math.floor(PENDING_BYTE / pageSize) + 1;
}

const scratch = new Crc64();

/** ChecksumPage(pgno, data) as a bigint. */
export function checksumPage(pgno: number, data: Uint8Array): bigint {
  scratch.reset().updateU32BE(pgno).update(data);
  return (BigInt((scratch.hi | CHECKSUM_FLAG_HI) >>> 0) << 32n) | BigInt(scratch.lo);
}

/**
 * ChecksumPage(pgno, data) written into `out` as out[2*index] = high half
 * (flag set), out[2*index+1] = low half. Allocates nothing.
 */
export function checksumPageInto(pgno: number, data: Uint8Array, out: Uint32Array, index: number): void {
  scratch.reset().updateU32BE(pgno).update(data);
  out[2 * index] = (scratch.hi | CHECKSUM_FLAG_HI) >>> 0;
  out[2 * index + 1] = scratch.lo;
}

/** Joins two u32 halves into a 64-bit checksum. */
export function joinChecksum(hi: number, lo: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** High u32 half of a 64-bit checksum. */
export function checksumHi(c: bigint): number {
  return Number((c >> 32n) & 0xffffffffn);
}

/** Low u32 half of a 64-bit checksum. */
export function checksumLo(c: bigint): number {
  return Number(c & 0xffffffffn);
}

/**
 * Accumulates a database checksum from page checksums. The lock page is
 * skipped by `addPage`; callers feeding precomputed checksums must skip it
 * themselves (LiteFS stores 0 for it, which XORs to nothing anyway).
 */
export class DatabaseChecksum {
  private hi = 0;
  private lo = 0;

  constructor(readonly pageSize: number) {}

  /** Adds page `pgno` with contents `data` (ignored if it is the lock page). */
  addPage(pgno: number, data: Uint8Array): void {
    if (pgno === lockPgno(this.pageSize)) return;
    scratch.reset().updateU32BE(pgno).update(data);
    this.hi = (this.hi ^ scratch.hi) >>> 0;
    this.lo = (this.lo ^ scratch.lo) >>> 0;
  }

  /** XORs in a checksum given as halves (e.g. from a checksum cache). */
  xorHalves(hi: number, lo: number): void {
    this.hi = (this.hi ^ hi) >>> 0;
    this.lo = (this.lo ^ lo) >>> 0;
  }

  /** XORs in a checksum given as a bigint. */
  xor(checksum: bigint): void {
    this.xorHalves(checksumHi(checksum), checksumLo(checksum));
  }

  /** F | XOR of everything added; 0x8000000000000000 when nothing was added. */
  get value(): bigint {
    return joinChecksum((this.hi | CHECKSUM_FLAG_HI) >>> 0, this.lo);
  }

  /** High half of `value` (flag set). */
  get valueHi(): number {
    return (this.hi | CHECKSUM_FLAG_HI) >>> 0;
  }

  /** Low half of `value`. */
  get valueLo(): number {
    return this.lo;
  }
}

/**
 * Database checksum of pages 1..pageCount, each read by `readPage(pgno)`
 * (which may reuse one buffer). The lock page is not read.
 */
export function checksumDatabase(
  pageSize: number,
  pageCount: number,
  readPage: (pgno: number) => Uint8Array,
): bigint {
  const acc = new DatabaseChecksum(pageSize);
  const lock = lockPgno(pageSize);
  for (let pgno = 1; pgno <= pageCount; pgno++) {
    if (pgno !== lock) acc.addPage(pgno, readPage(pgno));
  }
  return acc.value;
}
