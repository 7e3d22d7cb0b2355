/**
 * Making a group durable (ARCHITECTURE §7): the LTX files of WAL commits
 * written without fsync, and the database pages of replica applies left
 * unsynced. The FUSE thread does it itself when something depends on it at
 * once (a checkpoint, a durable-at-once LTX file, a full group, unmount);
 * the once-a-second group sync runs on a separate thread
 * (src/node/group-syncer.ts) with `syncGroup` below, so the FUSE thread
 * never stalls for it (it took 2–20 ms a second there).
 */
import { isErrno, type StoreIO } from './io.js';
import type { GroupSyncJob } from './messages.js';

/** Groups up to this many files are fsynced file by file; larger ones with one syncfs. */
const FSYNC_EACH_MAX = 8;

/** Whether syncfs may be used; after one failure (logged) files are fsynced one by one. */
export class SyncfsState {
  failed = false;
  constructor(private readonly log: (line: string) => void) {}

  /** Tries one syncfs of the file system holding `path`; false when it is not (or no longer) available. */
  trySyncfs(io: StoreIO, path: string, what: string): boolean {
    if (this.failed) return false;
    try {
      io.syncFileSystem(path);
      return true;
    } catch (err) {
      this.failed = true;
      this.log(`${what}: syncfs of the data directory failed, syncing LTX files one by one from now on: ${err instanceof Error ? err.message : String(err)}`);
      return false;
    }
  }
}

/** What a group of LTX files needs synced, and in which order. */
export interface LTXGroup {
  /** The database (for log lines). */
  readonly db: string;
  /** The database's folder (holds the WAL's entry). */
  readonly dir: string;
  readonly walPath: string;
  readonly ltxDir: string;
  /** Oldest first. */
  readonly files: readonly string[];
}

/**
 * Makes LTX files of WAL commits durable. The WAL first: a durable LTX file
 * implies durable frames, so recovery never takes an older WAL for a newer
 * one. Files removed meanwhile (retention, a dropped database) are skipped.
 */
export function syncLTXGroup(io: StoreIO, group: LTXGroup, syncfs: SyncfsState): void {
  if (group.files.length === 0) return;
  if (group.files.length > FSYNC_EACH_MAX && syncfs.trySyncfs(io, group.ltxDir, group.db)) return;
  if (syncIfPresent(io, group.walPath)) {
    // A new WAL's own folder entry (SQLite syncs it only at its first WAL sync).
    fsyncDirIfPresent(io, group.dir);
  }
  for (const path of group.files) syncIfPresent(io, path);
  fsyncDirIfPresent(io, group.ltxDir);
}

/**
 * A background group sync (the syncer thread): the job's LTX files, then
 * the database file (pages of replica applies). Throws on an I/O error;
 * the FUSE thread then keeps the group waiting.
 */
export function syncGroup(io: StoreIO, job: GroupSyncJob, syncfs: SyncfsState): void {
  syncLTXGroup(io, job, syncfs);
  if (job.databasePath !== null) syncIfPresent(io, job.databasePath);
}

/** fdatasync of `path`; false when it does not exist. */
export function syncIfPresent(io: StoreIO, path: string): boolean {
  let fd: number;
  try {
    fd = io.open(path, 'read');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
  syncOpen(io, fd);
  return true;
}

/** fdatasync of `path`, which must exist. */
export function syncFile(io: StoreIO, path: string): void {
  syncOpen(io, io.open(path, 'read'));
}

function syncOpen(io: StoreIO, fd: number): void {
  try {
    io.fdatasync(fd);
  } finally {
    io.close(fd);
  }
}

function fsyncDirIfPresent(io: StoreIO, path: string): void {
  try {
    io.fsyncDir(path);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
}
