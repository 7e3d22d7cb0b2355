/**
 * Applying a received LTX file on a replica (ref §6.6, §9.6): the file
 * becomes the database's next state. The caller holds the database's write
 * lock set and invalidates the kernel's caches from the result.
 *
 * Order, for crash safety:
 *   1. checks that change nothing (position, page size);
 *   2. a snapshot over diverged local data: quarantine copy (ARCHITECTURE §3.1);
 *   3. committed WAL frames (left from a time as primary) go into the file;
 *   4. the file is renamed into `ltx/` and the folder fsynced (a file the
 *      replica client placed there as `<name>.received` is durable already:
 *      only the suffix goes); a snapshot then removes every other LTX
 *      file. From here start-up re-applies the file (open.ts), so a crash
 *      mid-apply is repaired;
 *   5. pages, truncate, fsync (or, for commit 0, the database is deleted).
 *      With `syncDatabase` false the fsync is left to the group: a later
 *      apply (at most MAX_APPLY_GROUP in a row), the `sync` command, a
 *      local commit or unmount; start-up applies that many newest files
 *      again;
 *   6. the checksum must equal the file's post-apply checksum;
 *   7. position, mode, `tx` event, wal-index header, retention.
 * Any failure after step 4 is an ApplyFatalError: the daemon must stop.
 */
import { join } from 'node:path';
import {
  ChecksumFlag,
  type Header,
  HEADER_SIZE as LTX_HEADER_SIZE,
  LTXDecoder,
  TRAILER_SIZE,
  formatFilename,
  formatHex16,
  forEachChunk,
  isSnapshot,
  lockPgno,
  parseFilename,
  unmarshalHeader,
  unmarshalTrailer,
} from '../ltx/index.js';
import { SHM_REGION_SIZE, WAL_FRAME_HEADER_SIZE, WAL_HEADER_SIZE, WAL_INDEX_HEADER_SIZE, buildEmptyWalShmHeader, parseWalIndexHeader } from '../sqlite/index.js';
import { advancePosition } from './commit-common.js';
import { type DB, MAX_APPLY_GROUP, RECEIVED_SUFFIX } from './db.js';
import { removeDatabaseFiles } from './drop.js';
import { ApplyFatalError, ApplyPosMismatchError, InvalidWriteError } from './errors.js';
import { ForensicCase } from './forensic.js';
import type { QuarantineRequest } from './messages.js';
import { maybeEnforceRetention } from './retention.js';

/** A byte range of the database file that changed. */
export interface ByteRange {
  readonly off: number;
  readonly len: number;
}

export interface ApplyResult {
  /** Byte ranges of the database file written, ascending, adjacent ones merged. */
  readonly ranges: readonly ByteRange[];
  /** A snapshot replaced the file: invalidate all of it. */
  readonly wholeFile: boolean;
  /** The file had commit 0: the database and its side files are gone. */
  readonly deleted: boolean;
  /**
   * The first page of the rewritten `-shm` (the wal-index header), or null
   * when there is no `-shm`. The kernel's cached copy must be replaced with
   * it (not merely invalidated: a dirty mmapped page would be written back
   * over it first), and `restoreWalIndexPage` repeats the write once that is
   * done, in case such a write-back landed in between.
   */
  readonly shmPage: Uint8Array | null;
  /** The quarantine folder, when local data was set aside first. */
  readonly quarantineDir: string | null;
  /** WAL frames left from a time as primary were folded into the database file and the WAL cut to 0 bytes. */
  readonly walFolded: boolean;
}

export function applyLTX(db: DB, path: string, quarantine: QuarantineRequest | null, syncDatabase = true): ApplyResult {
  return applyLTXFiles(db, [path], quarantine, syncDatabase);
}

/** A file to apply: where it is, and its two ends. */
interface ApplyFile {
  readonly path: string;
  readonly header: Header;
  readonly postApply: bigint;
  readonly name: string;
}

