/**
 * A consistent image of one database for a snapshot or an export, copied by
 * the main thread from `<data>/dbs/<db>/` into a spool file in `<data>/tmp/`
 * while the FUSE thread holds the database's read lock set (ref §5.6;
 * src/fs/image-holds.ts). The hold lasts only for the local copy, not for
 * the network transfer that follows: in rollback mode SQLite writers wait
 * for it (as in LiteFS, where they waited for the whole transfer), in WAL
 * mode only checkpoints do. Memory stays bounded by one chunk whatever the
 * database's size; the spool needs as much disk as the database.
 *
 * The image is the database file with the WAL's committed frames laid over
 * it, cut to the committed size. Its checksum, computed while copying, must
 * equal the position's post-apply checksum, or nothing is sent.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Pos } from '../http/posmap.js';
import { ChecksumFlag, DatabaseChecksum, formatHex16, formatPos } from '../ltx/index.js';
import type { HeldImageFacts, StoreCommandResult } from '../store/messages.js';
import { WAL_FRAME_HEADER_SIZE } from '../sqlite/index.js';
import type { StoreChannel } from './store-channel.js';

/** Bytes copied (and later read back) per step: bounds the memory a copy needs. */
const CHUNK_BYTES = 1 << 20;
/** Pause between two hold attempts while transactions keep the locks. */
const HOLD_RETRY_MS = 5;
/**
 * How long one hold request may stay unanswered: the FUSE thread answers
 * within its own wait (src/fs/image-holds.ts HOLD_WAIT_MS) unless no FUSE
 * request comes at all (an idle transaction holding the locks).
 */
const HOLD_ANSWER_MS = 5_000;

/** A read lock set the FUSE thread holds for us, and what it captured. */
export interface HeldImage {
  readonly pos: Pos;
  readonly pageSize: number;
  readonly pageCount: number;
  readonly walFrames: ReadonlyMap<number, number>;
  /** Lets the FUSE thread release the locks. */
  release(): void;
}

export interface ImageLocks {
  /** Holds `db`'s read lock set; rejects for an unknown database, a hot journal, or once `signal` aborts. */
  hold(db: string, signal: AbortSignal): Promise<HeldImage>;
}

/** Holds taken through the FUSE thread's message port (`imageHold`, `imageRelease`). */
export class ChannelImageLocks implements ImageLocks {
  private nextHoldID = 1;

  constructor(
    private readonly channel: StoreChannel,
    private readonly answerTimeoutMs = HOLD_ANSWER_MS,
  ) {}

  async hold(db: string, signal: AbortSignal): Promise<HeldImage> {
    for (;;) {
      if (signal.aborted) throw new Error(`${db}: cancelled while waiting for its read locks`);
      const holdID = this.nextHoldID++;
      const answer = await this.ask(db, holdID, signal);
      if (answer === undefined || answer.status === 'busy') {
        await sleep(HOLD_RETRY_MS);
        continue;
      }
      if (answer.status === 'error') throw new Error(answer.message);
      if (answer.image === undefined) throw new Error(`${db}: the FUSE thread held no image`);
      const release = (): void => this.channel.tell({ type: 'imageRelease', db, holdID });
      return { ...fromFacts(answer.image), release };
    }
  }

  /** One request; undefined when it went unanswered (it is withdrawn: a late grant is released). */
  private async ask(db: string, holdID: number, signal: AbortSignal): Promise<StoreCommandResult | undefined> {
    const result = this.channel.request({ type: 'imageHold', db, holdID });
    let timer: NodeJS.Timeout | undefined;
    let onAbort = (): void => {};
    const giveUp = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), this.answerTimeoutMs);
      onAbort = () => resolve(undefined);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const answer = await Promise.race([result, giveUp]);
      if (answer === undefined) this.channel.tell({ type: 'imageRelease', db, holdID });
      return answer;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  }
}

function fromFacts(f: HeldImageFacts): Omit<HeldImage, 'release'> {
  return {
    pos: { txid: BigInt('0x' + f.txid), postApplyChecksum: BigInt('0x' + f.checksum) },
    pageSize: f.pageSize,
    pageCount: f.pageCount,
    walFrames: f.walFrames,
  };
}

/** The copied image: read it with `pages`, then `close` (which deletes the spool file). */
export class SpooledImage {
  constructor(
    readonly pos: Pos,
    /** 0 while unknown (a database without pages). */
    readonly pageSize: number,
    readonly pageCount: number,
    /** How long the read locks were held: the copy's duration. */
    readonly heldMs: number,
    private readonly file: FileHandle,
    private readonly path: string,
  ) {}

  /** Pages 1..pageCount in order, the lock page included; each a buffer of its own. */
  async *pages(signal: AbortSignal): AsyncGenerator<Uint8Array> {
    const pagesPerChunk = Math.max(1, Math.floor(CHUNK_BYTES / this.pageSize));
    for (let first = 1; first <= this.pageCount; first += pagesPerChunk) {
      if (signal.aborted) throw new Error('cancelled');
      const n = Math.min(pagesPerChunk, this.pageCount - first + 1);
      // A new buffer per chunk: the pieces may still be queued for a socket.
      const chunk = Buffer.allocUnsafe(n * this.pageSize);
      await readFully(this.file, chunk, (first - 1) * this.pageSize, 'spool');
      for (let i = 0; i < n; i++) yield chunk.subarray(i * this.pageSize, (i + 1) * this.pageSize);
    }
  }

