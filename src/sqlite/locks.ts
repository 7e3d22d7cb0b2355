import { PENDING_BYTE } from './header.js';

/*
 * POSIX byte-range locks of SQLite's unix VFS and LiteFS's HALT byte. These
 * functions run for every lock request on the FUSE path, so they return small
 * integer bitmasks and allocate nothing.
 */

export { PENDING_BYTE };
export const RESERVED_BYTE = PENDING_BYTE + 1;
export const SHARED_FIRST = PENDING_BYTE + 2;
export const SHARED_SIZE = 510;

/** LiteFS's write-forwarding lock, on the separate `<db>-lock` file. Never a database lock. */
export const HALT_BYTE = 72;

/** Bits returned by `databaseLocksInRange`. */
export const DbLock = {
  PENDING: 1,
  RESERVED: 2,
  SHARED: 4,
} as const;
export type DbLockMask = number;

/** `-shm` lock bytes (UNIX_SHM_BASE = 120). */
export const SHM_WAL_WRITE_BYTE = 120;
export const SHM_WAL_CKPT_BYTE = 121;
export const SHM_WAL_RECOVER_BYTE = 122;
export const SHM_WAL_READ0_BYTE = 123;
export const SHM_WAL_READ_COUNT = 5;
export const SHM_DMS_BYTE = 128;

/** Bits returned by `shmLocksInRange`: bit i is shm byte 120 + i. */
export const ShmLock = {
  WRITE: 1 << 0,
  CKPT: 1 << 1,
  RECOVER: 1 << 2,
  READ0: 1 << 3,
  READ1: 1 << 4,
  READ2: 1 << 5,
  READ3: 1 << 6,
  READ4: 1 << 7,
  DMS: 1 << 8,
} as const;
export type ShmLockMask = number;

/** Bit for WAL_READ_LOCK(i), i in 0..4. */
export function shmReadLock(i: number): ShmLockMask {
  return ShmLock.READ0 << i;
}

/**
 * Database-file locks touched by the inclusive byte range [start, end]. As in
 * LiteFS, a lock counts when its first byte is inside the range, so a request
 * for part of the SHARED range still maps to SHARED. Pass
 * Number.MAX_SAFE_INTEGER (or Infinity) as `end` for "to end of file".
 */
export function databaseLocksInRange(start: number, end: number): DbLockMask {
  let mask = 0;
  if (start <= PENDING_BYTE && PENDING_BYTE <= end) mask |= DbLock.PENDING;
  if (start <= RESERVED_BYTE && RESERVED_BYTE <= end) mask |= DbLock.RESERVED;
  if (start <= SHARED_FIRST && SHARED_FIRST <= end) mask |= DbLock.SHARED;
  return mask;
}

/** `-shm` locks (bytes 120..128) inside the inclusive byte range [start, end]. */
export function shmLocksInRange(start: number, end: number): ShmLockMask {
  const lo = Math.max(start, SHM_WAL_WRITE_BYTE);
  const hi = Math.min(end, SHM_DMS_BYTE);
  if (lo > hi) return 0;
  // Bits lo-120 .. hi-120 inclusive.
  const width = hi - lo + 1;
  return ((1 << width) - 1) << (lo - SHM_WAL_WRITE_BYTE);
}
