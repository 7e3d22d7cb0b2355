/**
 * The per-page checksum cache of one database (ref §6.5), from which the
 * rolling database checksum of every LTX file is computed.
 *
 * Three layers say what page p contains right now, first match wins:
 *   1. a transaction overlay: the pages of the WAL transaction being turned
 *      into an LTX file (LiteFS's `newWALChksums`), passed per call;
 *   2. the WAL overlay (`cache.wal`): pages whose latest committed version
 *      lives in the WAL, not yet checkpointed (last of LiteFS's `wal.chksums`);
 *   3. the database file: one checksum per page.
 * A checksum of 0 means unknown (not loaded, or beyond the end). In an
 * overlay, 0 means "absent" (pages cut off by a shrinking WAL commit). The
 * lock page is never stored and always counts as present with checksum 0.
 *
 * Storage: checksums are two u32 halves (hi, lo) in Uint32Arrays, so the
 * request path computes and stores them without BigInts. Valid checksums have
 * bit 63 set, so hi === 0 exactly when a page is unknown.
 *
 * Per 256-page block the cache keeps the XOR of its file-layer checksums and
 * how many of them are known. LiteFS marks a block stale on every page change
 * and recomputes it on the next checksum; here the block is updated in place
 * on every change (two XORs and a counter), so it is never stale and the
 * database checksum costs O(blocks + overlay size) every time.
 */
import { CHECKSUM_FLAG_HI, checksumHi, checksumLo, checksumPageInto, joinChecksum, lockPgno } from '../ltx/index.js';

/** Pages per aggregate block, as LiteFS's ChecksumBlockSize. */
export const CHECKSUM_BLOCK_PAGES = 256;
const BLOCK_SHIFT = 8;

/** The database checksum needed a page whose checksum is not known. */
export class MissingChecksumError extends Error {
  constructor(
    readonly pgno: number,
    readonly database: string,
  ) {
    super(`${database === '' ? '' : `${database}: `}missing checksum for page ${pgno}`);
    this.name = 'MissingChecksumError';
  }
}

/**
 * pgno → checksum for a set of pages, allocation-free once grown. Entries are
 * only added or overwritten until `clear()`, which is how both users behave
 * (a WAL until checkpoint or restart; a transaction until commit).
 */
export class PageChecksumOverlay {
  private readonly slots = new Map<number, number>();
  private pgnos = new Uint32Array(16);
  private halves = new Uint32Array(32);
  private count = 0;

  /** Number of pages in the overlay. */
  get size(): number {
    return this.count;
  }

  /** Records page `pgno`'s checksum as halves; (0, 0) records it as absent. */
  set(pgno: number, hi: number, lo: number): void {
    let slot = this.slots.get(pgno);
    if (slot === undefined) {
      slot = this.count++;
      if (slot === this.pgnos.length) this.grow();
      this.slots.set(pgno, slot);
      this.pgnos[slot] = pgno;
    }
    this.halves[2 * slot] = hi;
    this.halves[2 * slot + 1] = hi === 0 ? 0 : lo;
  }

  /** Records page `pgno`'s checksum; 0n records it as absent. */
  setChecksum(pgno: number, checksum: bigint): void {
    this.set(pgno, checksumHi(checksum), checksumLo(checksum));
  }

  has(pgno: number): boolean {
    return this.slots.has(pgno);
  }

  /** The checksum recorded for `pgno` (0n if recorded absent), or undefined if none is recorded. */
  get(pgno: number): bigint | undefined {
    const slot = this.slots.get(pgno);
    return slot === undefined ? undefined : joinChecksum(this.halves[2 * slot]!, this.halves[2 * slot + 1]!);
  }

  /** Page number of entry `i` (0 ≤ i < size), for allocation-free iteration. */
  pgnoAt(i: number): number {
    return this.pgnos[i]!;
  }

  hiAt(i: number): number {
    return this.halves[2 * i]!;
  }

  loAt(i: number): number {
    return this.halves[2 * i + 1]!;
  }

  /** Copies every entry into `target`, overwriting its entries for the same pages (commit of a transaction). */
  mergeInto(target: PageChecksumOverlay): void {
    for (let i = 0; i < this.count; i++) target.set(this.pgnos[i]!, this.halves[2 * i]!, this.halves[2 * i + 1]!);
  }

  clear(): void {
    this.slots.clear();
    this.count = 0;
  }

  private grow(): void {
    const pgnos = new Uint32Array(this.pgnos.length * 2);
    pgnos.set(this.pgnos);
    this.pgnos = pgnos;
    const halves = new Uint32Array(this.halves.length * 2);
    halves.set(this.halves);
    this.halves = halves;
  }
}

