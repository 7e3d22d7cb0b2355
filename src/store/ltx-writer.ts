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
}

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
  return { path, size, pageCount };
}
