/**
 * Opening a database at start-up or creation (ref §6.2), in the simplest
 * form that is still correct for a single node:
 *   1. read the database header (page size, mode);
 *   2. delete the wal-index (`shm`): SQLite rebuilds it;
 *   3. find and verify the last LTX file;
 *   4. roll back a hot journal;
 *   5. load page checksums, re-apply the last LTX file (idempotent: repairs
 *      a crash between "LTX durable" and "journal finalized");
 *   6. turn committed WAL transactions after the last LTX file into LTX
 *      files (see recoverWALTransactions: LiteFS trims them instead), then
 *      checkpoint the WAL into the database file;
 *   7. check that the database checksum equals the position's.
 * Full ARCHITECTURE §3.3 handling (forensic copies, re-basing) is later work:
 * a mismatch here is logged loudly and the position still comes from the LTX.
 */
import { join } from 'node:path';
import {
  type Header,
  LTXDecoder,
  type SyncReader,
  checksumPage,
  forEachChunk,
  formatHex16,
  lockPgno,
  parseFilename,
  verifyFileSync,
} from '../ltx/index.js';
import {
  DATABASE_HEADER_SIZE,
  JournalReader,
  WAL_FRAME_HEADER_SIZE,
  WAL_HEADER_SIZE,
  type WalHeader,
  WalHeaderError,
  WalReader,
  applyRollbackPlan,
  hasDatabaseMagic,
  parseDatabaseHeader,
  planRollback,
  readWalHeader,
  scanWal,
} from '../sqlite/index.js';
import { loadPageChecksums } from './checksum-cache.js';
import { commitWAL } from './commit-wal.js';
import type { DB } from './db.js';
import { removeDatabaseFiles } from './drop.js';

export function openDB(db: DB): void {
  const io = db.io;
  io.mkdirp(db.ltxDir);
  readDatabaseHeader(db);
  if (io.exists(db.shmPath)) io.unlink(db.shmPath);
  const last = lastLTX(db);
  rollbackJournal(db);
  readDatabaseHeader(db);
  loadChecksums(db);
  if (last !== null) {
    applyLTX(db, last.path);
    db.pos = { txid: last.header.maxTXID, postApplyChecksum: last.postApply };
    db.timestamp = Number(last.header.timestamp);
  }
  recoverWALTransactions(db, last?.header ?? null);
  if (checkpointWAL(db)) loadChecksums(db);
  if (last !== null && db.pageN > 0) {
    const actual = db.cache().databaseChecksum(db.pageN);
    if (actual !== db.pos.postApplyChecksum) {
      db.ctx.log(
        `ERROR ${db.name}: database checksum ${formatHex16(actual)} on TXID ${formatHex16(db.pos.txid)} ` +
          `does not match LTX post-apply checksum ${formatHex16(db.pos.postApplyChecksum)}`,
      );
    }
  }
  io.fsyncDir(db.dir);
}

/** Page size, page count and mode from the database file; nothing if it is empty or missing. */
function readDatabaseHeader(db: DB): void {
  const io = db.io;
  const size = io.sizeOf(db.databasePath);
  if (size === null || size === 0) return;
  const buf = new Uint8Array(DATABASE_HEADER_SIZE);
  const fd = io.open(db.databasePath, 'read');
  try {
    if (io.read(fd, buf, 0) < DATABASE_HEADER_SIZE || !hasDatabaseMagic(buf)) {
      // LiteFS deletes the whole database here; ARCHITECTURE §3.3 wants a forensic copy (later work).
      db.ctx.log(`ERROR ${db.name}: invalid database header in ${db.databasePath}; leaving it untouched`);
      return;
    }
  } finally {
    io.close(fd);
  }
  const h = parseDatabaseHeader(buf);
  db.setPageSize(h.pageSize);
  db.mode = h.mode;
  db.pageN = h.headerPageCount;
}

interface LastLTX {
  readonly path: string;
  readonly header: Header;
  readonly postApply: bigint;
}

/** The LTX file with the highest max TXID, fully verified. */
function lastLTX(db: DB): LastLTX | null {
  let best: { name: string; max: bigint } | null = null;
  for (const name of db.io.readdir(db.ltxDir)) {
    if (!name.endsWith('.ltx')) continue;
    let max: bigint;
    try {
      max = parseFilename(name).maxTXID;
    } catch {
      continue;
    }
    if (best === null || max > best.max) best = { name, max };
  }
  if (best === null) return null;
  const path = join(db.ltxDir, best.name);
  // A last file that does not verify stops the open, as in LiteFS; falling
  // back to the previous file (ARCHITECTURE §3.3) is later work.
  const fd = db.io.open(path, 'read');
  let summary: ReturnType<typeof verifyFileSync>;
  try {
    summary = verifyFileSync(sequentialReader(db, fd));
  } finally {
    db.io.close(fd);
  }
  return { path, header: summary.header, postApply: summary.trailer.postApplyChecksum };
}

