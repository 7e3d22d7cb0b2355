/**
 * Write fencing by lease deadline (ARCHITECTURE §3.2). The main thread's
 * lease loop knows until when this node may still write as primary and
 * sends that as `writeDeadline` (StatusCommand); the FUSE thread enforces it:
 *   - from `writeDeadline - FENCE_LEAD_MS` no new write transaction starts:
 *     exclusive grants of RESERVED (database file) and WAL WRITE (-shm) are
 *     refused with EAGAIN, so SQLite reports SQLITE_BUSY;
 *   - from `writeDeadline` no commit is acknowledged: the rollback-journal
 *     finalize and the WAL write of a commit frame fail with EIO.
 *
 * Times are ms on `performance.timeOrigin + performance.now()`: monotonic
 * within a thread and comparable across the threads of one process (both
 * measure from the same wall-clock origin), unlike Date.now(), which jumps
 * with the system clock.
 */
import { WAL_FRAME_HEADER_SIZE, WAL_HEADER_SIZE } from '../sqlite/index.js';

/**
 * How long before the deadline new write transactions are refused. A
 * transaction that got its lock just before this point has this long to
 * write its pages, build and fsync its LTX file and finalize: SQLite
 * transactions of an application are mostly a few ms, an fsync on a loaded
 * disk tens of ms. 200 ms covers that with margin while costing a primary
 * little write time per lease term (TTLs are seconds). A transaction that
 * still runs past the deadline is refused at its commit, never acknowledged.
 */
export const FENCE_LEAD_MS = 200;

/** The clock of `writeDeadline`: ms, monotonic, the same in every thread. */
export function fenceClock(): number {
  return performance.timeOrigin + performance.now();
}

/** When locks and commits stop being granted for a deadline (Infinity = never). */
export function fenceTimes(writeDeadline: number | null, leadMs: number = FENCE_LEAD_MS): { lockFenceAt: number; commitDeadline: number } {
  if (writeDeadline === null || !Number.isFinite(writeDeadline)) return { lockFenceAt: Infinity, commitDeadline: Infinity };
  return { lockFenceAt: writeDeadline - leadMs, commitDeadline: writeDeadline };
}

/** The node-wide fence; every database's locks and commits consult it. */
export class WriteFence {
  /** New RESERVED / WAL WRITE grants are refused from this time on. */
  private lockFenceAt = Infinity;
  /** Commits are refused from this time on. */
  private commitDeadline = Infinity;

  constructor(private readonly now: () => number = fenceClock) {}

  /** null: no deadline (a static primary, or a replica, where the role refuses writes anyway). */
  setDeadline(writeDeadline: number | null): void {
    const t = fenceTimes(writeDeadline);
    this.lockFenceAt = t.lockFenceAt;
    this.commitDeadline = t.commitDeadline;
  }

  /** True once new write transactions must not start. One compare when there is no deadline. */
  locksFenced(): boolean {
    return this.lockFenceAt !== Infinity && this.now() >= this.lockFenceAt;
  }

  /** True once no commit may be acknowledged. */
  commitsFenced(): boolean {
    return this.commitDeadline !== Infinity && this.now() >= this.commitDeadline;
  }

  get hasDeadline(): boolean {
    return this.commitDeadline !== Infinity;
  }
}

/**
 * True when a write of `data` at WAL `offset` sets a non-zero commit field
 * (frame header bytes 4..8, "database size after commit"): the frame that
 * makes a WAL transaction committed for SQLite. SQLite writes a frame header
 * in one write of its own or together with the page; a commit field split
 * over two writes does not occur and is not detected.
 */
export function writesCommitFrame(data: Uint8Array, offset: number, pageSize: number): boolean {
  if (offset < WAL_HEADER_SIZE || pageSize === 0) return false;
  const frameSize = WAL_FRAME_HEADER_SIZE + pageSize;
  const end = offset + data.length;
  // First frame whose commit field starts at or after `offset`.
  let frame = WAL_HEADER_SIZE + Math.max(0, Math.ceil((offset - WAL_HEADER_SIZE - 4) / frameSize)) * frameSize;
  for (; frame + 8 <= end; frame += frameSize) {
    const at = frame + 4 - offset;
    if ((data[at]! | data[at + 1]! | data[at + 2]! | data[at + 3]!) !== 0) return true;
  }
  return false;
}

/** A commit signal after the lease deadline: refused, SQLite sees EIO and the commit fails. */
export class CommitFencedError extends Error {
  constructor(
    readonly db: string,
    readonly kind: 'journal' | 'wal',
  ) {
    super(`${db}: lease deadline passed: commit not acknowledged`);
    this.name = 'CommitFencedError';
  }
}
