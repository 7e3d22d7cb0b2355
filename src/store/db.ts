/**
 * One database's state (ref §6.1) and the writes that change it. The events
 * that commit a transaction live beside it, one file each: commit-journal.ts
 * (rollback journal), commit-wal.ts (WAL), open.ts (start-up recovery).
 *
 * Every method runs on the FUSE thread, one at a time, with synchronous I/O
 * on the data directory (never on the mount).
 */
import { join } from 'node:path';
import { type Pos, ZERO_POS, formatPos } from '../ltx/index.js';
import {
  DATABASE_HEADER_SIZE,
  JOURNAL_HEADER_FIELDS_SIZE,
  type JournalMode,
  WAL_HEADER_SIZE,
  type WalChecksum,
  type WalHeader,
  hasDatabaseMagic,
  isValidPageSize,
  parseDatabaseHeader,
  parseWalHeader,
  type PositionalReader,
} from '../sqlite/index.js';
import { ChecksumCache } from './checksum-cache.js';
import { InvalidWriteError } from './errors.js';
import { CommitFencedError, type WriteFence, writesCommitFrame } from './fence.js';
import type { StoreIO } from './io.js';
import { DatabaseLocks, Lock } from './locks.js';
import { type LTXGroup, SyncfsState, syncFile, syncIfPresent, syncLTXGroup } from './group-sync.js';
import type { GroupSyncJob, StoreEvent, StoreOptions } from './messages.js';

/**
 * WAL commits write their LTX files without fsync (ARCHITECTURE §7); at most
 * this many wait for a group sync. Start-up recovery checks that many of the
 * newest files for a broken chain, so the two must agree.
 */
export const MAX_PENDING_LTX = 1024;

/**
 * A replica fsyncs its database file once per group of applies: at most
 * this many in a row, and (the `sync` command) within a second. Start-up
 * applies the newest this-many LTX files again (open.ts), which repairs
 * pages a power loss took from the group: a few milliseconds for small
 * files. Large enough that at a few hundred commits a second the second,
 * not the count, ends a group (every database fsync stalls the FUSE thread).
 */
export const MAX_APPLY_GROUP = 256;

/**
 * An empty file in `ltx/` (not an LTX name: every reader skips it) made
 * before the first unsynced apply of a group and durable with that apply's
 * folder fsync. Only when it is there does start-up apply the newest group
 * again: otherwise a database page changed behind LiteFS's back must stay
 * as evidence (the re-base path), not be overwritten from LTX files.
 */
export const APPLY_GROUP_MARKER = '.apply-group';

/**
 * The replica client places a received incremental LTX file in `ltx/` under
 * its name plus this suffix and makes it durable there (fdatasync, folder
 * fsync: one journal commit carries the data and the rename, off the FUSE
 * thread); the apply only drops the suffix. Start-up keeps such a file when
 * it verifies and continues the chain (it may have been applied in part:
 * open.ts applies the group again) and sets aside any other. No reader of
 * `ltx/` takes it for an LTX file.
 */
export const RECEIVED_SUFFIX = '.received';

/** `<data>/dbs/<name>`: a database's folder (its LTX files in `ltx/` inside). */
export function databaseDir(dataDir: string, name: string): string {
  return join(dataDir, 'dbs', name);
}

/** True for a name that is one plain file name (what a database name must be: it names a folder under `dbs/`). */
export function isValidDatabaseName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0') && Buffer.byteLength(name) <= 255;
}

/** What a DB needs from its store. */
export interface StoreContext {
  readonly io: StoreIO;
  readonly options: StoreOptions;
  /** Node id as a number for LTX headers. */
  readonly nodeId: bigint;
  post(event: StoreEvent): void;
  log(line: string): void;
  /** Milliseconds since the epoch; injectable so retention can be tested with a fake clock. */
  now(): number;
  /** The lease deadline fence (fence.ts); absent: never fenced. */
  readonly fence?: WriteFence;
}

