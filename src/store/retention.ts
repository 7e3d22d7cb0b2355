/**
 * LTX retention (ref §6.13, ARCHITECTURE §3.8): a database's LTX files are
 * removed by age (mtime older than `retentionMs`) and by total size (oldest
 * first until the total is at most `retentionMaxBytes`). The newest file is
 * always kept: start-up recovery and the position need it. While this node
 * uploads backups, age keeps the files the backup lacks (DB.backupHWM).
 *
 * No timer can run on the FUSE thread (it blocks reading requests), so the
 * sweep runs lazily: after a commit, once at least the monitor interval has
 * passed since the database's last sweep, and once when the database opens.
 * A monitor interval <= 0 turns retention off (as LiteFS).
 *
 * A full sweep lists the folder and stats every file: at a thousand commits
 * a second and the default 10 minutes, 600,000 files, seconds of a stalled
 * FUSE thread every minute. So once a full sweep has found the oldest file
 * kept to be a single-transaction file `T-T`, later sweeps by age start
 * there and stat only the files they remove and the first they keep
 * (sweepOldestByAge). A cap on total bytes needs every size: full sweeps.
 * Such a sweep removes at most MAX_REMOVALS_PER_SWEEP files (each unlink
 * costs ~0.1 ms here); when it had more to remove, the next commit after
 * CATCH_UP_MS sweeps again, so a busy database's backlog goes in short
 * steps instead of one long stall.
 */
import { join } from 'node:path';
import { formatFilename, parseFilename } from '../ltx/index.js';
import type { DB } from './db.js';
import { DEFAULT_RETENTION_MONITOR_INTERVAL_MS, DEFAULT_RETENTION_MS } from './messages.js';

const MAX_REMOVALS_PER_SWEEP = 256;
const CATCH_UP_MS = 100;

export interface RetentionResult {
  /** Names of the files removed, oldest first. */
  readonly removed: string[];
  /** Files and bytes left. */
  readonly count: number;
  readonly bytes: number;
}

/**
 * Sweeps now if the monitor interval has passed since this database's last
 * sweep; returns the names removed (null: no sweep). Never throws (logs).
 */
export function maybeEnforceRetention(db: DB): readonly string[] | null {
  const now = db.ctx.now();
  const interval = db.ctx.options.retentionMonitorIntervalMs ?? DEFAULT_RETENTION_MONITOR_INTERVAL_MS;
  // As LiteFS: a monitor interval <= 0 turns retention off.
  if (interval <= 0) return null;
  if (db.lastRetentionAt !== null && now - db.lastRetentionAt < interval) return null;
  db.lastRetentionAt = now;
  try {
    const sweep = sweepOldestByAge(db, now);
    if (sweep === null) return enforceRetention(db, now).removed;
    // More may be due: the next commit after CATCH_UP_MS sweeps again.
    if (sweep.more) db.lastRetentionAt = now - interval + CATCH_UP_MS;
    return sweep.removed;
  } catch (err) {
    // The commit that triggered the sweep is durable; a failed removal only means the files stay.
    db.ctx.log(`ERROR ${db.name}: LTX retention: ${err instanceof Error ? err.message : String(err)}`);
    return null;
  }
}

/**
 * Files with a TXID above this must stay: the newest, and on a replica
 * every file whose pages may not be synced yet (start-up applies them
 * again, db.ts MAX_APPLY_GROUP).
 */
function keptNewest(db: DB): number {
  return 1 + db.unsyncedApplies;
}

/**
 * The sweep by age from the oldest file the last sweep kept, `T-T`
 * (db.retentionFrom): removes files in TXID order while they are older than
 * retention, stopping at the first that is not, at the newest kept, or
 * after MAX_REMOVALS_PER_SWEEP (then `more`); where
 * that file is not the next `T-T` (a snapshot, a gap), a full sweep does
 * the rest. Null when it cannot stand in for a full sweep: a cap on bytes
 * is set, no starting point is known, or `(T-1)-(T-1)` is there (something
 * older than T came back).
 */
