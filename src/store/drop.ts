/**
 * Deleting a database (ref §6.11): unlink of `<db>` in the mount. The
 * deletion is a transaction of its own, an LTX file with commit 0 and no
 * pages, so replicas and backups learn of it and TXIDs keep counting if the
 * name is created again (the DB object and its LTX history stay).
 */
import { ChecksumFlag } from '../ltx/index.js';
import { WAL_HEADER_SIZE } from '../sqlite/index.js';
import { nextTxHeader, publishCommit } from './commit-common.js';
import type { DB } from './db.js';
import { InvalidWriteError } from './errors.js';

export function dropDB(db: DB): void {
  // The LTX header needs a valid page size: a database that never learned
  // one has nothing to delete for anybody else either.
  if (db.pageSize === 0) throw new InvalidWriteError(db.name, 'cannot drop a database that was never written');
  const header = nextTxHeader(db, { commit: 0 });
  // The checksum of an empty database is the bare flag.
  publishCommit(db, header, ChecksumFlag, () => {});
  removeDatabaseFiles(db);
}

/** Deletes the database and its side files durably and forgets their state (drop, or applying a commit-0 LTX). */
export function removeDatabaseFiles(db: DB): void {
  const io = db.io;
  for (const path of [db.databasePath, db.journalPath, db.walPath, db.shmPath]) if (io.exists(path)) io.unlink(path);
  io.fsyncDir(db.dir);
  db.pageN = 0;
  db.mode = 'rollback';
  db.dirty.clear();
  db.journalActive = false;
  db.wal.header = null;
  db.wal.offset = WAL_HEADER_SIZE;
  db.resetWalPages();
  // A database created again under this name may use another page size.
  db.pageSize = 0;
  db.checksums = null;
}