/** What LiteFS tracks of the current WAL (ref §6.1 "WAL tracking"). */
export interface WalState {
  /** Parsed header of the current WAL; null before the first header write. */
  header: WalHeader | null;
  /** Offset where the next uncommitted transaction starts (end of the last one turned into LTX). */
  offset: number;
  /** Running checksum at `offset`. */
  checksum: WalChecksum;
  /** pgno → offset of the frame holding the page's latest committed version. */
  readonly frameOffsets: Map<number, number>;
}

export class DB {
  readonly dir: string;
  readonly databasePath: string;
  readonly journalPath: string;
  readonly walPath: string;
  readonly shmPath: string;
  readonly ltxDir: string;
  /** Present while replica applies have left database pages unsynced (see MAX_APPLY_GROUP). */
  readonly applyGroupPath: string;

  /** 0 until learned from the header, a journal header or an LTX file. */
  pageSize = 0;
  /** Database size in pages as of the last commit. */
  pageN = 0;
  mode: JournalMode = 'rollback';
  pos: Pos = ZERO_POS;
  /** Milliseconds since the epoch of the last LTX file (0 if none). */
  timestamp = 0;
  /** Pages written to the database file since the last rollback-journal commit. */
  readonly dirty = new Set<number>();
  /** True between a write to the journal and its commit: DB writes then belong to a rollback transaction. */
  journalActive = false;
  checksums: ChecksumCache | null = null;
  /** ctx.now() of the last retention sweep; null before the first. */
  lastRetentionAt: number | null = null;
  /** TXID of the oldest LTX file the last retention sweep kept, a `T-T` file; null: unknown (retention.ts). */
  retentionFrom: bigint | null = null;
  /**
   * While this node uploads backups: the TXID up to which the backup holds
   * this database (its high-water mark). Retention by age keeps every file
   * above it, so uploads go on from where they stopped. null: no constraint.
   */
  backupHWM: bigint | null = null;
  /**
   * The timestamp of the next LTX header, when set. A transaction forwarded
   * to the primary under a HALT lock is encoded twice, once to send and once
   * to commit (store/forward.ts); the two must be the same bytes.
   */
  pinnedTimestamp: bigint | null = null;
  /** Why the last write was refused; a repeat of the same refusal is not logged again. */
  lastRefusal: string | null = null;
  /** LTX files of WAL commits written without fsync, oldest first (syncPendingLTX makes them durable). */
  readonly pendingLTX: string[] = [];
  /** The database file was written since its last fsync (ours or the application's). */
  databaseUnsynced = false;
  /**
   * A file of this database was created or removed through the mount since
   * the folder's last fsync by the application (Store.syncDatabaseDirs).
   */
  entriesUnsynced = false;
  /** Replica applies since the database file's last fsync (see MAX_APPLY_GROUP). */
  unsyncedApplies = 0;
  /**
   * The group handed to the syncer thread (takeGroupSync) and not reported
   * done yet. Until then its files and applies still count as waiting: a
   * sync on this thread covers them too, and a report of a group that such
   * a sync already covered changes nothing.
   */
  private inFlight: { gen: number; ltx: string[]; applies: number } | null = null;
  private lastGen = 0;
  /** A `sync` found a group in flight: take the rest when it is done. */
  private syncWanted = false;
  private readonly syncfs: SyncfsState;
  readonly locks: DatabaseLocks;
  readonly wal: WalState = { header: null, offset: WAL_HEADER_SIZE, checksum: [0, 0], frameOffsets: new Map() };

  constructor(
    readonly name: string,
    readonly ctx: StoreContext,
  ) {
    this.dir = databaseDir(ctx.options.dataDir, name);
    this.databasePath = join(this.dir, 'database');
    this.journalPath = join(this.dir, 'journal');
    this.walPath = join(this.dir, 'wal');
    this.shmPath = join(this.dir, 'shm');
    this.ltxDir = join(this.dir, 'ltx');
    this.applyGroupPath = join(this.ltxDir, APPLY_GROUP_MARKER);
    this.locks = new DatabaseLocks(ctx.fence ?? null);
    this.syncfs = new SyncfsState(ctx.log);
  }

  get io(): StoreIO {
    return this.ctx.io;
  }

  /** `%016x/%016x\n`, the contents of `<db>-pos`. */
  posText(): string {
    return `${formatPos(this.pos)}\n`;
  }

