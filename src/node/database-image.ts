/**
 * A consistent image of one database, read by the main thread from the data
 * directory without the FUSE thread's locks (which it cannot take). Used by
 * /export and by replication snapshots.
 *
 * The read is optimistic: an image counts only if, across the copy, the
 * newest LTX file, the rollback journal's state and the WAL's size and
 * header stayed the same. A writer changes at least one of them for every
 * database write it makes: rollback writers start a journal before touching
 * the database file and commit by producing an LTX file; WAL writers only
 * append to the WAL (or restart it with a new header).
 *
 * The image is held in memory (bounded by the database's size).
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ApiError } from '../http/api.js';
import { DATABASE_HEADER_SIZE, bufferReader, decodePageSize, scanWal, WAL_FRAME_HEADER_SIZE } from '../sqlite/index.js';

/** Copies attempted before giving up on a database that never stops changing. */
export const IMAGE_ATTEMPTS = 100;
export const IMAGE_RETRY_MS = 10;

/** `<data>/dbs/<name>`. */
export function databaseDir(dataDir: string, name: string): string {
  return join(dataDir, 'dbs', name);
}

/**
 * One optimistic copy: the image, or undefined if a transaction was in
 * progress or the files changed while they were read.
 */
export function readConsistentImage(dir: string): Buffer | undefined {
  const before = fingerprint(dir);
  if (before === undefined) return undefined;
  const image = readImage(dir);
  return before === fingerprint(dir) ? image : undefined;
}

/** Retries `readConsistentImage` until it succeeds; `label` names the operation in errors. */
export async function consistentImage(dir: string, signal: AbortSignal, label: string): Promise<Buffer> {
  for (let attempt = 0; attempt < IMAGE_ATTEMPTS; attempt++) {
    if (signal.aborted) throw new ApiError(500, `${label} cancelled`);
    const image = readConsistentImage(dir);
    if (image !== undefined) return image;
    await retryDelay();
  }
  throw new ApiError(500, `${label}: database kept changing (or a transaction stayed open) during every copy attempt`);
}

export function retryDelay(ms = IMAGE_RETRY_MS): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Page size and page count of an image; undefined page size for an empty (deleted) database. */
export function imageGeometry(image: Buffer): { pageSize: number | undefined; pageCount: number } {
  if (image.length < DATABASE_HEADER_SIZE) return { pageSize: undefined, pageCount: 0 };
  const pageSize = decodePageSize(image.readUInt16BE(16));
  return { pageSize, pageCount: Math.floor(image.length / pageSize) };
}

/** What a writer changes; undefined while a rollback journal is active (a transaction is in progress). */
function fingerprint(dir: string): string | undefined {
  const journal = join(dir, 'journal');
  if (existsSync(journal)) {
    const head = readHead(journal, 8);
    if (head.some((b) => b !== 0)) return undefined;
  }
  let ltx = '';
  try {
    ltx = readdirSync(join(dir, 'ltx')).filter((n) => n.endsWith('.ltx')).sort().at(-1) ?? '';
  } catch {
    // No LTX directory yet: the database has never committed.
  }
  const walPath = join(dir, 'wal');
  const wal = existsSync(walPath) ? `${statSync(walPath).size}:${readHead(walPath, 32).toString('hex')}` : '';
  return `${ltx}|${wal}`;
}

/** The first `n` bytes (fewer if the file is shorter; none if it is gone). */
function readHead(path: string, n: number): Buffer {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return Buffer.alloc(0);
  }
  try {
    const buf = Buffer.alloc(n);
    return buf.subarray(0, readSync(fd, buf, 0, n, 0));
  } finally {
    closeSync(fd);
  }
}

/**
 * The database file with the WAL's committed frames laid over it, cut to the
 * committed size; empty if there is no database file (a deleted database).
 */
export function readImage(dir: string): Buffer {
  let db: Buffer;
  try {
    db = readFileSync(join(dir, 'database'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return Buffer.alloc(0);
    throw err;
  }
  if (db.length < DATABASE_HEADER_SIZE) return db;
  const pageSize = decodePageSize(db.readUInt16BE(16));
  let pageCount = db.readUInt32BE(28) || Math.floor(db.length / pageSize);
  const walPath = join(dir, 'wal');
  let overlay: { pgno: number; data: Buffer }[] = [];
  if (existsSync(walPath)) {
    const wal = readFileSync(walPath);
    try {
      const scan = scanWal(bufferReader(wal));
      if (scan.mxFrame > 0) {
        pageCount = scan.nPage;
        overlay = [...scan.frameOffsets].map(([pgno, off]) => ({
          pgno,
          data: wal.subarray(off + WAL_FRAME_HEADER_SIZE, off + WAL_FRAME_HEADER_SIZE + pageSize),
        }));
      }
    } catch {
      // No valid WAL header: SQLite treats the WAL as empty.
    }
  }
  const image = Buffer.alloc(pageCount * pageSize);
  db.copy(image, 0, 0, Math.min(db.length, image.length));
  for (const { pgno, data } of overlay) if (pgno <= pageCount) data.copy(image, (pgno - 1) * pageSize);
  return image;
}
