/**
 * Commits of a replica writing under a HALT lock (ref §8.4): each must reach
 * the primary before SQLite is told it happened. The FUSE layer (src/fs/
 * halt-forwarding.ts) holds back the request that makes a transaction
 * durable for SQLite (the journal's finalize; in WAL mode the write that
 * completes the commit frame, before which SQLite has acknowledged nothing)
 * while the main thread sends the transaction's LTX file, staged here
 * (commit-journal.ts stageJournalCommit, commit-wal.ts stageWALCommit) with
 * a pinned header timestamp, so the commit that follows the primary's answer
 * writes the same bytes.
 *
 * In WAL mode the completing write itself waits: it is staged as if made
 * (withPendingWrite) and made only once the primary applied the transaction.
 * Refused, or the daemon killed meanwhile, the commit frame stays incomplete
 * on disk, so neither SQLite nor start-up counts the transaction committed.
 */
import { type PositionalReader, WAL_FRAME_HEADER_SIZE, WAL_HEADER_SIZE } from '../sqlite/index.js';
import type { DB } from './db.js';

/** A transaction's LTX file, written outside `ltx/` (in `<data>/tmp/`) to be sent to the primary. */
export interface StagedTx {
  readonly path: string;
  readonly txid: bigint;
  readonly postApply: bigint;
  /** WAL mode: where the transaction ends in the WAL. */
  readonly walEnd?: number;
}

/** A write to a file, not made yet. */
export interface PendingWrite {
  readonly data: Uint8Array;
  readonly offset: number;
}

/**
 * The offset of the frame a WAL write at `offset` would complete, when that
 * frame carries a commit (its header's database size is not 0); else null.
 * SQLite writes a frame's header and its page with two calls (and the
 * kernel may split the page's); the frame is complete once a write ends
 * where the frame ends. The header is read from `data` or, written
 * earlier, from the file.
 */
export function completedCommitFrame(db: DB, fd: number, data: Uint8Array, offset: number): number | null {
  if (db.pageSize === 0 || offset < WAL_HEADER_SIZE) return null;
  const frameSize = WAL_FRAME_HEADER_SIZE + db.pageSize;
  const end = offset + data.length;
  if ((end - WAL_HEADER_SIZE) % frameSize !== 0) return null;
  const frame = end - frameSize;
  const field = new Uint8Array(4);
  if (offset <= frame + 4) field.set(data.subarray(frame + 4 - offset, frame + 8 - offset));
  else if (db.io.read(fd, field, frame + 4) !== 4) return null;
  return (field[0]! | field[1]! | field[2]! | field[3]!) !== 0 ? frame : null;
}

/** `base` as it will read once `pending` is written. Writes to a WAL only append or overwrite, so no gap opens. */
export function withPendingWrite(base: PositionalReader, pending: PendingWrite): PositionalReader {
  const { data, offset } = pending;
  return {
    readAt(buf, at) {
      let n = base.readAt(buf, at);
      const start = Math.max(at, offset);
      const end = Math.min(at + buf.length, offset + data.length);
      if (start < end) {
        buf.set(data.subarray(start - offset, end - offset), start - at);
        n = Math.max(n, end - at);
      }
      return n;
    },
    size: () => Math.max(base.size(), offset + data.length),
  };
}