  /** Adopts a page size (first header seen); the checksum cache starts empty. */
  setPageSize(pageSize: number): void {
    if (this.pageSize === pageSize) return;
    if (this.pageSize !== 0) throw new InvalidWriteError(this.name, `page size change from ${this.pageSize} to ${pageSize} is not supported`);
    this.pageSize = pageSize;
    this.checksums = new ChecksumCache(pageSize, this.name);
  }

  /**
   * A snapshot LTX file replaces the whole database, so it may bring another
   * page size (ref §15.5 only forbids that for incremental files): every
   * cached checksum is dropped.
   */
  resetPageSize(pageSize: number): void {
    if (this.pageSize === pageSize && this.checksums !== null) return;
    this.pageSize = pageSize;
    this.checksums = new ChecksumCache(pageSize, this.name);
  }

  /** The checksum cache; only valid once the page size is known. */
  cache(): ChecksumCache {
    if (this.checksums === null) throw new InvalidWriteError(this.name, 'page size not known yet');
    return this.checksums;
  }

  /**
   * A write to the database file (ref §6.3 WriteDatabaseAt): exactly one
   * aligned page; the first one must carry a SQLite header (it tells the
   * page size). Updates the page's checksum and, inside a rollback
   * transaction, the dirty set. In WAL mode these are checkpoint writes.
   */
  writeDatabase(fd: number, data: Uint8Array, offset: number): void {
    if (this.pageSize === 0) {
      if (offset !== 0) this.refuse(`first write at offset ${offset}: a database starts with a SQLite header at offset 0 (not a SQLite database?)`);
      if (data.length < DATABASE_HEADER_SIZE || !hasDatabaseMagic(data)) {
        this.refuse('first write is not a SQLite database header (only SQLite databases can be stored here)');
      }
      this.setPageSize(parseDatabaseHeader(data).pageSize);
    }
    if (data.length !== this.pageSize || offset % this.pageSize !== 0) {
      this.refuse(`database write of ${data.length} bytes at ${offset} is not one page of ${this.pageSize}`);
    }
    // A rollback-mode database changes only inside a journal transaction
    // (the journal's finalize is the commit signal). journal_mode=MEMORY or
    // OFF writes the file with no journal at all: no commit would ever be
    // seen and the change would never reach an LTX file, so refuse it.
    if (this.mode === 'rollback' && !this.journalActive) {
      this.refuse('database write without a rollback journal or WAL (journal_mode=MEMORY/OFF are not supported): refused');
    }
    this.lastRefusal = null;
    // In WAL mode this is a checkpoint: the frames' LTX files first.
    this.syncPendingLTX();
    const pgno = offset / this.pageSize + 1;
    this.databaseUnsynced = true;
    this.io.write(fd, data, offset);
    this.cache().computePage(pgno, data);
    // Tracked whenever a journal is in use, not only in rollback mode, so
    // the WAL → rollback switch (ref §15.4) carries its page 1.
    if (this.mode === 'rollback' || this.journalActive) this.dirty.add(pgno);
  }

  /**
   * Makes the pending LTX files of WAL commits durable. Runs before anything
   * that would leave those files as the only record of their transactions:
   * a checkpoint writing the database file, a WAL restart, truncate or
   * removal, any durable LTX file (the chain must never have a hole), and
   * when MAX_PENDING_LTX are waiting. The WAL is synced before the files: a
   * durable LTX file implies durable frames, so recovery never takes an
   * older WAL for a newer one.
   */
  syncPendingLTX(): void {
    const inFlight = this.inFlight?.ltx ?? [];
    if (this.pendingLTX.length === 0 && inFlight.length === 0) return;
    syncLTXGroup(this.io, this.ltxGroup([...inFlight, ...this.pendingLTX]), this.syncfs);
    this.pendingLTX.length = 0;
    inFlight.length = 0;
  }

  private ltxGroup(files: readonly string[]): LTXGroup {
    return { db: this.name, dir: this.dir, walPath: this.walPath, ltxDir: this.ltxDir, files };
  }