/**
 * Committed WAL transactions that have no LTX file yet become LTX files now
 * (LiteFS trims them away instead, ref §6.2 step 5). SQLite treats a WAL
 * commit as done when it releases its WRITE lock, and ignores a failed
 * unlock: if the daemon died while writing that LTX file, the application
 * was told "committed" and ARCHITECTURE §7 promises the transaction
 * survives. The frames are in the WAL, valid by checksum, so they are the
 * transaction. (In a cluster a restarted node that is no longer primary
 * must not do this: later work, with the lease.)
 *
 * The WAL continues the last LTX file when its salts are the ones that file
 * recorded: the new transactions start at its end. Otherwise the WAL was
 * started after the last LTX file (SQLite restarts a WAL only once every
 * frame is in the database file) and all of it is new.
 */
function recoverWALTransactions(db: DB, last: Header | null): void {
  const io = db.io;
  const size = io.sizeOf(db.walPath);
  if (size === null || size < WAL_HEADER_SIZE || db.pageSize === 0) return;
  const fd = io.open(db.walPath, 'read');
  let recovered = 0;
  let setAside = false;
  try {
    let header: WalHeader;
    try {
      header = readWalHeader(db.reader(fd));
    } catch (err) {
      if (err instanceof WalHeaderError) return;
      throw err;
    }
    if (header.pageSize !== db.pageSize) return;
    const sameWAL = last !== null && last.walSalt1 === header.salt1 && last.walSalt2 === header.salt2;
    if (!sameWAL && db.mode !== 'wal') {
      // A WAL left behind by a switch back to a rollback journal: its frames
      // are older than the last LTX file. Kept for inspection, as LiteFS does.
      setAside = true;
      return;
    }
    const start = sameWAL ? Number(last.walOffset + last.walSize) : WAL_HEADER_SIZE;
    // Frames up to `start` already have LTX files but may not be in the
    // database file yet: they are the WAL overlay of the checksum cache.
    const reader = new WalReader(db.reader(fd), header);
    const latest = new Map<number, number>();
    const pending = new Map<number, number>();
    while (reader.offset < start) {
      const frame = reader.next();
      if (frame === null) {
        throw new Error(`${db.name}: WAL ends at ${reader.offset}, before the end of the last LTX file (${start})`);
      }
      pending.set(frame.pgno, frame.offset);
      if (frame.commit !== 0) {
        for (const [pgno, off] of pending) latest.set(pgno, off);
        pending.clear();
      }
    }
    const cache = db.cache();
    const page = new Uint8Array(db.pageSize);
    for (const [pgno, off] of latest) {
      if (pgno > db.pageN) continue;
      io.read(fd, page, off + WAL_FRAME_HEADER_SIZE);
      cache.wal.setChecksum(pgno, checksumPage(pgno, page));
      db.wal.frameOffsets.set(pgno, off);
    }
    db.wal.header = header;
    db.wal.offset = start;
    db.wal.checksum = reader.checksum;
  } finally {
    io.close(fd);
  }
  if (setAside) {
    db.ctx.log(`${db.name}: WAL does not continue the last LTX file of a rollback-mode database; moved to wal.removed`);
    io.rename(db.walPath, `${db.walPath}.removed`);
    return;
  }
  while (commitWAL(db)) recovered++;
  if (recovered > 0) db.ctx.log(`${db.name}: recovered ${recovered} committed WAL transaction(s) into LTX files`);
}

/** ref §6.2 step 6a: a journal left by a crash undoes its transaction's database writes. */
function rollbackJournal(db: DB): void {
  const io = db.io;
  if (!io.exists(db.journalPath)) return;
  const jfd = io.open(db.journalPath, 'read');
  try {
    const plan = planRollback(new JournalReader(db.reader(jfd), { databasePageSize: db.pageSize }));
    if (plan !== null && io.exists(db.databasePath)) {
      const dfd = io.open(db.databasePath, 'readWrite');
      try {
        applyRollbackPlan(plan, db.reader(jfd), {
          writeAt: (data, offset) => io.write(dfd, data, offset),
          truncate: (size) => io.truncate(dfd, size),
        });
        io.fsync(dfd);
      } finally {
        io.close(dfd);
      }
      db.ctx.log(`${db.name}: rolled back a hot journal (${plan.pages.size} pages)`);
    }
  } finally {
    io.close(jfd);
  }
  io.unlink(db.journalPath);
}

