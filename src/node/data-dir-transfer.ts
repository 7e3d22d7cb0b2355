/**
 * Export and import for the main thread without the FUSE thread's locks
 * (which it cannot take). Export sends a consistent image read from the
 * data directory (src/node/database-image.ts), one page per piece.
 *
 * Import validates the body as a SQLite database (ref §9.2) before anything
 * changes, writes it to `<data>/tmp/`, and has the FUSE thread (which owns
 * the store and its locks) apply it as one transaction (src/fs/commands.ts),
 * retrying while a SQLite transaction holds the database's locks.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ApiError } from '../http/api.js';
import { DATABASE_HEADER_SIZE, DATABASE_MAGIC, MAX_PAGE_SIZE, decodePageSize, isValidPageSize } from '../sqlite/index.js';
import { consistentImage } from './database-image.js';
import type { StoreChannel } from './store-channel.js';
import type { DatabaseTransfer } from './cluster-node.js';

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
  const image = await consistentImage(dir, signal, 'export');
  const pageSize = image.length >= DATABASE_HEADER_SIZE ? decodePageSize(image.readUInt16BE(16)) : image.length;
  // One piece per page: Go writes each page as its own chunk.
  for (let off = 0; off < image.length; off += pageSize) yield image.subarray(off, off + pageSize);
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
