/**
 * LTX retention (ref §6.13, ARCHITECTURE §3.8): a database's LTX files are
 * removed by age (mtime older than `retentionMs`) and by total size (oldest
 * first until the total is at most `retentionMaxBytes`). The newest file is
 * always kept: start-up recovery and the position need it.
 *
 * No timer can run on the FUSE thread (it blocks reading requests), so the
 * sweep runs lazily: after a commit, once at least the monitor interval has
 * passed since the database's last sweep, and once when the database opens.
 * A monitor interval <= 0 turns retention off (as LiteFS).
 */
import { join } from 'node:path';
import { parseFilename } from '../ltx/index.js';
import type { DB } from './db.js';
import { DEFAULT_RETENTION_MONITOR_INTERVAL_MS, DEFAULT_RETENTION_MS } from './messages.js';

export interface RetentionResult {
  /** Names of the files removed, oldest first. */
  readonly removed: string[];
  /** Files and bytes left. */
  readonly count: number;
  readonly bytes: number;
}

/** Sweeps now if the monitor interval has passed since this database's last sweep; never throws (logs). */
export function maybeEnforceRetention(db: DB): RetentionResult | null {
  const now = db.ctx.now();
  const interval = db.ctx.options.retentionMonitorIntervalMs ?? DEFAULT_RETENTION_MONITOR_INTERVAL_MS;
  // As LiteFS: a monitor interval <= 0 turns retention off.
  if (interval <= 0) return null;
  if (db.lastRetentionAt !== null && now - db.lastRetentionAt < interval) return null;
  db.lastRetentionAt = now;
  try {
    return enforceRetention(db, now);
  } catch (err) {
    // The commit that triggered the sweep is durable; a failed removal only means the files stay.
    db.ctx.log(`ERROR ${db.name}: LTX retention: ${err instanceof Error ? err.message : String(err)}`);
    return null;
  }
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
  // The newest file always stays, and on a replica every file whose pages
  // may not be synced yet (start-up applies them again, db.ts MAX_APPLY_GROUP).
  const keepNewest = 1 + db.unsyncedApplies;
  for (; i < files.length - keepNewest; i++) {
    const f = files[i]!;
    const tooOld = maxAge > 0 && f.mtime < now - maxAge;
    const overCap = maxBytes > 0 && bytes > maxBytes;
    // Files are removed oldest first, so the first one kept ends the sweep:
    // the chain left is always a contiguous tail.
    if (!tooOld && !overCap) break;
    io.unlink(join(db.ltxDir, f.name));
    bytes -= f.size;
    removed.push(f.name);
  }
  if (removed.length > 0) io.fsyncDir(db.ltxDir);
  return { removed, count: files.length - removed.length, bytes };
}
