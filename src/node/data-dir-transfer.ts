/**
 * Export and import for the main thread. Export copies the database's image
 * to a spool file under the FUSE thread's read locks (src/node/image-spool.ts)
 * and sends it one page per piece.
 *
 * Import writes the body to `<data>/tmp/`, validates it as a SQLite database
 * (ref §9.2) before anything changes, and has the FUSE thread (which owns
 * the store and its locks) apply it as one transaction (src/fs/commands.ts),
 * retrying while a SQLite transaction holds the database's locks. Neither
 * holds a database in memory.
 */
import { existsSync } from 'node:fs';
import { mkdir, open, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ApiError } from '../http/api.js';
import { DATABASE_HEADER_SIZE, DATABASE_MAGIC, MAX_PAGE_SIZE, isValidPageSize } from '../sqlite/index.js';
import { spoolImage, type ImageLocks, type SpooledImage } from './image-spool.js';
import type { StoreChannel } from './store-channel.js';
import type { DatabaseTransfer } from './cluster-node.js';

/** How long an import waits for open SQLite transactions to end. */
const IMPORT_BUSY_TIMEOUT_MS = 30_000;
const IMPORT_RETRY_MS = 10;

export class DataDirTransfer implements DatabaseTransfer {
  /**
   * `channel` reaches the FUSE thread (without it imports are refused);
   * `invalidate` drops the kernel's cached pages of an inode; `images`
   * holds a database's read locks while an export copies it.
   */
  constructor(
    private readonly dataDir: string,
    private readonly channel?: StoreChannel,
    private readonly invalidate?: (inode: number) => Promise<void>,
    private readonly images?: ImageLocks,
  ) {}

  exportDatabase(name: string, signal: AbortSignal): AsyncIterable<Uint8Array> | undefined {
    const dir = join(this.dataDir, 'dbs', name);
    if (!isSafeName(name) || !existsSync(join(dir, 'database'))) return undefined;
    return this.exportPages(name, signal);
  }

  /** One piece per page: Go writes each page as its own chunk. */
  private async *exportPages(name: string, signal: AbortSignal): AsyncGenerator<Uint8Array> {
    if (this.images === undefined) throw new ApiError(500, 'export: not supported without the FUSE thread');
    let image: SpooledImage;
    try {
      image = await spoolImage(this.dataDir, name, this.images, signal);
    } catch (err) {
      throw new ApiError(500, `export: ${err instanceof Error ? err.message : String(err)}`);
    }
    try {
      yield* image.pages(signal);
    } finally {
      await image.close();
    }
  }

  async importDatabase(name: string, body: AsyncIterable<Uint8Array>, signal: AbortSignal): Promise<void> {
    if (!isSafeName(name)) throw new ApiError(400, `invalid database name: ${name}`);
    if (this.channel === undefined) throw new ApiError(500, 'import: not supported without the FUSE thread');
    const tmpDir = join(this.dataDir, 'tmp');
    await mkdir(tmpDir, { recursive: true });
    // The body goes to disk, not memory: a database may be larger than RAM.
    const path = join(tmpDir, `import-${randomBytes(8).toString('hex')}`);
    try {
      const { head, size } = await writeBodyDurably(body, path, signal);
      validateImport(head, size);
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
      await rm(path, { force: true });
    }
  }
}

/** Writes the body to `path` and fsyncs it; returns its first DATABASE_HEADER_SIZE bytes (fewer if shorter) and its size. */
async function writeBodyDurably(body: AsyncIterable<Uint8Array>, path: string, signal: AbortSignal): Promise<{ head: Buffer; size: number }> {
  const file = await open(path, 'w', 0o600);
  try {
    const head = Buffer.alloc(DATABASE_HEADER_SIZE);
    let size = 0;
    for await (const chunk of body) {
      if (signal.aborted) throw new ApiError(500, 'import cancelled');
      if (size < head.length) Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).copy(head, size);
      let done = 0;
      while (done < chunk.length) done += (await file.write(chunk, done, chunk.length - done, size + done)).bytesWritten;
      size += chunk.length;
    }
    await file.sync();
    return { head: head.subarray(0, Math.min(size, head.length)), size };
  } finally {
    await file.close();
  }
}

/** Database names are single path components (ARCHITECTURE §5). */
function isSafeName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0');
}

/**
 * The checks made before anything is replaced: SQLite magic, a valid page
 * size, a size that is a whole number of pages, and a header page count
 * (when set) that the body actually holds.
 */
export function validateImport(head: Buffer, size: number): { pageSize: number; pageCount: number } {
  if (head.length < DATABASE_HEADER_SIZE || !head.subarray(0, DATABASE_MAGIC.length).equals(DATABASE_MAGIC)) {
    throw new ApiError(400, 'invalid sqlite database: bad magic');
  }
  const stored = head.readUInt16BE(16);
  const pageSize = stored === 1 ? MAX_PAGE_SIZE : stored;
  if (!isValidPageSize(pageSize)) throw new ApiError(400, `invalid sqlite database: bad page size ${pageSize}`);
  if (size % pageSize !== 0) {
    throw new ApiError(400, `invalid sqlite database: size ${size} is not a multiple of the page size ${pageSize}`);
  }
  const fileCount = size / pageSize;
  const headerCount = head.readUInt32BE(28);
  if (headerCount > fileCount) {
    throw new ApiError(400, `invalid sqlite database: header page count ${headerCount} exceeds the ${fileCount} pages sent`);
  }
  return { pageSize, pageCount: headerCount === 0 ? fileCount : headerCount };
}