/**
 * Applies `paths` in order as one apply (a replica's queued files): the
 * checks of all of them first, then every file renamed into `ltx/` with
 * one folder fsync, then their pages, one wal-index rewrite and one round
 * of cache invalidation. Several files must all be incremental, non-empty
 * and without a quarantine, and at most MAX_APPLY_GROUP: their pages are
 * left unsynced behind the apply group's marker, so start-up can redo them
 * (the database file is fsynced after the last one when `syncDatabase`).
 */
export function applyLTXFiles(db: DB, paths: readonly string[], quarantine: QuarantineRequest | null, syncDatabase = true): ApplyResult {
  const io = db.io;
  const all: ApplyFile[] = paths.map((path) => {
    const { header, postApply } = readEnds(db, path);
    return { path, header, postApply, name: formatFilename(header.minTXID, header.maxTXID) };
  });
  if (all.length === 0) throw new Error('applyLTXFiles: no file');
  // Already here: transactions this node wrote under a HALT lock and
  // forwarded, streamed back by the primary (ref §8.4 step 6), possibly
  // after later ones. Their files are in ltx/ already; the copies go.
  const here = all.map((f) => isAlreadyHere(db, f));
  const files = all.filter((_, i) => !here[i]);
  all.forEach((f, i) => here[i] === true && io.unlink(f.path));
  const first = files[0];
  if (first === undefined) return { ranges: [], wholeFile: false, deleted: false, shmPage: null, quarantineDir: null, walFolded: false };
  const last = files[files.length - 1]!;
  const snapshot = isSnapshot(first.header);
  if (files.length > 1) {
    if (files.length > MAX_APPLY_GROUP) throw new Error(`applyLTXFiles: ${files.length} files, at most ${MAX_APPLY_GROUP} at once`);
    const alone = files.find((f) => isSnapshot(f.header) || f.header.commit === 0);
    if (alone !== undefined || quarantine !== null) throw new InvalidWriteError(db.name, `${(alone ?? first).name}: snapshots, deletions and quarantines are applied alone`);
  }

  // WAL commits of this node's time as primary: durable before anything here rewrites the database.
  db.syncPendingLTX();
  // 1. Refusals: nothing has changed yet.
  let pos = db.pos;
  for (const { header, postApply, name } of files) {
    if (!snapshot && (pos.txid !== header.minTXID - 1n || pos.postApplyChecksum !== header.preApplyChecksum)) {
      throw new ApplyPosMismatchError(db.name, pos, { txid: header.minTXID - 1n, postApplyChecksum: header.preApplyChecksum }, name);
    }
    if (!snapshot && header.commit > 0 && db.pageSize !== 0 && db.pageSize !== header.pageSize) {
      throw new InvalidWriteError(db.name, `${name} has page size ${header.pageSize}, the database ${db.pageSize} (only a snapshot may change it)`);
    }
    // An empty database's checksum is the bare flag.
    if (header.commit === 0 && postApply !== ChecksumFlag) {
      throw new InvalidWriteError(db.name, `deletion ${name} has post-apply checksum ${formatHex16(postApply)}`);
    }
    pos = { txid: header.maxTXID, postApplyChecksum: postApply };
  }

  // 2. Diverged local data is copied aside before anything replaces it.
  let quarantineDir: string | null = null;
  if (snapshot && quarantine !== null && hasLocalData(db)) quarantineDir = quarantineLocalData(db, quarantine, first.header, first.postApply);

  // 3. WAL frames from a time as primary: the wal-index is about to say
  // "WAL empty", so their pages must be in the database file first.
  const ranges = new RangeSet();
  const walFolded = foldWAL(db, ranges);

  // 4. Durable in ltx/ before the database is touched; so is the marker of
  // an apply group (its first file leaves the database unsynced, and files
  // applied together are in ltx/ before their pages are written). The
  // group stays within the MAX_APPLY_GROUP newest files start-up redoes.
  io.mkdirp(db.ltxDir);
  if (db.unsyncedApplies + files.length > MAX_APPLY_GROUP) db.syncAppliedPages();
  const sync = syncDatabase || db.unsyncedApplies + files.length >= MAX_APPLY_GROUP;
  let madeMarker = false;
  if ((!sync || files.length > 1) && db.unsyncedApplies === 0 && !io.exists(db.applyGroupPath)) {
    io.close(io.open(db.applyGroupPath, 'createNew'));
    madeMarker = true;
  }
  // A file the replica client placed in ltx/ as `<name>.received` is
  // durable there already (RECEIVED_SUFFIX): dropping the suffix needs no
  // sync. Any other comes in by a rename the folder fsync makes durable.
  const placed = (f: ApplyFile): boolean => f.path === join(db.ltxDir, f.name + RECEIVED_SUFFIX);
  for (const f of files) io.rename(f.path, join(db.ltxDir, f.name));
  if (madeMarker || !files.every(placed)) io.fsyncDir(db.ltxDir);
  try {
    if (snapshot) removeOtherLTXFiles(db, first.name);
    const deleted = first.header.commit === 0;
    for (const { header, postApply, name } of files) {
      let pageCount = 0;
      if (deleted) {
        removeDatabaseFiles(db);
        db.endApplyGroup();
      } else {
        pageCount = writePages(db, join(db.ltxDir, name), header, ranges, sync && header === last.header);
        const actual = db.cache().databaseChecksum(header.commit);
        if (actual !== postApply) {
          throw new Error(`database checksum ${formatHex16(actual)} does not match LTX post-apply checksum ${formatHex16(postApply)} of ${name}`);
        }
      }
      advancePosition(db, header, postApply, pageCount, null);
    }
    if (!deleted) {
      if (sync) db.endApplyGroup();
      else db.unsyncedApplies += files.length;
    }
    db.dirty.clear();
    db.journalActive = false;
    db.lastRefusal = null;
    const shmPage = deleted ? null : rewriteWalIndexHeader(db);
    maybeEnforceRetention(db);
    return { ranges: ranges.list(), wholeFile: snapshot, deleted, shmPage, quarantineDir, walFolded };
  } catch (err) {
    const names = files.map((f) => f.name).join(', ');
    throw new ApplyFatalError(db.name, `applying ${names} failed after ${files.length > 1 ? 'they were' : 'it was'} moved into ltx/: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * True for an incremental file this database has applied or committed
 * already: it ends at the position, or at a TXID before it whose own LTX
 * file in ltx/ has the same checksums at both ends (the same transaction:
 * the checksums chain the whole history).
 */
function isAlreadyHere(db: DB, f: ApplyFile): boolean {
  if (isSnapshot(f.header) || f.header.maxTXID > db.pos.txid) return false;
  if (f.header.maxTXID === db.pos.txid) return f.postApply === db.pos.postApplyChecksum;
  const own = join(db.ltxDir, f.name);
  if (own === f.path || !db.io.exists(own)) return false;
  const ends = readEnds(db, own);
  return ends.postApply === f.postApply && ends.header.preApplyChecksum === f.header.preApplyChecksum && ends.header.minTXID === f.header.minTXID;
}

/** True when the database has anything a snapshot would replace. */
function hasLocalData(db: DB): boolean {
  if (db.pos.txid > 0n || (db.io.sizeOf(db.databasePath) ?? 0) > 0) return true;
  return db.io.exists(db.ltxDir) && db.io.readdir(db.ltxDir).some((n) => n.endsWith('.ltx'));
}

/** Copies the database, its side files and its LTX files to `<data>/quarantine/<db>/<time>/`. */
function quarantineLocalData(db: DB, q: QuarantineRequest, header: Header, postApply: bigint): string {
  const folder = new ForensicCase(db, `snapshot replaces local data (${q.reason})`, 'quarantine');
  for (const p of [db.databasePath, db.walPath, db.journalPath]) folder.copy(p);
  if (db.io.exists(db.ltxDir)) {
    for (const n of db.io.readdir(db.ltxDir)) if (n.endsWith('.ltx')) folder.copy(join(db.ltxDir, n), 'ltx');
  }
  folder.close({
    primary: q.primary,
    quarantineReason: q.reason,
    localPosition: { txid: formatHex16(db.pos.txid), postApplyChecksum: formatHex16(db.pos.postApplyChecksum) },
    snapshotPosition: { txid: formatHex16(header.maxTXID), postApplyChecksum: formatHex16(postApply) },
  });
  return folder.dir;
}

/** Header and trailer's post-apply checksum of a file the main thread verified. */
function readEnds(db: DB, path: string): { header: Header; postApply: bigint } {
  const io = db.io;
  const fd = io.open(path, 'read');
  try {
    const head = new Uint8Array(LTX_HEADER_SIZE);
    if (io.read(fd, head, 0) < head.length) throw new Error(`${path}: shorter than an LTX header`);
    const size = io.fileSize(fd);
    const tail = new Uint8Array(TRAILER_SIZE);
    if (size < LTX_HEADER_SIZE + TRAILER_SIZE || io.read(fd, tail, size - TRAILER_SIZE) < tail.length) {
      throw new Error(`${path}: shorter than an LTX header and trailer`);
    }
    return { header: unmarshalHeader(head), postApply: unmarshalTrailer(tail).postApplyChecksum };
  } finally {
    io.close(fd);
  }
}

/** Moves committed WAL pages into the database file and empties the WAL (we hold every WAL lock). */
function foldWAL(db: DB, ranges: RangeSet): boolean {
  if (db.wal.frameOffsets.size === 0) return false;
  const io = db.io;
  const page = new Uint8Array(db.pageSize);
  const wfd = io.open(db.walPath, 'readWrite');
  try {
    const dfd = io.open(db.databasePath, 'readWrite');
    try {
      const pgnos = [...db.wal.frameOffsets.keys()].sort((a, b) => a - b);
      for (const pgno of pgnos) {
        if (pgno > db.pageN) continue;
        io.read(wfd, page, db.wal.frameOffsets.get(pgno)! + WAL_FRAME_HEADER_SIZE);
        io.write(dfd, page, (pgno - 1) * db.pageSize);
        db.cache().computePage(pgno, page);
        ranges.add((pgno - 1) * db.pageSize, db.pageSize);
      }
      io.truncate(dfd, db.pageN * db.pageSize);
      io.fsync(dfd);
    } finally {
      io.close(dfd);
    }
    io.truncate(wfd, 0);
    io.fsync(wfd);
  } finally {
    io.close(wfd);
  }
  db.resetWalPages();
  db.wal.header = null;
  db.wal.offset = WAL_HEADER_SIZE;
  db.wal.checksum = [0, 0];
  return true;
}

/** A snapshot is the whole history now: every other LTX file goes (ref §6.8). */
function removeOtherLTXFiles(db: DB, keep: string): void {
  let removed = false;
  for (const n of db.io.readdir(db.ltxDir)) {
    if (n === keep) continue;
    try {
      parseFilename(n);
    } catch {
      continue;
    }
    db.io.unlink(join(db.ltxDir, n));
    removed = true;
  }
  if (removed) db.io.fsyncDir(db.ltxDir);
}

/** Writes the file's pages into the database file, truncates it and (with `sync`) fsyncs it; returns the page count. */
function writePages(db: DB, ltxPath: string, header: Header, ranges: RangeSet, sync: boolean): number {
  const io = db.io;
  const pageSize = header.pageSize;
  if (isSnapshot(header)) db.resetPageSize(pageSize);
  else db.setPageSize(pageSize);
  const cache = db.cache();
  const lockPage = lockPgno(pageSize);
  const dfd = io.open(db.databasePath, 'create');
  let pages = 0;
  try {
    const oldSize = io.fileSize(dfd);
    const dec = new LTXDecoder({
      onPage(pgno, data) {
        if (pgno === lockPage) return;
        if (pgno === 1) db.mode = data[18] === 2 && data[19] === 2 ? 'wal' : 'rollback';
        io.write(dfd, data, (pgno - 1) * pageSize);
        cache.computePage(pgno, data);
        ranges.add((pgno - 1) * pageSize, pageSize);
        pages++;
      },
    });
    const fd = io.open(ltxPath, 'read');
    try {
      let pos = 0;
      forEachChunk(
        {
          read(buf) {
            const n = io.read(fd, buf, pos);
            pos += n;
            return n;
          },
        },
        (chunk) => dec.push(chunk),
      );
    } finally {
      io.close(fd);
    }
    dec.end();
    const newSize = header.commit * pageSize;
    io.truncate(dfd, newSize);
    cache.truncate(header.commit);
    // Pages cut off may sit in the kernel's cache.
    if (oldSize > newSize) ranges.add(newSize, oldSize - newSize);
    if (sync) io.fsync(dfd);
  } finally {
    io.close(dfd);
  }
  return pages;
}

/**
 * ref §6.7 / §3.4: the wal-index header says "WAL empty, nPage pages,
 * changed" (mxFrame 0, iChange + 1) so every WAL-mode reader drops its
 * page cache and reads the database file. The rest of the file is kept.
 * Only when a `-shm` exists: without one no reader has a wal-index
 * (LiteFS creates it anyway, quirk §15.8.9). The file is not truncated
 * (LiteFS truncates to 32 KiB): readers may have more of it mapped, and
 * with mxFrame 0 they never look past the header.
 */
function rewriteWalIndexHeader(db: DB): Uint8Array | null {
  const io = db.io;
  if (!io.exists(db.shmPath)) return null;
  // Only the header's page is read and written (the kernel caches it as one
  // page); a file shorter than the first region is extended with zeros.
  const block = Buffer.alloc(SHM_HEADER_PAGE);
  const fd = io.open(db.shmPath, 'readWrite');
  try {
    const n = io.read(fd, block, 0);
    if (io.fileSize(fd) < SHM_REGION_SIZE) io.truncate(fd, SHM_REGION_SIZE);
    const previous = n >= WAL_INDEX_HEADER_SIZE ? parseWalIndexHeader(block) : null;
    const header = buildEmptyWalShmHeader({
      previous,
      pageSize: db.pageSize,
      nPage: db.pageN,
      frameChecksum: db.wal.checksum,
      salt1: db.wal.header?.salt1 ?? 0,
      salt2: db.wal.header?.salt2 ?? 0,
    });
    header.copy(block, 0);
    io.write(fd, block, 0);
  } finally {
    io.close(fd);
  }
  return block;
}

/**
 * Writes the wal-index header page of an apply again (the caller still holds
 * the write lock set, so no SQLite connection changed it legitimately). A
 * reader's dirty mmapped page written back by the kernel after the apply
 * may have put the old header into the file.
 */
export function restoreWalIndexPage(db: DB, page: Uint8Array): void {
  const io = db.io;
  if (!io.exists(db.shmPath)) return;
  const fd = io.open(db.shmPath, 'readWrite');
  try {
    io.write(fd, page, 0);
  } finally {
    io.close(fd);
  }
}

/** The page of `-shm` holding the header, as the kernel caches it. */
const SHM_HEADER_PAGE = 4096;

/** Ascending byte ranges, merging a range that starts where the last one ends. */
export class RangeSet {
  private readonly ranges: { off: number; len: number }[] = [];

  add(off: number, len: number): void {
    const last = this.ranges.at(-1);
    if (last !== undefined && last.off + last.len === off) last.len += len;
    else this.ranges.push({ off, len });
  }

  list(): ByteRange[] {
    // The WAL fold and the LTX pages each ascend; together they may not.
    const sorted = [...this.ranges].sort((a, b) => a.off - b.off);
    const out: { off: number; len: number }[] = [];
    for (const r of sorted) {
      const last = out.at(-1);
      if (last !== undefined && r.off <= last.off + last.len) last.len = Math.max(last.len, r.off + r.len - last.off);
      else out.push({ ...r });
    }
    return out;
  }
}