  /**
   * The once-a-second group sync, off this thread: hands the waiting LTX
   * files and applied pages to the syncer (src/node/group-syncer.ts), or
   * null when nothing waits or a group is still in flight (groupSyncDone
   * then asks for the rest).
   */
  takeGroupSync(): GroupSyncJob | null {
    if (this.pendingLTX.length === 0 && this.unsyncedApplies === 0) return null;
    if (this.inFlight !== null) {
      this.syncWanted = true;
      return null;
    }
    this.syncWanted = false;
    const ltx = this.pendingLTX.splice(0);
    const applies = this.unsyncedApplies;
    this.inFlight = { gen: ++this.lastGen, ltx, applies };
    return { ...this.ltxGroup([...ltx]), gen: this.lastGen, databasePath: applies > 0 ? this.databasePath : null };
  }

  /**
   * The syncer finished group `gen`: its files are durable, and its applies
   * unless the database file was replaced meanwhile (which synced them
   * itself). On failure the files wait again for a sync on this thread.
   * Returns the next job when a `sync` came while this one was in flight.
   */
  groupSyncDone(gen: number, ok: boolean): GroupSyncJob | null {
    const done = this.inFlight;
    if (done === null || done.gen !== gen) return null;
    this.inFlight = null;
    if (!ok) {
      this.pendingLTX.unshift(...done.ltx);
      return null;
    }
    if (done.applies > 0) {
      this.unsyncedApplies -= done.applies;
      if (this.unsyncedApplies === 0) this.endApplyGroup();
    }
    return this.syncWanted ? this.takeGroupSync() : null;
  }

  /** Makes the pages of unsynced replica applies durable (before anything newer than them is written). */
  syncAppliedPages(): void {
    if (this.unsyncedApplies === 0) return;
    syncIfPresent(this.io, this.databasePath);
    this.endApplyGroup();
  }

  /** The group's pages are durable: the marker may go (its removal needs no sync: a stale one only costs a re-apply). */
  endApplyGroup(): void {
    this.unsyncedApplies = 0;
    if (this.inFlight !== null) this.inFlight.applies = 0;
    if (this.io.exists(this.applyGroupPath)) this.io.unlink(this.applyGroupPath);
  }

  /** Records an LTX file written without fsync; syncs the group once it is full. */
  addPendingLTX(path: string): void {
    this.pendingLTX.push(path);
    if (this.pendingLTX.length + (this.inFlight?.ltx.length ?? 0) >= MAX_PENDING_LTX) this.syncPendingLTX();
  }

  /**
   * Before the WAL's frames are discarded (restart, truncate, unlink): every
   * transaction in them must be durable elsewhere, in LTX files and in the
   * checkpointed database file (synchronous=OFF never fsyncs it itself).
   */
  private beforeWalDiscarded(): void {
    this.syncPendingLTX();
    if (this.databaseUnsynced && this.io.exists(this.databasePath)) {
      syncFile(this.io, this.databasePath);
      this.databaseUnsynced = false;
    }
  }

  /** Throws the InvalidWriteError for `reason`, marked as repeated when it is the same as the previous refusal. */
  refuse(reason: string): never {
    const repeated = this.lastRefusal === reason;
    this.lastRefusal = reason;
    throw new InvalidWriteError(this.name, reason, repeated);
  }

  /** ftruncate of the database file: SQLite shrinking it after a commit or checkpoint. */
  truncateDatabase(fd: number, size: number): void {
    if (this.pageSize === 0) {
      if (size !== 0) throw new InvalidWriteError(this.name, `truncate to ${size} before the page size is known`);
      this.io.truncate(fd, 0);
      return;
    }
    if (size % this.pageSize !== 0) throw new InvalidWriteError(this.name, `database truncate to ${size} is not page aligned`);
    this.syncPendingLTX();
    this.io.truncate(fd, size);
    this.io.fsync(fd);
    this.databaseUnsynced = false;
    this.cache().truncate(size / this.pageSize);
  }

  /**
   * A write to the journal (ref §6.3 WriteJournalAt). The header's page size
   * is learned if still unknown. The PERSIST commit signal
   * (`isPersistCommit`) goes to `commitJournal(db, 'persist')` instead.
   */
  writeJournal(fd: number, data: Uint8Array, offset: number): void {
    if (this.pageSize === 0 && offset === 0 && data.length >= JOURNAL_HEADER_FIELDS_SIZE) {
      const size = new DataView(data.buffer, data.byteOffset, data.length).getUint32(24);
      if (isValidPageSize(size)) this.setPageSize(size);
    }
    this.journalActive = true;
    this.lastRefusal = null;
    this.io.write(fd, data, offset);
  }

