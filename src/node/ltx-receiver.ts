/**
 * Receives one streamed LTX file into `<data>/tmp/` without holding any
 * database lock (ARCHITECTURE §3.4; LiteFS held the write lock for the whole
 * network transfer): every byte is decoded as it arrives, so by the time
 * the body ends the file is fully verified (page block, LZ4 frame, file
 * checksum, a snapshot's post-apply checksum). It is left open and not yet
 * synced (`durability`): the replica client may first move it into the
 * database's `ltx/` folder, so that on a journaling file system one journal
 * commit carries the data and the rename; the fdatasync then runs while the
 * next file arrives. A
 * body that fails or stops early leaves no file behind.
 *
 * A stream's receiver (LTXReceiver) creates the next file while the
 * current one is handed on, so a transaction's latency does not include
 * creating a file (a thread-pool round trip and a directory update, about
 * a third of the receive time measured on a loaded machine).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fdatasync, fsync, open, openSync, write, writeSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { LTXDecoder, type Header, type Trailer } from '../ltx/index.js';

export interface ReceivedLTX {
  /** `<dir>/<name>.ltx`, written whole and verified. */
  readonly path: string;
  readonly header: Header;
  readonly trailer: Trailer;
  /** Bytes on disk. */
  readonly size: number;
  /** The file's descriptor, still open until it is synced or released. */
  readonly durability: FileDurability;
}

/** A received file's fdatasync, started when its owner says. */
export interface FileDurability {
  /** The file was renamed into `dir`: its sync also fsyncs that folder (the new name must be durable too). Before sync(). */
  movedInto(dir: string): void;
  /**
   * Starts the fdatasync (once; later calls return the same promise), then
   * closes the descriptor and fsyncs the folder it was moved into, if any.
   * Resolves once the file is durable.
   */
  sync(): Promise<void>;
  /** Closes the descriptor without a sync; nothing once `sync()` was called. */
  release(): void;
}

/** FileDurability of an open descriptor. */
class OpenFileDurability implements FileDurability {
  private syncing: Promise<void> | null = null;
  private closed = false;
  private folder: string | null = null;

  constructor(private readonly fd: number) {}

  movedInto(dir: string): void {
    if (this.syncing !== null) throw new Error('received file moved after its sync started');
    this.folder = dir;
  }

  sync(): Promise<void> {
    if (this.syncing !== null) return this.syncing;
    if (this.closed) throw new Error('received file already closed unsynced');
    this.syncing = this.syncNow();
    // Observed here too, so one nobody awaits (the stream dropped) is not an unhandled rejection.
    this.syncing.catch(() => {});
    return this.syncing;
  }

  private async syncNow(): Promise<void> {
    // The folder's fsync runs beside the file's: on a journaling file
    // system both wait for the same journal commit (the rename went in with
    // the data), one round trip; without a journal they still overlap.
    let dir: number | null = null;
    try {
      if (this.folder !== null) dir = openSync(this.folder, constants.O_RDONLY | constants.O_DIRECTORY);
    } catch (err) {
      closeSync(this.fd);
      throw err;
    }
    // Both settle before the descriptors close (a job still queued must not find them closed).
    const results = await Promise.allSettled([fdatasyncFile(this.fd), ...(dir === null ? [] : [fsyncFile(dir)])]);
    closeSync(this.fd);
    if (dir !== null) closeSync(dir);
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }

