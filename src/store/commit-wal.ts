/**
 * WAL commit (ref §6.4). SQLite gives no signal when it appends a commit
 * frame; LiteFS takes the release of the WAL WRITE lock by the owner that
 * held it exclusively as the end of a write transaction. This runs before
 * that lock is released, so no checkpoint (CKPT rule, locks.ts) and no other
 * writer can touch the frames until their LTX file is durable.
 *
 * Exactly one transaction is turned into LTX per release; a writer that
 * rolled back leaves no complete transaction and nothing happens.
 */
import { type Header, checksumPage } from '../ltx/index.js';
import { type JournalMode, type PositionalReader, type WalTransaction, WAL_FRAME_HEADER_SIZE, readWalTransaction } from '../sqlite/index.js';
import { PageChecksumOverlay } from './checksum-cache.js';
import { nextTxHeader, publishCommit, verifyDatabaseChecksum } from './commit-common.js';
import type { DB } from './db.js';
import { type PendingWrite, type StagedTx, withPendingWrite } from './forward.js';
import { type PageEmitter, writeLTXFile } from './ltx-writer.js';

/** Transactions up to this many bytes of frames are read once (pages kept in memory), larger ones again per page. */
const KEEP_PAGE_BYTES = 1 << 20;

/** Returns true when a transaction was committed. */
export function commitWAL(db: DB): boolean {
  const fd = db.io.open(db.walPath, 'read');
  try {
    // No fsync here (ARCHITECTURE §7): the WAL is as durable as the
    // application's synchronous level made it, and the LTX file joins the
    // pending group, synced before the frames can leave the WAL. Recovery
    // rebuilds a lost one from the frames.
    const plan = planWalTx(db, db.reader(fd));
    if (plan === null) return false;
    const { tx, overlay, prevPageN } = plan;
    publishCommit(db, plan.header, plan.postApply, plan.pages, 'group');
    db.mode = plan.mode();
    overlay.mergeInto(db.cache().wal);
    for (const [pgno, off] of tx.frameOffsets) db.wal.frameOffsets.set(pgno, off);
    for (let pgno = tx.commit + 1; pgno <= prevPageN; pgno++) db.wal.frameOffsets.delete(pgno);
    db.wal.offset = tx.endOffset;
    db.wal.checksum = tx.checksum;
  } finally {
    db.io.close(fd);
  }
  if (db.ctx.options.strictVerify) verifyDatabaseChecksum(db);
  return true;
}

/**
 * The LTX file the next WAL commit would write, written into `dir` and
 * nothing else changed (store/forward.ts); null when the WAL holds no complete
 * transaction after the last one committed. `pending`: a WAL write not made
 * yet, read as if it were (the one that completes the commit frame).
 */
export function stageWALCommit(db: DB, dir: string, pending?: PendingWrite): StagedTx | null {
  const fd = db.io.open(db.walPath, 'read');
  try {
    const source = pending === undefined ? db.reader(fd) : withPendingWrite(db.reader(fd), pending);
    const plan = planWalTx(db, source);
    if (plan === null) return null;
    // Not synced: it only has to reach the primary, which syncs its copy.
    const { path } = writeLTXFile(db.io, dir, plan.header, plan.postApply, plan.pages, false);
    return { path, txid: plan.header.maxTXID, postApply: plan.postApply, walEnd: plan.tx.endOffset };
  } finally {
    db.io.close(fd);
  }
}

/** The next WAL transaction's LTX, with what the commit updates once it is written. */
interface WalTx {
  readonly tx: WalTransaction;
  readonly header: Header;
  readonly postApply: bigint;
  readonly pages: PageEmitter;
  /** The checksums of the transaction's pages (and of pages it cut off). */
  readonly overlay: PageChecksumOverlay;
  readonly prevPageN: number;
  /** The mode page 1 says, once the pages were emitted. */
  readonly mode: () => JournalMode;
}

function planWalTx(db: DB, source: PositionalReader): WalTx | null {
  const header = db.wal.header;
  if (header === null || db.pageSize === 0) return null;
  const tx = readWalTransaction(source, header, db.wal.offset, db.wal.checksum, KEEP_PAGE_BYTES);
  if (tx === null) return null;
  const cache = db.cache();
  const prevPageN = db.pageN;
  const pgnos = [...tx.frameOffsets.keys()].filter((p) => p !== cache.lockPage).sort((a, b) => a - b);
  const overlay = new PageChecksumOverlay();
  const page = new Uint8Array(db.pageSize);
  const readFrame = (pgno: number): Uint8Array => {
    const kept = tx.pages?.get(pgno);
    if (kept !== undefined) return kept;
    if (source.readAt(page, tx.frameOffsets.get(pgno)! + WAL_FRAME_HEADER_SIZE) !== page.length) {
      throw new Error(`${db.name}: WAL frame of page ${pgno} is short`);
    }
    return page;
  };
  for (const pgno of pgnos) overlay.setChecksum(pgno, checksumPage(pgno, readFrame(pgno)));
  // Pages cut off by a shrinking commit are absent from now on.
  for (let pgno = tx.commit + 1; pgno <= prevPageN; pgno++) if (!overlay.has(pgno)) overlay.set(pgno, 0, 0);
  const postApply = cache.databaseChecksum(tx.commit, overlay);
  const ltxHeader = nextTxHeader(db, {
    commit: tx.commit,
    walOffset: BigInt(db.wal.offset),
    walSize: BigInt(tx.endOffset - db.wal.offset),
    walSalt1: header.salt1,
    walSalt2: header.salt2,
  });
  let mode = db.mode;
  const pages: PageEmitter = (emit) => {
    for (const pgno of pgnos) {
      const data = readFrame(pgno);
      if (pgno === 1) mode = data[18] === 2 && data[19] === 2 ? 'wal' : 'rollback';
      emit(pgno, data);
    }
  };
  return { tx, header: ltxHeader, postApply, pages, overlay, prevPageN, mode: () => mode };
}
