/**
 * Writing one LTX file: encode into `<name>.tmp`, rename it to its final name
 * (ref §1, §15.1). After a process crash the final name holds either nothing
 * or the whole file; a leftover `.tmp` is garbage that start-up ignores.
 *
 * Durable files are fdatasync'ed before the rename and the folder is synced
 * after it. A file written with `durable: false` (a WAL commit, ARCHITECTURE
 * §7) is made durable later, in a group (DB.syncPendingLTX); until then a
 * power loss may leave it missing or torn, which start-up recovery expects.
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
  const fd = io.open(tmp, 'replace');
  const out = new SpillBuffer(io, fd, KEEP_BYTES_MAX);
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
    bytes = out.finish();
    if (durable) io.fdatasync(fd);
  } catch (err) {
    io.close(fd);
    try {
      io.unlink(tmp);
    } catch {
      // The tmp file is ignored by start-up anyway; the original error matters.
    }
    throw err;
  }
  io.close(fd);
  io.rename(tmp, path);
  // The rename is durable only once the folder is.
  if (durable) io.fsyncDir(ltxDir);
  return { path, size: out.size, pageCount, bytes };
}

/**
 * Collects a file's bytes in memory (the encoder's chunks may be views of
 * its scratch space, so they are copied) until they would pass `limit`;
 * from then on everything goes straight to the file.
 */
class SpillBuffer {
  private buf = takeInitialBuffer();
  private held = 0;
  private spilled = false;
  /** Bytes appended so far. */
  size = 0;

  constructor(
    private readonly io: StoreIO,
    private readonly fd: number,
    private readonly limit: number,
  ) {}

  append(chunk: Uint8Array): void {
    if (!this.spilled && this.held + chunk.length > this.limit) {
      this.io.write(this.fd, this.buf.subarray(0, this.held), 0);
      this.spilled = true;
      this.buf = new Uint8Array(0);
      this.held = 0;
    }
    if (this.spilled) {
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

  /** Writes what is held; returns the whole file's bytes, or null once it spilled. */
  finish(): Uint8Array | null {
    if (this.spilled) return null;
    // Exactly the file: a view's whole buffer would travel with it in a message.
    const bytes = this.buf.slice(0, this.held);
    this.io.write(this.fd, bytes, 0);
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
