/**
 * Step-down recovery (ref §7.3 `Store.Recover`, on the FUSE thread): when
 * this node stops being primary at runtime, every database must equal its
 * last LTX file again before it takes replicated transactions. Whatever a
 * cut-off transaction left is undone, and nothing is published as a commit:
 *   - a hot journal (its commit was refused: deadline or replica) is rolled
 *     back into the database file, as at start-up (open.ts);
 *   - WAL frames after the end of the last LTX file (a transaction whose
 *     commit frame was refused, or that never wrote one) are cut off. They
 *     are past the wal-index's mxFrame, so no reader ever used them and the
 *     wal-index needs no rewrite. Committed frames before that point have
 *     LTX files and stay; the first replicated apply folds them into the
 *     database file (apply.ts).
 * The caller holds the database's write lock set (no SQLite connection is
 * inside a transaction) and invalidates the kernel's caches from the result.
 */
import { formatHex16 } from '../ltx/index.js';
import { type ByteRange, RangeSet } from './apply.js';
import type { DB } from './db.js';
import { rollbackJournal } from './open.js';

export interface StepDownResult {
  /** Byte ranges of the database file rewritten or cut off. */
  readonly ranges: readonly ByteRange[];
  /** A hot journal was rolled back (its name is gone now). */
  readonly journalRemoved: boolean;
  /** The WAL was cut back to this size; null when it was left alone. */
  readonly walTruncatedAt: number | null;
}

export function recoverToLastLTX(db: DB): StepDownResult {
  const io = db.io;
  // Replicated applies rewrite the database file from now on.
  db.syncPendingLTX();
  const ranges = new RangeSet();
  let journalRemoved = false;
  if (io.exists(db.journalPath)) {
    const before = io.sizeOf(db.databasePath) ?? 0;
    const pageSize = db.pageSize;
    rollbackJournal(db, {
      page(data, offset) {
        if (pageSize !== 0) db.cache().computePage(offset / pageSize + 1, data);
        ranges.add(offset, data.length);
      },
      truncated(size) {
        if (pageSize !== 0) db.cache().truncate(Math.floor(size / pageSize));
        if (before > size) ranges.add(size, before - size);
      },
    });
    io.fsyncDir(db.dir);
    journalRemoved = true;
  }
  db.dirty.clear();
  db.journalActive = false;
  db.lastRefusal = null;

  let walTruncatedAt: number | null = null;
  if (db.wal.header !== null) {
    const size = io.sizeOf(db.walPath);
    if (size !== null && size > db.wal.offset) {
      const fd = io.open(db.walPath, 'readWrite');
      try {
        io.truncate(fd, db.wal.offset);
        io.fsync(fd);
      } finally {
        io.close(fd);
      }
      walTruncatedAt = db.wal.offset;
    }
  }

  if (db.pageN > 0 && db.pageSize !== 0) {
    const actual = db.cache().databaseChecksum(db.pageN);
    if (actual !== db.pos.postApplyChecksum) {
      throw new Error(
        `${db.name}: after step-down recovery the database checksum ${formatHex16(actual)} does not match the last LTX file's ${formatHex16(db.pos.postApplyChecksum)} (TXID ${formatHex16(db.pos.txid)})`,
      );
    }
  }
  return { ranges: ranges.list(), journalRemoved, walTruncatedAt };
}