/** Per-page and per-block checksums of one database file plus its WAL overlay. */
export class ChecksumCache {
  /** Pages whose current version is a committed WAL frame. Cleared when the WAL is checkpointed or reset. */
  readonly wal = new PageChecksumOverlay();
  private pages = new Uint32Array(0);
  private blockXor = new Uint32Array(0);
  private blockKnown = new Uint16Array(0);
  private lock: number;
  private readonly scratch = new Uint32Array(2);
  /** Running XOR halves while overlays are applied. */
  private readonly acc = new Uint32Array(2);

  /**
   * @param pageSize the database's page size (decides the lock page)
   * @param database name used in error messages
   */
  constructor(
    private size: number,
    readonly database = '',
  ) {
    this.lock = lockPgno(size);
  }

  get pageSize(): number {
    return this.size;
  }

  /** Forgets everything and adopts a (new) page size. */
  reset(pageSize: number): void {
    this.size = pageSize;
    this.lock = lockPgno(pageSize);
    this.pages = new Uint32Array(0);
    this.blockXor = new Uint32Array(0);
    this.blockKnown = new Uint16Array(0);
    this.wal.clear();
  }

  /** The lock page's number for this page size. */
  get lockPage(): number {
    return this.lock;
  }

  /** Computes and stores the checksum of database-file page `pgno` with contents `data`. */
  computePage(pgno: number, data: Uint8Array): void {
    if (pgno === this.lock) return;
    checksumPageInto(pgno, data, this.scratch, 0);
    this.setPage(pgno, this.scratch[0]!, this.scratch[1]!);
  }

  /**
   * Stores the checksum of database-file page `pgno` as halves; (0, 0)
   * forgets it. Writes to the lock page are ignored: its checksum is 0.
   */
  setPage(pgno: number, hi: number, lo: number): void {
    if (pgno === this.lock || pgno < 1) return;
    hi >>>= 0;
    lo = hi === 0 ? 0 : lo >>> 0;
    const i = 2 * (pgno - 1);
    if (i >= this.pages.length) {
      if (hi === 0) return;
      this.grow(pgno);
    }
    const oldHi = this.pages[i]!;
    const oldLo = this.pages[i + 1]!;
    this.pages[i] = hi;
    this.pages[i + 1] = lo;
    const b = (pgno - 1) >>> BLOCK_SHIFT;
    this.blockXor[2 * b] = (this.blockXor[2 * b]! ^ oldHi ^ hi) >>> 0;
    this.blockXor[2 * b + 1] = (this.blockXor[2 * b + 1]! ^ oldLo ^ lo) >>> 0;
    this.blockKnown[b] = this.blockKnown[b]! + (hi !== 0 ? 1 : 0) - (oldHi !== 0 ? 1 : 0);
  }

  /** `setPage` with a bigint checksum (0n forgets the page). */
  setPageChecksum(pgno: number, checksum: bigint): void {
    this.setPage(pgno, checksumHi(checksum), checksumLo(checksum));
  }

  /** Checksum of database-file page `pgno`, 0n when unknown (and for the lock page). */
  getPage(pgno: number): bigint {
    const i = 2 * (pgno - 1);
    if (pgno < 1 || i >= this.pages.length) return 0n;
    return joinChecksum(this.pages[i]!, this.pages[i + 1]!);
  }

  /**
   * Checksum of page `pgno` as it currently reads: from `tx`, else the WAL
   * overlay, else the database file. 0n = unknown or absent.
   */
  currentPage(pgno: number, tx?: PageChecksumOverlay): bigint {
    return tx?.get(pgno) ?? this.wal.get(pgno) ?? this.getPage(pgno);
  }

  /** The database file was truncated to `pageCount` pages: forget every page beyond. */
  truncate(pageCount: number): void {
    const last = this.pages.length / 2;
    for (let pgno = Math.max(pageCount, 0) + 1; pgno <= last; pgno++) {
      if (this.pages[2 * (pgno - 1)] !== 0) this.setPage(pgno, 0, 0);
    }
  }