/** ref §6.2 step 6b: committed WAL frames go into the database file; the WAL is emptied. */
function checkpointWAL(db: DB): boolean {
  const io = db.io;
  if (!io.exists(db.walPath) || !io.exists(db.databasePath)) return false;
  const wfd = io.open(db.walPath, 'readWrite');
  try {
    let scan: ReturnType<typeof scanWal> | null = null;
    try {
      scan = scanWal(db.reader(wfd));
    } catch (err) {
      if (!(err instanceof WalHeaderError)) throw err;
    }
    if (scan !== null && scan.mxFrame > 0) {
      const pageSize = scan.header.pageSize;
      const page = new Uint8Array(pageSize);
      const dfd = io.open(db.databasePath, 'readWrite');
      try {
        for (const [pgno, off] of scan.frameOffsets) {
          if (pgno > scan.nPage) continue;
          io.read(wfd, page, off + WAL_FRAME_HEADER_SIZE);
          io.write(dfd, page, (pgno - 1) * pageSize);
        }
        io.truncate(dfd, scan.nPage * pageSize);
        io.fsync(dfd);
      } finally {
        io.close(dfd);
      }
    }
    io.truncate(wfd, 0);
    io.fsync(wfd);
  } finally {
    io.close(wfd);
  }
  db.resetWalPages();
  db.wal.header = null;
  return true;
}

function loadChecksums(db: DB): void {
  if (db.pageSize === 0) return;
  const fd = db.io.open(db.databasePath, 'read');
  try {
    const cache = db.cache();
    cache.reset(db.pageSize);
    // Every page the file holds, not only the header's count: after a crash
    // the header may be from another transaction than pages the last LTX
    // file leaves untouched.
    const filePages = Math.floor(db.io.fileSize(fd) / db.pageSize);
    loadPageChecksums(cache, Math.max(db.pageN, filePages), (pgno, into) => db.io.read(fd, into, (pgno - 1) * db.pageSize));
  } finally {
    db.io.close(fd);
  }
}

/**
 * Writes every page of an LTX file into the database file and truncates it
 * to the file's commit size (ref §6.6, the parts a single node needs). The
 * file was verified first, so no page is written from a file that fails.
 */
function applyLTX(db: DB, path: string): void {
  const io = db.io;
  if (isDeletion(db, path)) {
    removeDatabaseFiles(db);
    return;
  }
  const dfd = io.open(db.databasePath, 'create');
  try {
    let pageSize = 0;
    let commit = 0;
    const dec = new LTXDecoder({
      onHeader(h) {
        pageSize = h.pageSize;
        commit = h.commit;
        db.setPageSize(pageSize);
      },
      onPage(pgno, data) {
        io.write(dfd, data, (pgno - 1) * pageSize);
        db.cache().computePage(pgno, data);
      },
    });
    const fd = io.open(path, 'read');
    try {
      forEachChunk(sequentialReader(db, fd), (chunk) => dec.push(chunk));
    } finally {
      io.close(fd);
    }
    dec.end();
    if (commit > 0) {
      io.truncate(dfd, commit * pageSize);
      db.cache().truncate(commit);
      db.pageN = commit;
      if (lockPgno(pageSize) <= commit) db.ctx.log(`${db.name}: database spans the lock page`);
    }
    io.fsync(dfd);
  } finally {
    io.close(dfd);
  }
  readModeFromFile(db);
}

/** True for an LTX file with commit 0: the database was deleted. */
function isDeletion(db: DB, path: string): boolean {
  const fd = db.io.open(path, 'read');
  try {
    const header = new Uint8Array(16);
    if (db.io.read(fd, header, 0) < header.length) return false;
    return new DataView(header.buffer).getUint32(12) === 0;
  } finally {
    db.io.close(fd);
  }
}

function readModeFromFile(db: DB): void {
  const size = db.io.sizeOf(db.databasePath);
  if (size === null || size < DATABASE_HEADER_SIZE) return;
  const fd = db.io.open(db.databasePath, 'read');
  try {
    const buf = new Uint8Array(DATABASE_HEADER_SIZE);
    db.io.read(fd, buf, 0);
    if (hasDatabaseMagic(buf)) db.mode = parseDatabaseHeader(buf).mode;
  } finally {
    db.io.close(fd);
  }
}

/** Reads a file front to back through the store's I/O layer. */
function sequentialReader(db: DB, fd: number): SyncReader {
  let pos = 0;
  return {
    read(buf) {
      const n = db.io.read(fd, buf, pos);
      pos += n;
      return n;
    },
  };
}
