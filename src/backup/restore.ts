/**
 * Point-in-time restore from a file backup: the database as it was at a
 * chosen TXID (or the last one committed at or before a time), rebuilt from
 * the newest snapshot at or before it and the incremental files after it.
 * The backup folder is only read; the result is written to a file, in
 * constant memory whatever the database's size.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { BufferedSink, type ByteSink, compact, decodeDatabaseTo, formatHex16, parseFilename, verifyFileSync } from '../ltx/index.js';
import { ltxNames } from './file.js';

export interface RestoreTarget {
  /** Restore exactly this TXID (a file of the backup must end there). */
  readonly txid?: bigint;
  /** Or: the newest TXID committed at or before this time (ms since the epoch). */
  readonly timestampMs?: number;
}

export interface Restored {
  readonly txid: bigint;
  readonly postApplyChecksum: bigint;
  /** When the restored TXID was committed (ms since the epoch, from its LTX header). */
  readonly timestampMs: number;
  /** The backup files it was made from, oldest first. */
  readonly files: readonly string[];
}

export class RestoreError extends Error {
  override readonly name = 'RestoreError';
}

interface BackupFile {
  readonly name: string;
  readonly minTXID: bigint;
  readonly maxTXID: bigint;
}

/**
 * Writes database `db` of the file backup at `root`, as it was at `target`
 * (default: the newest TXID), to `out` (a SQLite database file; replaced
 * only once complete and verified).
 */
export function restoreDatabase(root: string, db: string, target: RestoreTarget, out: string): Restored {
  const dir = join(root, db);
  const names = ltxNames(dir);
  if (names.length === 0) throw new RestoreError(`no backup of ${db} in ${root}`);
  const chain = planRestore(names, target, (name) => Number(verifyFileSync(join(dir, name)).header.timestamp)).map((name) => ({ name, ...parseFilename(name) }));
  const snapshot = `${out}.ltx.tmp`;
  const image = `${out}.tmp`;
  try {
    const { header } = writeFile(snapshot, (sink) =>
      compact(
        sink,
        chain.map((f) => join(dir, f.name)),
      ),
    );
    // decodeDatabaseTo verifies the whole snapshot, the database checksum included, before it returns.
    const summary = writeFile(image, (sink) => decodeDatabaseTo(snapshot, sink));
    renameSync(image, out);
    return { txid: header.maxTXID, postApplyChecksum: summary.trailer.postApplyChecksum, timestampMs: Number(header.timestamp), files: chain.map((f) => f.name) };
  } finally {
    rmSync(snapshot, { force: true });
    rmSync(image, { force: true });
  }
}

/** Runs `fill` with a sink into a new file at `path`, then fsyncs it. */
function writeFile<T>(path: string, fill: (sink: ByteSink) => T): T {
  const fd = openSync(path, 'w');
  try {
    const sink = new BufferedSink({ write: (chunk) => void writeSync(fd, chunk) });
    const result = fill(sink);
    sink.release();
    fsyncSync(fd);
    return result;
  } finally {
    closeSync(fd);
  }
}

/**
 * The backup files a restore to `target` reads, oldest first: the newest
 * snapshot at or before it and the files from there on. `timestampOf(name)`
 * (a file's commit time) is asked only for a target time. Pure: a remote
 * backup downloads just these.
 */
export function planRestore(names: readonly string[], target: RestoreTarget, timestampOf: (name: string) => number): string[] {
  const files: BackupFile[] = names.map((name) => ({ name, ...parseFilename(name) }));
  if (files.length === 0) throw new RestoreError('the backup holds no files of this database');
  return chainTo(files, pickEnd(files, target, timestampOf)).map((f) => f.name);
}

/** The file whose max TXID is the restore point. */
function pickEnd(files: readonly BackupFile[], target: RestoreTarget, timestampOf: (name: string) => number): BackupFile {
  if (target.txid !== undefined) {
    const end = files.find((f) => f.maxTXID === target.txid);
    if (end === undefined) {
      const ends = files.map((f) => formatHex16(f.maxTXID));
      throw new RestoreError(`no backup file ends at TXID ${formatHex16(target.txid)} (files end at ${summarize(ends)})`);
    }
    return end;
  }
  if (target.timestampMs !== undefined) {
    // Newest first: the first file committed at or before the time is the point.
    for (const f of [...files].sort((a, b) => (a.maxTXID < b.maxTXID ? 1 : -1))) {
      if (timestampOf(f.name) <= target.timestampMs) return f;
    }
    throw new RestoreError(`the backup holds nothing committed at or before ${new Date(target.timestampMs).toISOString()}`);
  }
  return files.reduce((a, b) => (b.maxTXID > a.maxTXID ? b : a));
}

/** The newest snapshot at or before `end` and the contiguous files from it to `end`. */
function chainTo(files: readonly BackupFile[], end: BackupFile): BackupFile[] {
  const byMin = new Map<bigint, BackupFile>();
  for (const f of files) if (f.maxTXID <= end.maxTXID && f.minTXID !== 1n) byMin.set(f.minTXID, f);
  const snapshots = files.filter((f) => f.minTXID === 1n && f.maxTXID <= end.maxTXID).sort((a, b) => (a.maxTXID < b.maxTXID ? 1 : -1));
  // Try the newest snapshot first; an older one serves if the files after the newest do not reach `end`.
  for (const snapshot of snapshots) {
    const chain = [snapshot];
    let at = snapshot.maxTXID;
    while (at < end.maxTXID) {
      const next = byMin.get(at + 1n);
      if (next === undefined) break;
      chain.push(next);
      at = next.maxTXID;
    }
    if (at === end.maxTXID) return chain;
  }
  throw new RestoreError(`no snapshot with a contiguous chain of files up to TXID ${formatHex16(end.maxTXID)} in the backup`);
}

function summarize(items: readonly string[]): string {
  return items.length <= 6 ? items.join(', ') : `${items.slice(0, 3).join(', ')} … ${items.slice(-3).join(', ')}`;
}
