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
import { DATABASE_HEADER_SIZE, decodePageSize } from '../sqlite/index.js';
import { checksumDatabase, lockPgno } from '../ltx/index.js';
import { nextTxHeader, publishCommit, verifyDatabaseChecksum } from '../store/commit-common.js';
import type { DB } from '../store/db.js';
import { newInternalOwner } from '../store/locks.js';
import type { StoreCommand, StoreCommandResult, StoreEvent } from '../store/messages.js';
import type { Store } from '../store/store.js';
import { FILE_KINDS } from './names.js';

/** Bytes of the image read at a time (its pages are read three times: checksum, LTX file, database file). */
const IMPORT_CHUNK_BYTES = 1 << 20;
/**
 * Above this size an import's LTX file is written without LZ4 whatever
 * `data.compress` says: LZ4 runs at about 72 MB/s here, on the FUSE thread
 * that serves every database, so compressing 1 GiB would stall them all for
 * some 15 s (uncompressed: about 4 s in all). LTX flags are per file.
 */
export const UNCOMPRESSED_IMPORT_BYTES = 64 << 20;

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
    type === 'haltForwarded' ||
    type === 'imageHold' ||
    type === 'imageRelease'
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
  const existing = store.db(name);
  const db = existing !== undefined && existing.pageN > 0 ? existing : store.createDB(name);
  const owner = newInternalOwner();
  if (!db.locks.tryAcquireWriteSet(owner, db.mode)) return false;
  const fd = openSync(imagePath, 'r');
  try {
    replaceWith(db, new ImportImage(fd));
  } finally {
    closeSync(fd);
    db.locks.releaseAll(owner);
  }
  return true;
}

/**
 * The validated image (src/node/data-dir-transfer.ts validateImport), read
 * a chunk at a time: a database may be larger than memory. Page 1 comes as
 * imported, with its change counter and schema cookie zeroed so open
 * connections reload.
 */
class ImportImage {
  readonly pageSize: number;
  /** Pages imported: the header's count, or the file's when the header has none. */
  readonly commit: number;
  readonly page1: Buffer;
  private readonly chunk: Buffer;
  private chunkFirst = 0;
  private chunkPages = 0;

  constructor(private readonly fd: number) {
    const head = Buffer.alloc(DATABASE_HEADER_SIZE);
    readFully(fd, head, 0);
    this.pageSize = decodePageSize(head.readUInt16BE(16));
    const headerCount = head.readUInt32BE(28);
    this.commit = headerCount === 0 ? fstatSync(fd).size / this.pageSize : headerCount;
    this.chunk = Buffer.alloc(Math.max(1, Math.floor(IMPORT_CHUNK_BYTES / this.pageSize)) * this.pageSize);
    this.page1 = Buffer.alloc(this.pageSize);
    readFully(fd, this.page1, 0);
    this.page1.fill(0, 24, 28);
    this.page1.fill(0, 40, 44);
  }

  /** Page `pgno`; valid until the next call (the buffer is reused). */
  page(pgno: number): Buffer {
    if (pgno === 1) return this.page1;
    if (pgno < this.chunkFirst || pgno >= this.chunkFirst + this.chunkPages) this.load(pgno);
    const at = (pgno - this.chunkFirst) * this.pageSize;
    return this.chunk.subarray(at, at + this.pageSize);
  }

  /** Pages `first`.. as one run of bytes (page 1 as imported), at most a chunk; valid until the next call. */
  run(first: number): Buffer {
    this.load(first);
    if (first === 1) this.page1.copy(this.chunk, 0);
    return this.chunk.subarray(0, this.chunkPages * this.pageSize);
  }

  private load(first: number): void {
    this.chunkFirst = first;
    this.chunkPages = Math.min(this.chunk.length / this.pageSize, this.commit - first + 1);
    readFully(this.fd, this.chunk.subarray(0, this.chunkPages * this.pageSize), (first - 1) * this.pageSize);
  }
}

function readFully(fd: number, buf: Buffer, position: number): void {
  for (let done = 0; done < buf.length; ) {
    const n = readSync(fd, buf, done, buf.length - done, position + done);
    if (n === 0) throw new Error('import image shrank while read');
    done += n;
  }
}

function replaceWith(db: DB, image: ImportImage): void {
  const { pageSize, commit } = image;
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

  const lockPage = lockPgno(pageSize);
  const header = nextTxHeader(db, { pageSize, commit, ...(commit * pageSize > UNCOMPRESSED_IMPORT_BYTES ? { flags: 0 } : {}) });
  const postApply = checksumDatabase(pageSize, commit, (pgno) => image.page(pgno));
  publishCommit(db, header, postApply, (emit) => {
    for (let pgno = 1; pgno <= commit; pgno++) if (pgno !== lockPage) emit(pgno, image.page(pgno));
  });

  // The LTX file is durable; now the database file.
  const cache = db.cache();
  const fd = io.open(db.databasePath, 'readWrite');
  try {
    for (let first = 1; first <= commit; ) {
      const run = image.run(first);
      io.write(fd, run, (first - 1) * pageSize);
      for (let i = 0; i * pageSize < run.length; i++) cache.computePage(first + i, run.subarray(i * pageSize, (i + 1) * pageSize));
      first += run.length / pageSize;
    }
    io.truncate(fd, commit * pageSize);
    io.fsync(fd);
  } finally {
    io.close(fd);
  }
  cache.truncate(commit);
  db.dirty.clear();
  db.journalActive = false;
  db.mode = image.page1[18] === 2 && image.page1[19] === 2 ? 'wal' : 'rollback';
  if (db.ctx.options.strictVerify) verifyDatabaseChecksum(db);
}
