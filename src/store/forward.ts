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
 * A refused WAL transaction must leave no commit frame behind: start-up
 * would otherwise turn its frames into an LTX file this node alone has.
 */
import { WAL_FRAME_HEADER_SIZE, WAL_HEADER_SIZE } from '../sqlite/index.js';
import type { DB } from './db.js';

/** A transaction's LTX file, written outside `ltx/` (in `<data>/tmp/`) to be sent to the primary. */
export interface StagedTx {
  readonly path: string;
  readonly txid: bigint;
  readonly postApply: bigint;
  /** WAL mode: where the transaction ends in the WAL. */
  readonly walEnd?: number;
}

/**
 * The offset of the frame a WAL write at `offset` just completed, when that
 * frame carries a commit (its header's database size is not 0); else null.
 * SQLite writes a frame's header and its page with two calls; the frame is
 * complete once the write ends where the frame ends.
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

/**
 * Zeroes the header of the commit frame at `frame`: the WAL's frames end
 * before it for SQLite's recovery, ours and every reader, as if it had
 * never been written. SQLite itself rolls the transaction back once the
 * write that completed the frame fails.
 */
export function discardCommitFrame(db: DB, fd: number, frame: number): void {
  db.io.write(fd, new Uint8Array(WAL_FRAME_HEADER_SIZE), frame);
}
