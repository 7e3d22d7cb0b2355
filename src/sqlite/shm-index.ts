import { ShmIndexCorruptError, ShortBufferError } from './errors.js';
import { SHM_HEADER_SIZE } from './shm.js';
import { HOST_LITTLE_ENDIAN } from './wal-checksum.js';

/*
 * The wal-index hash tables that map a page number to the WAL frames holding
 * it (formats.md B.6). Pure functions over a Buffer holding the whole -shm
 * file; needed when a replica appends real WAL frames (strategy 1).
 */

/** Each region (WALINDEX_PGSZ) is 32 KiB. */
export const SHM_REGION_SIZE = 32768;
/** Frames indexed per region. */
export const HASHTABLE_NPAGE = 4096;
/** Frames indexed by region 0, whose first 136 bytes hold the header. */
export const HASHTABLE_NPAGE_ONE = HASHTABLE_NPAGE - SHM_HEADER_SIZE / 4;
export const HASHTABLE_NSLOT = 2 * HASHTABLE_NPAGE;
export const HASHTABLE_HASH_1 = 383;
/** Byte offset of aHash within every region. */
const HASH_OFFSET = HASHTABLE_NPAGE * 4;

export interface ShmRegion {
  /** Region number k. */
  index: number;
  /** Frame number before the region's first frame (iZero). */
  frameZero: number;
  /** Frames it can index. */
  capacity: number;
  /** File offset of aPgno[0]. */
  pgnoOffset: number;
  /** File offset of aHash[0]. */
  hashOffset: number;
}

/** First hash slot probed for a page. */
export function shmHashKey(pgno: number): number {
  return Math.imul(pgno, HASHTABLE_HASH_1) & (HASHTABLE_NSLOT - 1);
}

/** Region number holding 1-based frame `frame`. */
export function shmRegionOfFrame(frame: number): number {
  return Math.floor((frame + HASHTABLE_NPAGE - HASHTABLE_NPAGE_ONE - 1) / HASHTABLE_NPAGE);
}

export function shmRegion(k: number): ShmRegion {
  const base = k * SHM_REGION_SIZE;
  return k === 0
    ? { index: 0, frameZero: 0, capacity: HASHTABLE_NPAGE_ONE, pgnoOffset: SHM_HEADER_SIZE, hashOffset: HASH_OFFSET }
    : {
        index: k,
        frameZero: HASHTABLE_NPAGE_ONE + (k - 1) * HASHTABLE_NPAGE,
        capacity: HASHTABLE_NPAGE,
        pgnoOffset: base,
        hashOffset: base + HASH_OFFSET,
      };
}

/** Bytes the -shm file needs to index frames 1..mxFrame (at least one region). */
export function shmSizeForFrames(mxFrame: number): number {
  return (shmRegionOfFrame(Math.max(mxFrame, 1)) + 1) * SHM_REGION_SIZE;
}

function u32(shm: Buffer, off: number): number {
  return HOST_LITTLE_ENDIAN ? shm.readUInt32LE(off) : shm.readUInt32BE(off);
}
function setU32(shm: Buffer, v: number, off: number): void {
  if (HOST_LITTLE_ENDIAN) shm.writeUInt32LE(v >>> 0, off);
  else shm.writeUInt32BE(v >>> 0, off);
}
function u16(shm: Buffer, off: number): number {
  return HOST_LITTLE_ENDIAN ? shm.readUInt16LE(off) : shm.readUInt16BE(off);
}
function setU16(shm: Buffer, v: number, off: number): void {
  if (HOST_LITTLE_ENDIAN) shm.writeUInt16LE(v, off);
  else shm.writeUInt16BE(v, off);
}

function requireRegion(shm: Buffer, r: ShmRegion): void {
  const end = (r.index + 1) * SHM_REGION_SIZE;
  if (shm.length < end) throw new ShortBufferError(`shm region ${r.index}`, end, shm.length);
}

/** Page number recorded for frame `frame` (aPgno), 0 if none. */
export function shmFramePgno(shm: Buffer, frame: number): number {
  const r = shmRegion(shmRegionOfFrame(frame));
  requireRegion(shm, r);
  return u32(shm, r.pgnoOffset + 4 * (frame - r.frameZero - 1));
}

/**
 * Forgets every frame after `mxFrame` in the region holding mxFrame (SQLite's
 * walCleanupHash): the remains of a writer that died mid-transaction.
 */
export function shmTruncateIndex(shm: Buffer, mxFrame: number): void {
  if (mxFrame === 0) return;
  const r = shmRegion(shmRegionOfFrame(mxFrame));
  requireRegion(shm, r);
  const limit = mxFrame - r.frameZero;
  for (let slot = 0; slot < HASHTABLE_NSLOT; slot++) {
    const off = r.hashOffset + 2 * slot;
    if (u16(shm, off) > limit) setU16(shm, 0, off);
  }
  shm.fill(0, r.pgnoOffset + 4 * limit, r.hashOffset);
}

/**
 * Records that frame `frame` holds page `pgno` (SQLite's walIndexAppend).
 * The first frame of a region clears that region's index; a stale entry at
 * this position is cleaned first. `shm` must already cover the region.
 */
export function shmIndexFrame(shm: Buffer, frame: number, pgno: number): void {
  if (frame < 1 || pgno < 1) throw new RangeError(`invalid frame ${frame} / pgno ${pgno}`);
  const r = shmRegion(shmRegionOfFrame(frame));
  requireRegion(shm, r);
  const idx = frame - r.frameZero;
  if (idx === 1) shm.fill(0, r.pgnoOffset, r.hashOffset + 2 * HASHTABLE_NSLOT);
  const pgnoAt = r.pgnoOffset + 4 * (idx - 1);
  if (u32(shm, pgnoAt) !== 0) shmTruncateIndex(shm, frame - 1);
  let key = shmHashKey(pgno);
  // Slots hold at most idx-1 entries before this one, so more probes mean corruption.
  for (let probes = idx; u16(shm, r.hashOffset + 2 * key) !== 0; key = (key + 1) & (HASHTABLE_NSLOT - 1)) {
    if (probes-- === 0) throw new ShmIndexCorruptError(`hash table of region ${r.index} is full`);
  }
  setU32(shm, pgno, pgnoAt);
  setU16(shm, idx, r.hashOffset + 2 * key);
}

/**
 * The last frame in [minFrame, mxFrame] holding page `pgno`, or 0 if the
 * page must be read from the database file (SQLite's walFindFrame).
 */
export function shmFindFrame(shm: Buffer, pgno: number, mxFrame: number, minFrame = 1): number {
  if (mxFrame === 0 || mxFrame < minFrame) return 0;
  const minRegion = shmRegionOfFrame(minFrame);
  for (let k = shmRegionOfFrame(mxFrame); k >= minRegion; k--) {
    const r = shmRegion(k);
    requireRegion(shm, r);
    let found = 0;
    let key = shmHashKey(pgno);
    for (let probes = 0; probes < HASHTABLE_NSLOT; probes++) {
      const s = u16(shm, r.hashOffset + 2 * key);
      if (s === 0) break;
      const frame = r.frameZero + s;
      if (s <= r.capacity && frame <= mxFrame && frame >= minFrame && u32(shm, r.pgnoOffset + 4 * (s - 1)) === pgno) {
        found = Math.max(found, frame);
      }
      key = (key + 1) & (HASHTABLE_NSLOT - 1);
    }
    if (found !== 0) return found;
  }
  return 0;
}
