/**
 * Writing one LTX file durably: encode into `<name>.tmp`, fsync it, rename it
 * to its final name, fsync the folder (ref §1, §15.1). After a crash the
 * final name holds either nothing or the whole, verified-by-checksum file;
 * a leftover `.tmp` is garbage that start-up ignores.
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
}

export function writeLTXFile(io: StoreIO, ltxDir: string, header: Header, postApplyChecksum: bigint, pages: PageEmitter): WrittenLTX {
  const path = join(ltxDir, formatFilename(header.minTXID, header.maxTXID));
  const tmp = `${path}.tmp`;
  const fd = io.open(tmp, 'replace');
  let size = 0;
  let pageCount = 0;
  try {
    const enc = new LTXEncoder({
      write(chunk) {
        io.write(fd, chunk, size);
        size += chunk.length;
      },
    });
    enc.encodeHeader(header);
    pages((pgno, data) => {
      enc.encodePage(pgno, data);
      pageCount++;
    });
    enc.setPostApplyChecksum(postApplyChecksum);
    enc.close();
    io.fsync(fd);
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
  io.fsyncDir(ltxDir);
  return { path, size, pageCount };
}
