/**
 * Rollback-journal commit (ref §6.3): SQLite finalizing its journal is the
 * commit point, so the LTX file must be durable before we let that happen.
 *
 * Signals: unlink of `-journal` (DELETE), truncate to 0 (TRUNCATE), 28 zero
 * bytes at offset 0 (PERSIST, and EXCLUSIVE locking mode). commitJournal
 * carries out that finalize itself, after the LTX file is durable. A journal whose
 * header has no magic never reached the database file (SQLite writes the
 * magic only when it syncs the journal right before touching the database),
 * so that finalize is a rollback: no LTX.
 */
import { checksumPage } from '../ltx/index.js';
import { JOURNAL_HEADER_FIELDS_SIZE, JOURNAL_MAGIC } from '../sqlite/index.js';
import type { DB } from './db.js';
import { nextTxHeader, publishCommit, verifyDatabaseChecksum } from './commit-common.js';
import { CommitFencedError } from './fence.js';

/** How SQLite finalizes the journal in the current journal mode. */
export type JournalFinalize = 'delete' | 'truncate' | 'persist';

export function commitJournal(db: DB, how: JournalFinalize): void {
  const io = db.io;
  const dbFd = io.open(db.databasePath, 'readWrite');
  let refused = false;
  try {
    let committed = db.pageSize !== 0 && journalHasMagic(db);
    if (committed && db.ctx.fence?.commitsFenced() === true) {
      // Past the lease deadline nothing may be acknowledged. SQLite's own
      // rollback after the refusal finalizes the journal again; that one
      // restored every page (the checksum is the position's again) and
      // goes through, with no LTX file.
      if (!isNetNoop(db, dbFd)) {
        refused = true;
        throw new CommitFencedError(db.name, 'journal');
      }
      committed = false;
    }
    if (committed) {
      writeJournalLTX(db, dbFd);
      // The pages are in a durable LTX file; now the database file must be
      // durable too before its undo log (the journal) can go. SQLite has
      // normally fsynced it just before (synchronous NORMAL and FULL).
      if (db.databaseUnsynced) {
        io.fsync(dbFd);
        db.databaseUnsynced = false;
      }
    }
    // Finalizing the journal is SQLite's commit point: it must come after
    // both syncs above. It is not made durable here: SQLite syncs a
    // truncated (FULL) or zeroed (NORMAL, FULL) journal itself, and never
    // the unlink. A journal that power loss brings back is rolled back at
    // start-up and the last LTX file, durable already, is applied again.
    finalizeJournal(db, how);
    if (committed && db.ctx.options.strictVerify) verifyDatabaseChecksum(db);
  } finally {
    io.close(dbFd);
    // A refused commit stays a journal transaction: SQLite rolls it back
    // next, writing the journal's pages into the database file.
    if (!refused) {
      db.dirty.clear();
      db.journalActive = false;
    }
  }
}

/** True when the database file equals the last LTX position again (a rolled-back transaction). */
function isNetNoop(db: DB, dbFd: number): boolean {
  const commit = db.readCommit(dbFd);
  if (commit !== db.pageN) return false;
  // The first transaction of a new database rolled back: empty again.
  if (commit === 0) return true;
  return db.cache().databaseChecksum(commit) === db.pos.postApplyChecksum;
}

function journalHasMagic(db: DB): boolean {
  const size = db.io.sizeOf(db.journalPath);
  if (size === null || size < JOURNAL_MAGIC.length) return false;
  const fd = db.io.open(db.journalPath, 'read');
  try {
    const magic = new Uint8Array(JOURNAL_MAGIC.length);
    db.io.read(fd, magic, 0);
    return Buffer.compare(magic, JOURNAL_MAGIC) === 0;
  } finally {
    db.io.close(fd);
  }
}

function writeJournalLTX(db: DB, dbFd: number): void {
  const io = db.io;
  const cache = db.cache();
  const commit = db.readCommit(dbFd);
  const pgnos = [...db.dirty].filter((p) => p <= commit && p !== cache.lockPage).sort((a, b) => a - b);
  // The transaction may have shrunk the database.
  cache.truncate(commit);
  const postApply = cache.databaseChecksum(commit);
  const header = nextTxHeader(db, { commit });
  let mode = db.mode;
  const page = new Uint8Array(db.pageSize);
  publishCommit(db, header, postApply, (emit) => {
    for (const pgno of pgnos) {
      if (io.read(dbFd, page, (pgno - 1) * db.pageSize) !== page.length) {
        throw new Error(`${db.name}: page ${pgno} is beyond the end of the database file`);
      }
      // Both directions (ref §15.4): page 1's version bytes say the mode.
      if (pgno === 1) mode = page[18] === 2 && page[19] === 2 ? 'wal' : 'rollback';
      if (cache.getPage(pgno) !== checksumPage(pgno, page)) {
        throw new Error(`${db.name}: page ${pgno} changed behind LiteFS's back (checksum cache disagrees with the file)`);
      }
      emit(pgno, page);
    }
  });
  db.mode = mode;
}

function finalizeJournal(db: DB, how: JournalFinalize): void {
  const io = db.io;
  if (!io.exists(db.journalPath)) return;
  if (how === 'delete') {
    io.unlink(db.journalPath);
    return;
  }
  const fd = io.open(db.journalPath, 'readWrite');
  try {
    if (how === 'truncate') io.truncate(fd, 0);
    else io.write(fd, new Uint8Array(JOURNAL_HEADER_FIELDS_SIZE), 0);
  } finally {
    io.close(fd);
  }
}
