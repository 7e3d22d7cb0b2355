/**
 * Commands the main thread sends to the FUSE thread (which owns the store).
 * Each runs synchronously between two FUSE requests, so nothing else touches
 * the database while it runs; the database's lock set still has to be free
 * (no SQLite transaction in progress), else the command answers `busy` and
 * the main thread retries.
 *
 * `import` (ref §6.10): replaces a database with a SQLite image as ONE LTX
 * transaction: invalidate a leftover journal, discard the WAL, write the LTX
 * file (page 1's change counter and schema cookie zeroed so open
 * connections reload), then the database file.
 */
import { closeSync, openSync, readSync, fstatSync } from 'node:fs';
import { checksumDatabase, lockPgno } from '../ltx/index.js';
import { nextTxHeader, publishCommit, verifyDatabaseChecksum } from '../store/commit-common.js';
import type { DB } from '../store/db.js';
import { newInternalOwner } from '../store/locks.js';
import type { StoreCommand, StoreCommandResult, StoreEvent } from '../store/messages.js';
import type { Store } from '../store/store.js';
import { FILE_KINDS } from './names.js';

/** Largest image the FUSE thread reads into memory (the main thread enforces the same bound). */
const MAX_IMAGE_BYTES = 1 << 30;

export function isStoreCommand(msg: unknown): msg is StoreCommand {
  if (typeof msg !== 'object' || msg === null) return false;
  const type = (msg as { type?: unknown }).type;
  return (
    type === 'import' ||
    type === 'apply' ||
    type === 'status' ||
    type === 'sync' ||
    type === 'groupSynced' ||
    type === 'txEvents' ||
    type === 'flushTx' ||
    type === 'txBarrier' ||
    type === 'backupHWM' ||
    type === 'haltLock' ||
    type === 'haltUnlock' ||
    type === 'haltHold' ||
    type === 'haltDrop' ||
    type === 'haltGranted' ||
    type === 'haltForwarded'
  );
}

/**
 * Runs a command and posts its result; anything but a StoreCommand is
 * ignored. `inodeBase(db)` is the first inode number of the database's files
 * if the kernel has looked them up (it may cache their pages), else undefined.
 */
export function handleCommand(
  store: Store,
  msg: unknown,
  post: (event: StoreEvent) => void,
  inodeBase: (db: string) => number | undefined,
): void {
  if (!isStoreCommand(msg) || msg.type !== 'import') return;
  let result: StoreCommandResult;
  try {
    if (importDatabase(store, msg.db, msg.path)) {
      const base = inodeBase(msg.db);
      // The journal too: its header was zeroed behind the kernel's cached copy.
      const inodes = base === undefined ? [] : (['database', 'journal', 'wal'] as const).map((kind) => base + FILE_KINDS.indexOf(kind));
      result = { type: 'commandResult', id: msg.id, status: 'ok', inodes };
    } else {
      result = { type: 'commandResult', id: msg.id, status: 'busy' };
    }
  } catch (err) {
    result = { type: 'commandResult', id: msg.id, status: 'error', message: err instanceof Error ? err.message : String(err) };
  }
  post(result);
}

/** False when a transaction holds the database's locks (try again later). */
function importDatabase(store: Store, name: string, imagePath: string): boolean {
  const image = readImage(imagePath);
  const existing = store.db(name);
  const db = existing !== undefined && existing.pageN > 0 ? existing : store.createDB(name);
  const owner = newInternalOwner();
  if (!db.locks.tryAcquireWriteSet(owner, db.mode)) return false;
  try {
    replaceWith(db, image);
  } finally {
    db.locks.releaseAll(owner);
  }
  return true;
}

function readImage(path: string): Buffer {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size > MAX_IMAGE_BYTES) throw new Error(`import image of ${size} bytes exceeds ${MAX_IMAGE_BYTES}`);
    const buf = Buffer.alloc(size);
    let done = 0;
    while (done < size) {
      const n = readSync(fd, buf, done, size - done, done);
      if (n === 0) throw new Error('import image shrank while read');
      done += n;
    }
    return buf;
  } finally {
    closeSync(fd);
  }
}

function replaceWith(db: DB, image: Buffer): void {
  const stored = image.readUInt16BE(16);
  const pageSize = stored === 1 ? 65536 : stored;
  const headerCount = image.readUInt32BE(28);
  const commit = headerCount === 0 ? image.length / pageSize : headerCount;
  db.setPageSize(pageSize); // the main thread validated the image; a page size change throws
  const io = db.io;
  // The WAL is discarded below: its transactions' LTX files must be durable first.
  db.syncPendingLTX();

  // A journal left over must never be rolled back over the imported pages.
  if (io.exists(db.journalPath)) {
    const fd = io.open(db.journalPath, 'readWrite');
    try {
      io.write(fd, new Uint8Array(28), 0);
      io.fsync(fd);
    } finally {
      io.close(fd);
    }
  }
  // WAL frames describe the old database: discarded, not checkpointed.
  if (io.exists(db.walPath)) {
    const fd = io.open(db.walPath, 'readWrite');
    try {
      io.truncate(fd, 0);
      io.fsync(fd);
    } finally {
      io.close(fd);
    }
    db.wal.header = null;
    db.resetWalPages();
  }

  const pages = image.subarray(0, commit * pageSize);
  // Open connections see a different change counter and schema cookie and reload.
  pages.fill(0, 24, 28);
  pages.fill(0, 40, 44);
  const page = (pgno: number): Buffer => pages.subarray((pgno - 1) * pageSize, pgno * pageSize);
  const lockPage = lockPgno(pageSize);
  const header = nextTxHeader(db, { pageSize, commit });
  const postApply = checksumDatabase(pageSize, commit, page);
  publishCommit(db, header, postApply, (emit) => {
    for (let pgno = 1; pgno <= commit; pgno++) if (pgno !== lockPage) emit(pgno, page(pgno));
  });

  // The LTX file is durable; now the database file.
  const fd = io.open(db.databasePath, 'readWrite');
  try {
    io.write(fd, pages, 0);
    io.truncate(fd, pages.length);
    io.fsync(fd);
  } finally {
    io.close(fd);
  }
  const cache = db.cache();
  for (let pgno = 1; pgno <= commit; pgno++) cache.computePage(pgno, page(pgno));
  cache.truncate(commit);
  db.dirty.clear();
  db.journalActive = false;
  db.mode = pages[18] === 2 && pages[19] === 2 ? 'wal' : 'rollback';
  if (db.ctx.options.strictVerify) verifyDatabaseChecksum(db);
}
