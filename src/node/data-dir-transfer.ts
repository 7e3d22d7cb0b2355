/**
 * Export and import for the main thread without the FUSE thread's locks
 * (which it cannot take). Export reads the data directory read-only and
 * validates optimistically: the image counts only if, across the copy, the
 * newest LTX file, the rollback journal's state and the WAL's size and
 * header stayed the same; otherwise it retries. A writer changes at least
 * one of them for every database write it makes: rollback writers start a
 * journal before touching the database file and commit by producing an LTX
 * file; WAL writers only append to the WAL.
 *
 * The image is held in memory while it is validated and sent (bounded by
 * the database's size).
 *
 * Import validates the body as a SQLite database (ref §9.2) before anything
 * changes, writes it to `<data>/tmp/`, and has the FUSE thread (which owns
 * the store and its locks) apply it as one transaction (src/fs/commands.ts),
 * retrying while a SQLite transaction holds the database's locks.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, rmSync, statSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ApiError } from '../http/api.js';
import {
  DATABASE_HEADER_SIZE,
  DATABASE_MAGIC,
  MAX_PAGE_SIZE,
  bufferReader,
  decodePageSize,
  isValidPageSize,
  scanWal,
  WAL_FRAME_HEADER_SIZE,
} from '../sqlite/index.js';
import type { StoreChannel } from './store-channel.js';
import type { DatabaseTransfer } from './static-node.js';

/** Copies attempted before an export gives up on a database that never stops changing. */
const EXPORT_ATTEMPTS = 100;
const EXPORT_RETRY_MS = 10;
/** Largest import body held in memory (the database is validated before anything is replaced). */
export const MAX_IMPORT_BYTES = 1 << 30;
/** How long an import waits for open SQLite transactions to end. */
const IMPORT_BUSY_TIMEOUT_MS = 30_000;
const IMPORT_RETRY_MS = 10;

export class DataDirTransfer implements DatabaseTransfer {
  /**
   * `channel` reaches the FUSE thread (without it imports are refused);
   * `invalidate` drops the kernel's cached pages of an inode.
   */
  constructor(
    private readonly dataDir: string,
    private readonly channel?: StoreChannel,
    private readonly invalidate?: (inode: number) => Promise<void>,
  ) {}

  exportDatabase(name: string, signal: AbortSignal): AsyncIterable<Uint8Array> | undefined {
    const dir = join(this.dataDir, 'dbs', name);
    if (!isSafeName(name) || !existsSync(join(dir, 'database'))) return undefined;
    return exportPages(dir, signal);
  }

  async importDatabase(name: string, body: AsyncIterable<Uint8Array>, signal: AbortSignal): Promise<void> {
    if (!isSafeName(name)) throw new ApiError(400, `invalid database name: ${name}`);
    const image = await readAll(body, MAX_IMPORT_BYTES, signal);
    validateImport(image);
    if (this.channel === undefined) throw new ApiError(500, 'import: not supported without the FUSE thread');
    const tmpDir = join(this.dataDir, 'tmp');
    mkdirSync(tmpDir, { recursive: true });
    const path = join(tmpDir, `import-${randomBytes(8).toString('hex')}`);
    writeDurably(path, image);
    try {
      const deadline = Date.now() + IMPORT_BUSY_TIMEOUT_MS;
      for (;;) {
        const result = await this.channel.request({ type: 'import', db: name, path });
        if (result.status === 'ok') {
          // Every page changed: readers must not be served the old ones from the kernel's cache.
          await Promise.all(result.inodes.map((ino) => this.invalidate?.(ino).catch(() => undefined)));
          return;
        }
        if (result.status === 'error') throw new ApiError(500, `import: ${result.message}`);
        if (Date.now() > deadline || signal.aborted) throw new ApiError(500, 'import: database stayed locked by a transaction');
        await new Promise((r) => setTimeout(r, IMPORT_RETRY_MS));
      }
    } finally {
      rmSync(path, { force: true });
    }
  }
}

function writeDurably(path: string, data: Uint8Array): void {
  const fd = openSync(path, 'w', 0o600);
  try {
    let done = 0;
    while (done < data.length) done += writeSync(fd, data, done, data.length - done);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Database names are single path components (ARCHITECTURE §5). */
function isSafeName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0');
}

async function* exportPages(dir: string, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  const image = await consistentImage(dir, signal);
  const pageSize = image.length >= DATABASE_HEADER_SIZE ? decodePageSize(image.readUInt16BE(16)) : image.length;
  // One piece per page: Go writes each page as its own chunk.
  for (let off = 0; off < image.length; off += pageSize) yield image.subarray(off, off + pageSize);
}

async function consistentImage(dir: string, signal: AbortSignal): Promise<Buffer> {
  for (let attempt = 0; attempt < EXPORT_ATTEMPTS; attempt++) {
    if (signal.aborted) throw new ApiError(500, 'export cancelled');
    const before = fingerprint(dir);
    if (before !== undefined) {
      const image = readImage(dir);
      if (before === fingerprint(dir)) return image;
    }
    await new Promise((r) => setTimeout(r, EXPORT_RETRY_MS));
  }
  throw new ApiError(500, 'export: database kept changing (or a transaction stayed open) during every copy attempt');
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

/** The database file with the WAL's committed frames laid over it, cut to the committed size. */
function readImage(dir: string): Buffer {
  const db = readFileSync(join(dir, 'database'));
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

async function readAll(body: AsyncIterable<Uint8Array>, limit: number, signal: AbortSignal): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    if (signal.aborted) throw new ApiError(500, 'import cancelled');
    size += chunk.length;
    if (size > limit) throw new ApiError(413, 'request body too large');
    parts.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  }
  return Buffer.concat(parts);
}

/**
 * The checks made before anything is replaced: SQLite magic, a valid page
 * size, a size that is a whole number of pages, and a header page count
 * (when set) that the body actually holds.
 */
export function validateImport(image: Buffer): { pageSize: number; pageCount: number } {
  if (image.length < DATABASE_HEADER_SIZE || !image.subarray(0, DATABASE_MAGIC.length).equals(DATABASE_MAGIC)) {
    throw new ApiError(400, 'invalid sqlite database: bad magic');
  }
  const stored = image.readUInt16BE(16);
  const pageSize = stored === 1 ? MAX_PAGE_SIZE : stored;
  if (!isValidPageSize(pageSize)) throw new ApiError(400, `invalid sqlite database: bad page size ${pageSize}`);
  if (image.length % pageSize !== 0) {
    throw new ApiError(400, `invalid sqlite database: size ${image.length} is not a multiple of the page size ${pageSize}`);
  }
  const fileCount = image.length / pageSize;
  const headerCount = image.readUInt32BE(28);
  if (headerCount > fileCount) {
    throw new ApiError(400, `invalid sqlite database: header page count ${headerCount} exceeds the ${fileCount} pages sent`);
  }
  return { pageSize, pageCount: headerCount === 0 ? fileCount : headerCount };
}
