import { ShortBufferError } from './errors.js';
import { JournalReader, type JournalStopReason } from './journal.js';
import { readExactly, type PositionalReader } from './positional.js';

/** What rolling back a journal does to the database file. */
export interface RollbackPlan {
  pageSize: number;
  /** Size in pages to truncate (or extend) the database to: the first header's initial size. */
  initialPageCount: number;
  /**
   * pgno → journal offset of the page content to write back. Records are
   * played in file order, so if a page occurs twice the later one wins, as
   * in SQLite's playback.
   */
  pages: Map<number, number>;
  /** Valid segments read. */
  segmentCount: number;
  /** Valid records read, including any skipped for being beyond the initial size. */
  recordCount: number;
  stopReason: JournalStopReason | null;
}

/**
 * Plans a rollback following SQLite's playback rules: the first header must
 * have the magic and sets the truncation size; later segments must have the
 * magic; playback stops at pgno 0, the lock page or a checksum mismatch;
 * records for pages beyond the initial size are skipped. Returns null when
 * the journal has no valid first header: nothing to roll back.
 */
export function planRollback(reader: JournalReader): RollbackPlan | null {
  const first = reader.firstHeader;
  if (first === null || reader.segments.length === 0) return null;
  const initialPageCount = first.initialPageCount;
  const pages = new Map<number, number>();
  let recordCount = 0;
  for (let rec = reader.next(); rec !== null; rec = reader.next()) {
    recordCount++;
    if (rec.pgno > initialPageCount) continue;
    pages.set(rec.pgno, rec.dataOffset);
  }
  return {
    pageSize: reader.pageSize,
    initialPageCount,
    pages,
    segmentCount: reader.segments.length,
    recordCount,
    stopReason: reader.stopReason,
  };
}

/** The writes a rollback needs; the store decides how they reach the disk. */
export interface RollbackTarget {
  writeAt(data: Uint8Array, offset: number): void;
  truncate(size: number): void;
}

/**
 * Applies a plan: writes each page's original content at (pgno-1)·P, then
 * sets the file size to initialPageCount·P (SQLite truncates first; the
 * result is the same since no written page lies beyond that size).
 */
export function applyRollbackPlan(plan: RollbackPlan, journal: PositionalReader, db: RollbackTarget): void {
  const page = Buffer.alloc(plan.pageSize);
  const pgnos = [...plan.pages.keys()].sort((a, b) => a - b);
  for (const pgno of pgnos) {
    if (!readExactly(journal, page, plan.pages.get(pgno)!)) {
      throw new ShortBufferError(`journal record for page ${pgno}`, plan.pages.get(pgno)! + plan.pageSize, journal.size());
    }
    db.writeAt(page, (pgno - 1) * plan.pageSize);
  }
  db.truncate(plan.initialPageCount * plan.pageSize);
}