  /**
   * A write to the WAL (ref §6.4 WriteWALAt): the 32-byte header at offset
   * 0 starts a new WAL (every earlier frame was checkpointed: SQLite only
   * restarts a fully backfilled WAL), frames may only be written at or after
   * the end of the last committed transaction. WRITE must be held
   * exclusively: SQLite with locking_mode=EXCLUSIVE takes no -shm locks and
   * would commit without a signal (ref §5.5).
   */
  writeWAL(fd: number, data: Uint8Array, offset: number): void {
    if (this.pageSize === 0) throw new InvalidWriteError(this.name, 'WAL write before the page size is known');
    if ((this.locks.exclusiveLocks & Lock.WRITE) === 0) {
      throw new InvalidWriteError(this.name, 'WAL write without the WAL write lock (exclusive locking mode is not supported)');
    }
    if (offset === 0) {
      if (data.length !== WAL_HEADER_SIZE) throw new InvalidWriteError(this.name, `WAL header write of ${data.length} bytes`);
      const header = parseWalHeader(data);
      // A new header restarts the WAL: the old frames are gone.
      this.beforeWalDiscarded();
      this.wal.header = header;
      this.wal.offset = WAL_HEADER_SIZE;
      this.wal.checksum = header.checksum;
      this.resetWalPages();
    } else if (offset < this.wal.offset) {
      throw new InvalidWriteError(this.name, `WAL write at ${offset} inside committed transactions (end ${this.wal.offset})`);
    } else if (this.ctx.fence?.hasDeadline === true && writesCommitFrame(data, offset, this.pageSize) && this.ctx.fence.commitsFenced()) {
      // SQLite counts a WAL transaction committed once this frame is
      // written: past the lease deadline it must never be.
      throw new CommitFencedError(this.name, 'wal');
    }
    this.io.write(fd, data, offset);
  }

  /** ftruncate of the WAL: only to 0 (a TRUNCATE checkpoint, after every frame was backfilled). */
  truncateWAL(fd: number, size: number): void {
    if (size !== 0) throw new InvalidWriteError(this.name, `WAL truncate to ${size} (only 0 is supported)`);
    this.beforeWalDiscarded();
    this.io.truncate(fd, 0);
    this.resetWalPages();
  }

  /** Unlink of the WAL (SQLite leaving WAL mode, or the last connection closing). */
  removeWAL(): void {
    this.beforeWalDiscarded();
    this.io.unlink(this.walPath);
    // Durable now: a WAL that came back after power loss could hold frames
    // older than later rollback-journal transactions.
    this.io.fsyncDir(this.dir);
    this.resetWalPages();
  }

  /** Forgets the WAL's pages: their versions are in the database file now. */
  resetWalPages(): void {
    this.wal.frameOffsets.clear();
    this.checksums?.wal.clear();
  }

  /** A PositionalReader over an open descriptor. */
  reader(fd: number): PositionalReader {
    return {
      readAt: (buf, offset) => this.io.read(fd, buf, offset),
      size: () => this.io.fileSize(fd),
    };
  }

  /** Database size in pages from header bytes 28..31 of the database file (0 if it has no header). */
  readCommit(fd: number): number {
    const buf = new Uint8Array(DATABASE_HEADER_SIZE);
    if (this.io.read(fd, buf, 0) < DATABASE_HEADER_SIZE) return 0;
    return new DataView(buf.buffer).getUint32(28);
  }
}

/** True for SQLite's PERSIST commit signal: 28 zero bytes written at journal offset 0 (ref §6.3). */
export function isPersistCommit(data: Uint8Array, offset: number): boolean {
  if (offset !== 0 || data.length !== JOURNAL_HEADER_FIELDS_SIZE) return false;
  for (let i = 0; i < data.length; i++) if (data[i] !== 0) return false;
  return true;
}