function sweepOldestByAge(db: DB, now: number): { removed: string[]; more: boolean } | null {
  const maxAge = db.ctx.options.retentionMs ?? DEFAULT_RETENTION_MS;
  const maxBytes = db.ctx.options.retentionMaxBytes ?? 0;
  const from = db.retentionFrom;
  if (maxBytes > 0 || maxAge <= 0 || from === null) return null;
  const io = db.io;
  const path = (txid: bigint): string => join(db.ltxDir, formatFilename(txid, txid));
  if (from > 1n && io.exists(path(from - 1n))) return null;
  const removed: string[] = [];
  let more = false;
  let lastRemovable = db.pos.txid - BigInt(keptNewest(db));
  if (db.backupHWM !== null && db.backupHWM < lastRemovable) lastRemovable = db.backupHWM;
  let txid = from;
  for (; txid <= lastRemovable; txid++) {
    if (removed.length === MAX_REMOVALS_PER_SWEEP) {
      more = true;
      break;
    }
    const mtime = io.mtimeOf(path(txid));
    if (mtime === null) break;
    if (mtime >= now - maxAge) break;
    io.unlink(path(txid));
    removed.push(formatFilename(txid, txid));
  }
  if (removed.length > 0) io.fsyncDir(db.ltxDir);
  if (!io.exists(path(txid))) {
    // Not the chain expected from here on (a snapshot, a gap): the rest is a full sweep.
    return { removed: [...removed, ...enforceRetention(db, now).removed], more: false };
  }
  db.retentionFrom = txid;
  return { removed, more };
}

/** Removes every LTX file that retention no longer needs (the newest is always kept, and every file whose pages may be unsynced). */
export function enforceRetention(db: DB, now: number): RetentionResult {
  const io = db.io;
  const maxAge = db.ctx.options.retentionMs ?? DEFAULT_RETENTION_MS;
  const maxBytes = db.ctx.options.retentionMaxBytes ?? 0;
  const files: { name: string; maxTXID: bigint; size: number; mtime: number }[] = [];
  for (const name of io.readdir(db.ltxDir)) {
    let maxTXID: bigint;
    try {
      maxTXID = parseFilename(name).maxTXID;
    } catch {
      continue;
    }
    const path = join(db.ltxDir, name);
    const size = io.sizeOf(path);
    const mtime = io.mtimeOf(path);
    if (size === null || mtime === null) continue;
    files.push({ name, maxTXID, size, mtime });
  }
  // By TXID, not by name: a re-base snapshot `1-N` sorts first by name.
  files.sort((a, b) => (a.maxTXID < b.maxTXID ? -1 : a.maxTXID > b.maxTXID ? 1 : 0));
  let bytes = files.reduce((sum, f) => sum + f.size, 0);
  const removed: string[] = [];
  let i = 0;
  const keepNewest = keptNewest(db);
  for (; i < files.length - keepNewest; i++) {
    const f = files[i]!;
    // Age waits for the backup; the byte cap does not (a full disk would stop the node).
    const tooOld = maxAge > 0 && f.mtime < now - maxAge && (db.backupHWM === null || f.maxTXID <= db.backupHWM);
    const overCap = maxBytes > 0 && bytes > maxBytes;
    // Files are removed oldest first, so the first one kept ends the sweep:
    // the chain left is always a contiguous tail.
    if (!tooOld && !overCap) break;
    io.unlink(join(db.ltxDir, f.name));
    bytes -= f.size;
    removed.push(f.name);
  }
  if (removed.length > 0) io.fsyncDir(db.ltxDir);
  // Where the next sweep by age may start: the oldest file kept, if it holds one transaction.
  const oldest = files[i];
  db.retentionFrom = oldest !== undefined && isSingleTransaction(oldest.name, oldest.maxTXID) ? oldest.maxTXID : null;
  return { removed, count: files.length - removed.length, bytes };
}

function isSingleTransaction(name: string, txid: bigint): boolean {
  return name === formatFilename(txid, txid);
}
