/**
 * Writing one LTX file: encode into `<name>.tmp`, rename it to its final name
 * (ref §1, §15.1). After a process crash the final name holds either nothing
 * or the whole file; a leftover `.tmp` is garbage that start-up ignores.
 *
 * Durable files are fdatasync'ed before the rename and the folder is synced
 * after it. A file written with `durable: false` (a WAL commit, ARCHITECTURE
 * §7) is made durable later, in a group (DB.syncPendingLTX); until then a
 * power loss may leave it missing or torn, which start-up recovery expects.
 * Such a file, when it fits in memory, is encoded first and written under
 * its final name with one call: no `.tmp` name to create and rename away
 * (a quarter of a WAL commit's file work). A crash in that call can leave
 * it torn too, which start-up handles the same way (the WAL still holds the
 * transaction).
 */
import { join } from 'node:path';
import { type Header, LTXEncoder, formatFilename } from '../ltx/index.js';
import type { StoreIO } from './io.js';

/** Pages go through this: `emit(pgno, data)` in ascending pgno order. */
export type PageEmitter = (emit: (pgno: number, data: Uint8Array) => void) => void;

export interface WrittenLTX {
  readonly path: string;
  /** Bytes on disk. */
  readonly size: number;
  readonly pageCount: number;
  /** The file's bytes when it is at most KEEP_BYTES_MAX long (a copy the caller may keep), else null. */
  readonly bytes: Uint8Array | null;
}

/**
 * Files up to this size are encoded in memory and written with one call,
 * and their bytes handed back: the primary streams a new file to its
 * replicas from those instead of reading it back from disk.
 */
export const KEEP_BYTES_MAX = 1024 * 1024;

export function writeLTXFile(
  io: StoreIO,
  ltxDir: string,
  header: Header,
  postApplyChecksum: bigint,
  pages: PageEmitter,
  durable = true,
): WrittenLTX {
  const path = join(ltxDir, formatFilename(header.minTXID, header.maxTXID));
  const tmp = `${path}.tmp`;
  let fd = -1;
  const out = new SpillBuffer(io, () => (fd = io.open(tmp, 'replace')), KEEP_BYTES_MAX);
  let pageCount = 0;
  let bytes: Uint8Array | null;
  try {
    const enc = new LTXEncoder({ write: (chunk) => out.append(chunk) });
    enc.encodeHeader(header);
    pages((pgno, data) => {
      enc.encodePage(pgno, data);
      pageCount++;
    });
    enc.setPostApplyChecksum(postApplyChecksum);
    enc.close();
    bytes = out.bytes();
    if (bytes !== null && !durable) {
      writeWhole(io, path, bytes);
      return { path, size: out.size, pageCount, bytes };
    }
    if (bytes !== null) {
      fd = io.open(tmp, 'replace');
      io.write(fd, bytes, 0);
    }
    if (durable) io.fdatasync(fd);
  } catch (err) {
    if (fd >= 0) discard(io, fd, tmp);
    throw err;
  }
  io.close(fd);
  io.rename(tmp, path);
  // The rename is durable only once the folder is.
  if (durable) io.fsyncDir(ltxDir);
  return { path, size: out.size, pageCount, bytes };
}

/** `bytes` as the whole of the file at `path`, in one write. */
function writeWhole(io: StoreIO, path: string, bytes: Uint8Array): void {
  const fd = io.open(path, 'replace');
  try {
    io.write(fd, bytes, 0);
  } catch (err) {
    discard(io, fd, path);
    throw err;
  }
  io.close(fd);
}

/** Closes and removes a file that failed to be written. */
function discard(io: StoreIO, fd: number, path: string): void {
  io.close(fd);
  try {
    io.unlink(path);
  } catch {
    // A leftover `.tmp` is ignored by start-up, a torn final file set aside: the original error matters.
  }
}

/**
 * Collects a file's bytes in memory (the encoder's chunks may be views of
 * its scratch space, so they are copied) until they would pass `limit`;
 * from then on everything goes straight to the file, opened then.
 */
class SpillBuffer {
  private buf = takeInitialBuffer();
  private held = 0;
  private fd = -1;
  /** Bytes appended so far. */
  size = 0;

  constructor(
    private readonly io: StoreIO,
    private readonly openFile: () => number,
    private readonly limit: number,
  ) {}

  append(chunk: Uint8Array): void {
    if (this.fd < 0 && this.held + chunk.length > this.limit) {
      this.fd = this.openFile();
      this.io.write(this.fd, this.buf.subarray(0, this.held), 0);
      this.buf = new Uint8Array(0);
      this.held = 0;
    }
    if (this.fd >= 0) {
      this.io.write(this.fd, chunk, this.size);
    } else {
      if (this.held + chunk.length > this.buf.length) {
        const grown = new Uint8Array(Math.min(this.limit, Math.max(this.buf.length * 2, this.held + chunk.length)));
        grown.set(this.buf.subarray(0, this.held));
        this.buf = grown;
      }
      this.buf.set(chunk, this.held);
      this.held += chunk.length;
    }
    this.size += chunk.length;
  }

  /** The whole file's bytes, when it never spilled (nothing is written then); null once it did. */
  bytes(): Uint8Array | null {
    if (this.fd >= 0) return null;
    // Exactly the file: a view's whole buffer would travel with it in a message.
    const bytes = this.buf.slice(0, this.held);
    if (this.buf.length === INITIAL_BUFFER_SIZE) spareInitialBuffer = this.buf;
    return bytes;
  }
}

const INITIAL_BUFFER_SIZE = 16 * 1024;

/** The initial buffer of the last finished SpillBuffer on this thread: one allocation less per commit. */
let spareInitialBuffer: Uint8Array | null = null;

function takeInitialBuffer(): Uint8Array {
  const buf = spareInitialBuffer ?? new Uint8Array(INITIAL_BUFFER_SIZE);
  spareInitialBuffer = null;
  return buf;
}
