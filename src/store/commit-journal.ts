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
import { type Header, checksumPage } from '../ltx/index.js';
import { JOURNAL_HEADER_FIELDS_SIZE, JOURNAL_MAGIC } from '../sqlite/index.js';
import type { JournalMode } from '../sqlite/index.js';
import type { DB } from './db.js';
import { nextTxHeader, publishCommit, verifyDatabaseChecksum } from './commit-common.js';
import { CommitFencedError } from './fence.js';
import type { StagedTx } from './forward.js';
import { type PageEmitter, writeLTXFile } from './ltx-writer.js';

/** How SQLite finalizes the journal in the current journal mode. */
export type JournalFinalize = 'delete' | 'truncate' | 'persist';

export interface CommitJournalOptions {
  /**
   * A rolled-back transaction whose journal SQLite had synced restores every
   * page: its finalize is then a net no-op. By default it still becomes an
   * LTX file holding the restored pages (ref §6.3); with this set it
   * becomes none, as when fenced. A replica writing under a HALT lock sets
   * it: a file the primary never saw must not advance this node alone.
   */
  readonly dropNetNoop?: boolean;
}

export function commitJournal(db: DB, how: JournalFinalize, options: CommitJournalOptions = {}): void {
  const io = db.io;
  const dbFd = io.open(db.databasePath, 'readWrite');
  let refused = false;
  try {
    let committed = db.pageSize !== 0 && journalHasMagic(db);
    const fenced = committed && db.ctx.fence?.commitsFenced() === true;
    if (committed && (fenced || options.dropNetNoop === true) && isNetNoop(db, dbFd)) {
      // SQLite's own rollback restored every page (the checksum is the
      // position's again): the finalize goes through, with no LTX file.
      committed = false;
    } else if (fenced) {
      // Past the lease deadline nothing may be acknowledged. SQLite's own
      // rollback after the refusal finalizes the journal again, and that one
      // is a net no-op (above).
      refused = true;
      throw new CommitFencedError(db.name, 'journal');
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

/**
 * The LTX file the journal's finalize would commit, written into `dir`
 * and nothing else changed (store/forward.ts); null when the finalize
 * would commit nothing (no journal magic, or a net no-op).
 */
export function stageJournalCommit(db: DB, dir: string): StagedTx | null {
  if (db.pageSize === 0 || !journalHasMagic(db)) return null;
  const io = db.io;
  const dbFd = io.open(db.databasePath, 'read');
  try {
    if (isNetNoop(db, dbFd)) return null;
    const tx = planJournalTx(db, dbFd);
    // Not synced: it only has to reach the primary, which syncs its copy.
    const { path } = writeLTXFile(io, dir, tx.header, tx.postApply, tx.pages, false);
    return { path, txid: tx.header.maxTXID, postApply: tx.postApply };
  } finally {
    io.close(dbFd);
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

/** A journal SQLite synced before it touched the database file: a commit, or a hot journal. */
export function journalHasMagic(db: DB): boolean {
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

/** A journal transaction's LTX: header, checksum, pages, and the mode page 1 says once they were read. */
interface JournalTx {
  readonly header: Header;
  readonly postApply: bigint;
  readonly pages: PageEmitter;
  readonly mode: () => JournalMode;
}

function planJournalTx(db: DB, dbFd: number): JournalTx {
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
  const pages: PageEmitter = (emit) => {
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
  };
  return { header, postApply, pages, mode: () => mode };
}

function writeJournalLTX(db: DB, dbFd: number): void {
  const tx = planJournalTx(db, dbFd);
  publishCommit(db, tx.header, tx.postApply, tx.pages);
  db.mode = tx.mode();
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