  /**
   * F | XOR of the checksums of pages 1..pageCount (lock page excluded) as
   * they read with `tx` applied over the WAL overlay over the file. Throws
   * MissingChecksumError naming the first page whose checksum is unknown.
   */
  databaseChecksum(pageCount: number, tx?: PageChecksumOverlay): bigint {
    let hi = 0;
    let lo = 0;
    // Pages in 1..pageCount, lock page excluded, with no known checksum.
    let missing = 0;
    const fullBlocks = Math.floor(pageCount / CHECKSUM_BLOCK_PAGES);
    const allocatedBlocks = this.blockKnown.length;
    const lockBlock = (this.lock - 1) >>> BLOCK_SHIFT;
    for (let b = 0; b < fullBlocks; b++) {
      const expected = b === lockBlock ? CHECKSUM_BLOCK_PAGES - 1 : CHECKSUM_BLOCK_PAGES;
      if (b >= allocatedBlocks) {
        missing += expected;
        continue;
      }
      missing += expected - this.blockKnown[b]!;
      hi ^= this.blockXor[2 * b]!;
      lo ^= this.blockXor[2 * b + 1]!;
    }
    for (let pgno = fullBlocks * CHECKSUM_BLOCK_PAGES + 1; pgno <= pageCount; pgno++) {
      if (pgno === this.lock) continue;
      const i = 2 * (pgno - 1);
      const fileHi = i < this.pages.length ? this.pages[i]! : 0;
      if (fileHi === 0) {
        missing++;
        continue;
      }
      hi ^= fileHi;
      lo ^= this.pages[i + 1]!;
    }
    // Overlays replace file versions: XOR the file version out and theirs in.
    this.acc[0] = hi;
    this.acc[1] = lo;
    missing += this.applyOverlay(this.wal, tx, pageCount);
    if (tx !== undefined) missing += this.applyOverlay(tx, undefined, pageCount);
    hi = this.acc[0]!;
    lo = this.acc[1]!;
    if (missing > 0) throw new MissingChecksumError(this.firstMissing(pageCount, tx), this.database);
    return joinChecksum((hi | CHECKSUM_FLAG_HI) >>> 0, lo >>> 0);
  }

  /** Number of pages with a known file checksum (tests, metrics). */
  get knownPages(): number {
    let n = 0;
    for (let b = 0; b < this.blockKnown.length; b++) n += this.blockKnown[b]!;
    return n;
  }

  /**
   * XORs into `acc` the change from file version to `overlay` version of
   * every overlay page in 1..pageCount not shadowed by `shadow`; returns the
   * change in the number of unknown pages.
   */
  private applyOverlay(overlay: PageChecksumOverlay, shadow: PageChecksumOverlay | undefined, pageCount: number): number {
    let hi = this.acc[0]!;
    let lo = this.acc[1]!;
    let missing = 0;
    for (let k = 0; k < overlay.size; k++) {
      const pgno = overlay.pgnoAt(k);
      if (pgno > pageCount || pgno === this.lock || shadow?.has(pgno)) continue;
      const i = 2 * (pgno - 1);
      const fileHi = i < this.pages.length ? this.pages[i]! : 0;
      const fileLo = i < this.pages.length ? this.pages[i + 1]! : 0;
      const ovHi = overlay.hiAt(k);
      hi ^= fileHi ^ ovHi;
      lo ^= fileLo ^ overlay.loAt(k);
      if (fileHi === 0 && ovHi !== 0) missing--;
      else if (fileHi !== 0 && ovHi === 0) missing++;
    }
    this.acc[0] = hi;
    this.acc[1] = lo;
    return missing;
  }

  private firstMissing(pageCount: number, tx?: PageChecksumOverlay): number {
    for (let pgno = 1; pgno <= pageCount; pgno++) {
      if (pgno !== this.lock && this.currentPage(pgno, tx) === 0n) return pgno;
    }
    throw new Error('checksum cache: missing-page count out of step with its pages');
  }

  private grow(pgno: number): void {
    const pagesNeeded = Math.max(pgno, 2 * (this.pages.length / 2), 1024);
    const blocks = Math.ceil(pagesNeeded / CHECKSUM_BLOCK_PAGES);
    const capacity = blocks * CHECKSUM_BLOCK_PAGES;
    const pages = new Uint32Array(2 * capacity);
    pages.set(this.pages);
    this.pages = pages;
    const blockXor = new Uint32Array(2 * blocks);
    blockXor.set(this.blockXor);
    this.blockXor = blockXor;
    const blockKnown = new Uint16Array(blocks);
    blockKnown.set(this.blockKnown);
    this.blockKnown = blockKnown;
  }
}

/**
 * Reads `into.length` bytes of page `pgno` into `into` and returns how many
 * bytes it got; fewer than a page means the file ends there.
 */
export type PageReader = (pgno: number, into: Uint8Array) => number;

/**
 * (Re)loads file checksums of pages firstPgno..pageCount by reading them
 * through `readPage` (one page buffer, reused), after forgetting every page
 * from firstPgno on. Stops at the first short read: as in LiteFS, a file
 * shorter than pageCount is tolerated and its missing pages stay unknown
 * (recovery's replay of the last LTX repairs them). The lock page is never
 * read. Returns the last page loaded (firstPgno − 1 if none).
 */
export function loadPageChecksums(
  cache: ChecksumCache,
  pageCount: number,
  readPage: PageReader,
  firstPgno = 1,
): number {
  cache.truncate(firstPgno - 1);
  const buf = new Uint8Array(cache.pageSize);
  let last = firstPgno - 1;
  for (let pgno = firstPgno; pgno <= pageCount; pgno++) {
    if (pgno === cache.lockPage) {
      last = pgno;
      continue;
    }
    if (readPage(pgno, buf) < buf.length) break;
    cache.computePage(pgno, buf);
    last = pgno;
  }
  return last;
}
