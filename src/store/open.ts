/**
 * Opening a database at start-up or creation (ref §6.2), in the simplest
 * form that is still correct for a single node:
 *   1. read the database header (page size, mode);
 *   2. delete the wal-index (`shm`): SQLite rebuilds it;
 *   3. find and verify the last LTX file;
 *   4. trim the WAL to the last LTX (frames without an LTX file never
 *      happened for the rest of the cluster), set it aside if its salts differ;
 *   5. roll back a hot journal, checkpoint what is left of the WAL;
 *   6. load page checksums, re-apply the last LTX file (idempotent: repairs
 *      a crash between "LTX durable" and "journal finalized"), and check that
 *      the database checksum equals its post-apply checksum.
 * Full ARCHITECTURE §3.3 handling (forensic copies, re-basing) is later work:
 * a mismatch here is logged loudly and the position still comes from the LTX.
 */
import { join } from 'node:path';
import {
  type Header,
  LTXDecoder,
  type SyncReader,
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
  WalHeaderError,
  applyRollbackPlan,
  hasDatabaseMagic,
  parseDatabaseHeader,
  planRollback,
  readWalHeader,
  scanWal,
} from '../sqlite/index.js';
import { loadPageChecksums } from './checksum-cache.js';
import type { DB } from './db.js';
import { removeDatabaseFiles } from './drop.js';

export function openDB(db: DB): void {
  const io = db.io;
  io.mkdirp(db.ltxDir);
  readDatabaseHeader(db);
  if (io.exists(db.shmPath)) io.unlink(db.shmPath);
  const last = lastLTX(db);
  if (last !== null) syncWALToLTX(db, last.header);
  rollbackJournal(db);
  checkpointWAL(db);
  readDatabaseHeader(db);
  loadChecksums(db);
  if (last !== null) {
    applyLTX(db, last.path);
    db.pos = { txid: last.header.maxTXID, postApplyChecksum: last.postApply };
    db.timestamp = Number(last.header.timestamp);
    const actual = db.pageN === 0 ? null : db.cache().databaseChecksum(db.pageN);
    if (actual !== null && actual !== last.postApply) {
      db.ctx.log(
        `ERROR ${db.name}: database checksum ${formatHex16(actual)} on TXID ${formatHex16(last.header.maxTXID)} ` +
          `does not match LTX post-apply checksum ${formatHex16(last.postApply)} (${last.path})`,
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

/** ref §6.2 step 5: frames after the last LTX file's end are dropped; another WAL is set aside. */
function syncWALToLTX(db: DB, last: Header): void {
  const io = db.io;
  const size = io.sizeOf(db.walPath);
  if (size === null || size < 32) return;
  const fd = io.open(db.walPath, 'readWrite');
  let setAside = false;
  try {
    let salt1 = -1;
    let salt2 = -1;
    try {
      const h = readWalHeader(db.reader(fd));
      salt1 = h.salt1;
      salt2 = h.salt2;
    } catch (err) {
      if (!(err instanceof WalHeaderError)) throw err;
    }
    if (salt1 !== last.walSalt1 || salt2 !== last.walSalt2) {
      setAside = true;
    } else {
      const end = Number(last.walOffset + last.walSize);
      if (size < end) throw new Error(`${db.name}: WAL is ${size} bytes, shorter than the last LTX file says (${end})`);
      if (size > end) {
        io.truncate(fd, end);
        io.fsync(fd);
      }
    }
  } finally {
    io.close(fd);
  }
  if (setAside) {
    db.ctx.log(`${db.name}: WAL does not continue the last LTX file; moved to wal.removed`);
    io.rename(db.walPath, `${db.walPath}.removed`);
  }
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
function checkpointWAL(db: DB): void {
  const io = db.io;
  if (!io.exists(db.walPath) || !io.exists(db.databasePath)) return;
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