  release(): void {
    if (this.syncing !== null || this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}

export class LTXBodyError extends Error {
  override readonly name = 'LTXBodyError';
}

export interface ReceiveOptions {
  /** Called once the 100-byte header is decoded; throw to refuse the file before the rest arrives. */
  readonly onHeader?: (header: Header) => void;
  /** Called for every piece of the body (the stream is alive). */
  readonly onData?: () => void;
}

/**
 * Streams `body` into a new file in `dir` while decoding it. Resolves once
 * the whole file verified and is durable; rejects (and removes the file) on
 * a decode error, bytes after the trailer, a body that ends early, or
 * whatever the body's source throws.
 */
export async function receiveLTX(body: AsyncIterable<Buffer>, dir: string, options: ReceiveOptions = {}): Promise<ReceivedLTX> {
  const received = await receiveInto(await createFile(dir), body, options);
  try {
    await received.durability.sync();
  } catch (err) {
    await rm(received.path, { force: true });
    throw err;
  }
  return received;
}

/** An empty file in the receive folder, open for writing. */
interface OpenFile {
  readonly path: string;
  readonly fd: number;
}

const openFile = promisify(open);
const fdatasyncFile = promisify(fdatasync);
const fsyncFile = promisify(fsync);
const writeFile = async (fd: number, buf: Buffer, off: number, len: number, position: number): Promise<number> =>
  await new Promise((resolve, reject) => write(fd, buf, off, len, position, (err, n) => (err ? reject(err) : resolve(n))));

/**
 * Receives one stream's LTX files, one at a time, each into a file created
 * ahead of time. `close()` removes the spare file; call it when the stream ends.
 */
export class LTXReceiver {
  private spare: Promise<OpenFile> | undefined;
  private closed = false;

  constructor(private readonly dir: string) {}

  /** As receiveLTX, except that it resolves before the file is durable (`durability`). */
  async receive(body: AsyncIterable<Buffer>, options: ReceiveOptions = {}): Promise<ReceivedLTX> {
    if (this.closed) throw new Error('LTX receiver closed');
    const file = await (this.spare ?? createFile(this.dir));
    this.spare = undefined;
    try {
      return await receiveInto(file, body, options);
    } finally {
      if (!this.closed) this.prepare();
    }
  }

  /** Removes the spare file. */
  async close(): Promise<void> {
    this.closed = true;
    const spare = this.spare;
    this.spare = undefined;
    if (spare === undefined) return;
    let file: OpenFile;
    try {
      file = await spare;
    } catch {
      return;
    }
    closeSync(file.fd);
    await rm(file.path, { force: true });
  }

  private prepare(): void {
    const spare = createFile(this.dir);
    // A failure is reported by the receive that takes this file, not as an unhandled rejection.
    spare.catch(() => {});
    this.spare = spare;
  }
}

/**
 * Writes synchronously (see writeAll) and leaves the fdatasync to the
 * caller (`durability`): on a busy machine each thread-pool job costs the
 * main thread a context switch or two, more than a small write into the
 * page cache takes.
 */
async function receiveInto(file: OpenFile, body: AsyncIterable<Buffer>, options: ReceiveOptions): Promise<ReceivedLTX> {
  const { path, fd } = file;
  let summary: ReturnType<LTXDecoder['end']>;
  let size = 0;
  try {
    const dec = new LTXDecoder({ onHeader: options.onHeader });
    for await (const data of body) {
      options.onData?.();
      pushWhole(dec, data);
      await writeAll(fd, data, size);
      size += data.length;
    }
    summary = dec.end();
  } catch (err) {
    closeSync(fd);
    await rm(path, { force: true });
    throw err;
  }
  return { path, header: summary.header, trailer: summary.trailer, size, durability: new OpenFileDurability(fd) };
}

/**
 * File names: random per process, then counted (a random name per file cost
 * a getrandom call, ~30 µs on the main thread here). A name that exists
 * already (left by an earlier process) is skipped.
 */
const namePrefix = randomBytes(6).toString('hex');
let nameCount = 0;

function newFilePath(dir: string): string {
  return join(dir, `${namePrefix}-${(++nameCount).toString(16).padStart(6, '0')}.ltx`);
}

/** Creates a new file in `dir`, making `dir` only when it is missing (not a mkdir per file). */
async function createFile(dir: string): Promise<OpenFile> {
  for (let madeDir = false; ; ) {
    const path = newFilePath(dir);
    try {
      return { path, fd: await openFile(path, 'wx', 0o644) };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && !madeDir) {
        await mkdir(dir, { recursive: true });
        madeDir = true;
      } else if (code !== 'EEXIST') {
        throw err;
      }
    }
  }
}

/**
 * `dec.push`, except that bytes after the trailer are an error: the decoder
 * would ignore them, but a file with a tail is not the file the primary has.
 */
function pushWhole(dec: LTXDecoder, data: Buffer): void {
  let off = 0;
  while ((off < data.length || dec.hasPendingOutput()) && !dec.done) off += dec.step(data, off, data.length - off);
  if (off < data.length) throw new LTXBodyError('LTX body continues after its trailer');
}

/**
 * The first SYNC_WRITE_MAX bytes of a file are written synchronously (a
 * transaction's file, into the page cache); the rest of a large one (a
 * snapshot) through the thread pool, where the kernel's dirty-page
 * throttling cannot stall the event loop.
 */
const SYNC_WRITE_MAX = 1024 * 1024;

async function writeAll(fd: number, data: Buffer, position: number): Promise<void> {
  for (let off = 0; off < data.length; ) {
    const n = data.length - off;
    if (position + off + n <= SYNC_WRITE_MAX) off += writeSync(fd, data, off, n, position + off);
    else off += await writeFile(fd, data, off, n, position + off);
  }
}