  async close(): Promise<void> {
    await this.file.close().catch(() => undefined);
    await rm(this.path, { force: true });
  }
}

/**
 * Copies `name`'s image under a read hold into `<dataDir>/tmp/`. Throws if
 * the copy's checksum differs from the held position's (nothing is spooled
 * then) or `signal` aborts.
 */
export async function spoolImage(dataDir: string, name: string, locks: ImageLocks, signal: AbortSignal): Promise<SpooledImage> {
  const tmp = join(dataDir, 'tmp');
  await mkdir(tmp, { recursive: true });
  const path = join(tmp, `image-${randomBytes(8).toString('hex')}`);
  const held = await locks.hold(name, signal);
  const heldAt = performance.now();
  let file: FileHandle | undefined;
  try {
    let checksum: bigint;
    let heldMs: number;
    try {
      file = await open(path, 'w+', 0o600);
      checksum = await copyImage(join(dataDir, 'dbs', name), held, file, signal);
    } finally {
      held.release();
      heldMs = performance.now() - heldAt;
    }
    if (checksum !== held.pos.postApplyChecksum) {
      throw new Error(`snapshot checksum mismatch: image ${formatHex16(checksum)}, position ${formatPos(held.pos)}`);
    }
    return new SpooledImage(held.pos, held.pageSize, held.pageCount, heldMs, file, path);
  } catch (err) {
    await file?.close().catch(() => undefined);
    await rm(path, { force: true });
    throw err;
  }
}

/** Writes the held image into `out` and returns its database checksum. */
async function copyImage(dir: string, held: HeldImage, out: FileHandle, signal: AbortSignal): Promise<bigint> {
  const { pageSize, pageCount, walFrames } = held;
  if (pageCount === 0) return ChecksumFlag;
  const sum = new DatabaseChecksum(pageSize);
  const db = await open(join(dir, 'database'), 'r');
  let wal: FileHandle | undefined;
  try {
    if (walFrames.size > 0) wal = await open(join(dir, 'wal'), 'r');
    const pagesPerChunk = Math.max(1, Math.floor(CHUNK_BYTES / pageSize));
    const buf = Buffer.allocUnsafe(pagesPerChunk * pageSize);
    const frames = wal === undefined ? undefined : new WalPageReader(wal, pageSize, pagesPerChunk);
    for (let first = 1; first <= pageCount; first += pagesPerChunk) {
      if (signal.aborted) throw new Error('cancelled');
      const chunk = buf.subarray(0, Math.min(pagesPerChunk, pageCount - first + 1) * pageSize);
      const offset = (first - 1) * pageSize;
      // Pages past the file's end exist only in the WAL (or are zero, which the checksum then refuses).
      chunk.fill(0, await readUpTo(db, chunk, offset));
      await frames?.overlay(chunk, first, walFrames);
      for (let i = 0; i * pageSize < chunk.length; i++) sum.addPage(first + i, chunk.subarray(i * pageSize, (i + 1) * pageSize));
      let done = 0;
      while (done < chunk.length) done += (await out.write(chunk, done, chunk.length - done, offset + done)).bytesWritten;
    }
  } finally {
    await db.close();
    await wal?.close();
  }
  return sum.value;
}

/**
 * Lays the WAL's committed versions of a chunk's pages over it. Frames that
 * follow each other in the WAL (a freshly written database has thousands)
 * are read in one call.
 */
class WalPageReader {
  private readonly frameSize: number;
  private readonly run: Buffer;

  constructor(
    private readonly wal: FileHandle,
    private readonly pageSize: number,
    pagesPerChunk: number,
  ) {
    this.frameSize = WAL_FRAME_HEADER_SIZE + pageSize;
    this.run = Buffer.allocUnsafe(pagesPerChunk * this.frameSize);
  }

  /** `chunk` holds pages `first`.. of the database file; the ones in `walFrames` are replaced. */
  async overlay(chunk: Buffer, first: number, walFrames: ReadonlyMap<number, number>): Promise<void> {
    const wanted: { index: number; offset: number }[] = [];
    for (let index = 0; index * this.pageSize < chunk.length; index++) {
      const offset = walFrames.get(first + index);
      if (offset !== undefined) wanted.push({ index, offset });
    }
    wanted.sort((a, b) => a.offset - b.offset);
    for (let k = 0; k < wanted.length; ) {
      const start = wanted[k]!.offset;
      let n = 1;
      while (k + n < wanted.length && wanted[k + n]!.offset === start + n * this.frameSize) n++;
      const run = this.run.subarray(0, n * this.frameSize);
      await readFully(this.wal, run, start, 'WAL');
      for (let j = 0; j < n; j++) {
        const from = j * this.frameSize + WAL_FRAME_HEADER_SIZE;
        run.copy(chunk, wanted[k + j]!.index * this.pageSize, from, from + this.pageSize);
      }
      k += n;
    }
  }
}

/** Reads into `buf` from `position` until it is full or the file ends; returns the bytes read. */
async function readUpTo(file: FileHandle, buf: Uint8Array, position: number): Promise<number> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await file.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

async function readFully(file: FileHandle, buf: Uint8Array, position: number, what: string): Promise<void> {
  if ((await readUpTo(file, buf, position)) !== buf.length) throw new Error(`${what} ended before offset ${position + buf.length}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
